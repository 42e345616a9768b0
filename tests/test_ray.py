"""The `ray` runner on a real local Ray (one start for the whole test session): experiments
shipped to actors as files, logs streamed back while they run, a lost worker."""
from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import pytest
from support import (
    FAKE_TRAIN,
    ScriptedAgent,
    free_port,
    live_journal,
    make_workspace,
    read_journal,
    results_rows,
)

from cockpit.session.coordinator import Coordinator
from cockpit.workspace.config import Config

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ray = pytest.importorskip("ray")

# Prints its progress, then takes a moment before the summary: streaming is observable.
STREAMED = FAKE_TRAIN.replace("SEED = 42",
                             "SEED = 42\nprint('warming up', flush=True)\ntime.sleep(0.8)")


@pytest.fixture(scope="module")
def ray_pool_factory():
    """A local Ray with 2 CPUs, started once; each test gets pools on it."""
    from cockpit.runners.cluster import RayPool

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    pools = []

    def make(workers: int = 2) -> RayPool:
        pool = RayPool(workers)
        pools.append(pool)
        return pool

    yield make
    if started:
        ray.shutdown()


def scratch() -> set[Path]:
    """The Ray actors' scratch directories on this machine."""
    return set(Path(tempfile.gettempdir()).glob("cockpit-ray-*"))


def actor_pid(pool, worker: int) -> int:
    """The process of a worker's Ray actor (killed to lose a worker mid-run)."""
    actor = pool._actors[worker]
    return pool.ray.get(actor.where.remote())["pid"]


def ray_config() -> Config:
    config = Config()
    config.runner.kind = "ray"
    config.runner.workers = 2
    config.judge.baseline_runs = 0
    return config


def test_experiments_run_on_ray_workers_with_their_logs_streamed(tmp_path, ray_pool_factory):
    ws = make_workspace(tmp_path / "ws", train=STREAMED)
    before = scratch()
    pool = ray_pool_factory(2)
    assert pool.kind == "ray" and pool.workers == 2 and not pool.use_gpus
    chunks = []
    loop = Coordinator(ws, ray_config(), "r", pool=pool)
    loop.observers.append(lambda m: chunks.append((time.monotonic(), m["worker"], m["text"]))
                          if m["type"] == "output" else None)
    during: set[Path] = set()
    loop.observers.append(lambda m: during.update(scratch() - before)
                          if m["type"] == "output" else None)
    why = loop.run(4).why
    assert why == "ran 4 experiments as asked"
    rows = results_rows(ws)
    assert len(rows) == 4 and all(r[3] in ("keep", "discard") for r in rows)
    events = read_journal(ws, "r")
    results = {e["n"]: e for e in events if e["event"] == "result"}
    assert {results[n]["worker"] for n in (2, 3, 4)} == {0, 1}
    # The log came back while the run went on: "warming up" well before the summary.
    for n in results:
        log = (ws / ".cockpit" / "r" / "runs" / f"{n:04d}" / "run.log").read_text()
        assert "warming up" in log and "val_bpb:" in log
    warm = [t for t, _, text in chunks if "warming up" in text]
    summary = [t for t, _, text in chunks if "val_bpb:" in text]
    assert warm and summary and summary[0] - warm[0] > 0.4
    assert {w for _, w, _ in chunks} == {0, 1}
    assert len(during) == 2, during  # one per actor, while it ran ...
    assert not during & scratch(), "... and gone with the session"


def test_a_killed_ray_worker_is_a_crash_with_the_reason_and_the_loop_goes_on(
        tmp_path, ray_pool_factory):
    ws = make_workspace(tmp_path / "ws")
    hang = FAKE_TRAIN.replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.02").replace(
        "SEED = 42", "SEED = 42\nprint('pid', os.getpid(), flush=True)\ntime.sleep(120)")
    good = [FAKE_TRAIN.replace("BATCH_SIZE = 16", f"BATCH_SIZE = {b}") for b in (32, 8)]
    pool = ray_pool_factory(2)
    victim = {}

    def on_output(message):
        if message["type"] != "output":
            return
        text = message["text"]
        if "pid " in text and "training" not in victim:
            victim["training"] = int(text.split("pid ", 1)[1].split()[0])
            victim["actor"] = actor_pid(pool, message["worker"])
            os.kill(victim["actor"], signal.SIGKILL)  # the worker process dies mid-run

    loop = Coordinator(ws, ray_config(), "k", pool=pool, agent=ScriptedAgent(hang, *good))
    loop.observers.append(on_output)
    started = time.monotonic()
    why = loop.run(4).why
    assert why == "ran 4 experiments as asked" and time.monotonic() - started < 60
    by_n = {e.n: e for e in loop.state.experiments}
    assert by_n[2].status == "crash" and by_n[2].reason.startswith("worker lost:")
    assert [by_n[n].status in ("keep", "discard") for n in (3, 4)] == [True, True]
    assert len(results_rows(ws)) == 4
    # The training process the dead actor left behind was ended too.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(victim["training"], 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the dead worker's training process is still running")


def test_a_baseline_lost_with_its_worker_is_measured_again(tmp_path, ray_pool_factory):
    """Losing the machine is not a broken setup: the baseline runs again on a worker."""
    ws = make_workspace(tmp_path / "ws", train=STREAMED)
    pool = ray_pool_factory(2)
    killed = []

    def on_output(message):
        if message["type"] == "output" and message["n"] == 1 and not killed \
                and "warming up" in message["text"]:
            killed.append(actor_pid(pool, message["worker"]))
            os.kill(killed[0], signal.SIGKILL)

    loop = Coordinator(ws, ray_config(), "b", pool=pool)
    loop.observers.append(on_output)
    assert loop.run(3).why == "ran 3 experiments as asked"
    first, *rest = loop.state.experiments
    assert first.description == "baseline" and first.reason.startswith("worker lost:")
    again = next(e for e in rest if e.description == "baseline")
    assert again.status == "keep" and loop.state.baseline is again


def test_an_operators_cluster_through_its_address_with_a_node_lost(tmp_path):
    """A cluster started with `ray start` (a head and a worker node on this machine, one CPU
    each) reached through [runner] address; the worker node is killed mid-session: its run
    is a crash ("worker lost"), the session goes on with the head's worker."""
    import shutil
    import subprocess
    import sys
    import tempfile

    ray_bin = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    port = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # its socket paths must stay short
    nodes = []

    def node(*args: str) -> subprocess.Popen:
        with open(tmp_path / f"node{len(nodes)}.log", "w") as log:
            proc = subprocess.Popen([ray_bin, "start", "--block", "--num-cpus", "1", *args],
                                    env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        nodes.append(proc)
        return proc

    try:
        node("--head", "--port", str(port), "--temp-dir", str(temp),
             "--include-dashboard", "false")
        time.sleep(8)
        worker_node = node("--address", f"127.0.0.1:{port}")
        slow = FAKE_TRAIN.replace("SEED = 42", "SEED = 42\ntime.sleep(5)")
        ws = make_workspace(tmp_path / "ws", train=slow, extra={"cockpit.toml": (
            f'[runner]\nkind = "ray"\nworkers = 2\naddress = "127.0.0.1:{port}"\n'
            "[judge]\nbaseline_runs = 0\n")})
        session = subprocess.Popen([sys.executable, "-m", "cockpit", "run", "--headless",
                                    "--experiments", "6", "--tag", "c"], cwd=ws, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # both training: one of them on the node
            events = live_journal(ws, "c")
            started = [e["n"] for e in events if e["event"] == "run_pid"]
            done = {e["n"] for e in events if e["event"] == "result"}
            if len([n for n in started if n not in done]) >= 2:
                break
            time.sleep(0.2)
        else:
            session.kill()
            pytest.fail("two runs never ran at once on the cluster:\n" + session.communicate()[0])
        os.killpg(worker_node.pid, signal.SIGKILL)  # the node goes, with what runs on it
        try:
            out, _ = session.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            session.kill()
            pytest.fail("the session did not end after the node was lost:\n"
                        + session.communicate()[0])
        assert session.returncode == 0, out
        rows = results_rows(ws)
        assert len(rows) == 6, out
        lost = [e for e in read_journal(ws, "c") if e["event"] == "result"
                and "worker lost" in (e.get("reason") or "")]
        assert len(lost) == 1, out
        assert sum(r[3] in ("keep", "discard") for r in rows) == 5
    finally:
        for proc in nodes:  # each node's processes are in its own group (--block)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(temp, ignore_errors=True)
