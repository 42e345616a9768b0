"""The `gpus` runner: several workers on this box (CPU here), each in its own worktree and
branch, one coordinator judging and journaling, a shared best."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import git
import pytest
from cockpit.runners.gpus import GpuPool
from support import (
    FAKE_TRAIN,
    ScriptedAgent,
    cockpit,
    make_workspace,
    read_journal,
    results_rows,
)

from cockpit.bridge import ApprovalGate
from cockpit.config import Config
from cockpit.loop import ResearchLoop
from cockpit.parallel import ParallelLoop, make_loop

# FAKE_TRAIN that says which device it was given and takes a moment, so runs overlap.
PINNED = FAKE_TRAIN.replace(
    "SEED = 42",
    "SEED = 42\nprint('device:', os.environ.get('CUDA_VISIBLE_DEVICES'), flush=True)\ntime.sleep(0.3)")


def parallel_config(workers: int = 2) -> Config:
    config = Config()
    config.runner.kind = "gpus"
    config.runner.workers = workers
    config.judge.baseline_runs = 0  # no noise runs: these tests are about the workers
    return config


def run_parallel(ws: Path, experiments: int, workers: int = 2, tag: str = "p", **kwargs):
    loop = ParallelLoop(ws, parallel_config(workers), tag, pool=GpuPool(workers), **kwargs)
    return loop, loop.run(experiments)


def test_two_workers_run_at_once_on_their_own_branches_and_share_the_best(tmp_path):
    ws = make_workspace(tmp_path / "ws", train=PINNED)
    loop, why = run_parallel(ws, 7)
    assert why == "ran 7 experiments as asked"
    rows = results_rows(ws)
    assert len(rows) == 7 and rows[0][3:] == ["keep", "baseline"]

    events = read_journal(ws, "p")
    workers = {e["n"]: e["worker"] for e in events if e["event"] == "run_start"}
    assert set(workers.values()) == {0, 1}
    # Each run was pinned to its worker's device.
    for n, worker in workers.items():
        log = (ws / ".cockpit" / "p" / "runs" / f"{n:04d}" / "run.log").read_text()
        assert f"device: {worker}" in log
    # Runs overlapped: an experiment started while another was still running.
    order = [(e["event"], e["n"]) for e in events if e["event"] in ("run_start", "result")]
    running, overlapped = set(), False
    for kind, n in order:
        if kind == "run_start":
            overlapped |= bool(running)
            running.add(n)
        else:
            running.discard(n)
    assert overlapped
    # Every result says which worker found it; the session branch stands on the best.
    assert all("worker" in e for e in events if e["event"] in ("proposal", "result"))
    repo = git.Repo(ws)
    assert repo.active_branch.name == "autoresearch/p"
    assert repo.head.commit.hexsha == loop.state.best.commit and not repo.is_dirty()
    assert {"autoresearch/p-gpu0", "autoresearch/p-gpu1"} <= {h.name for h in repo.heads}
    assert len(repo.git.worktree("list").splitlines()) == 1  # worker trees are cleaned up
    # Each experiment's commit sits on the best known when it was proposed.
    for e in loop.state.experiments[1:]:
        base = next(x["base"] for x in events if x["event"] == "proposal" and x["n"] == e.n)
        assert repo.commit(e.commit).parents[0].hexsha == base
    # A gain found by one worker reached the other one's next proposal.
    rebases = [e for e in events if e["event"] == "rebase"]
    kept = {e["n"]: e["worker"] for e in events if e["event"] == "result" and e["status"] == "keep"}
    assert rebases and all(r["found_by"] == kept[r["found_n"]] != r["worker"] for r in rebases)


def test_a_crash_on_one_worker_and_a_killed_run_leave_the_others_going(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    slow = FAKE_TRAIN.replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.02").replace(
        "SEED = 42", "SEED = 42\ntime.sleep(60)")
    raises = FAKE_TRAIN.replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.5").replace(
        "SEED = 42", "SEED = 42\nraise RuntimeError('CUDA error: out of memory (simulated)')")
    good = [FAKE_TRAIN.replace("BATCH_SIZE = 16", f"BATCH_SIZE = {b}") for b in (32, 8, 64)]
    pids = {}

    def on_event(kind, data):
        if kind == "run_start" and data["n"] == 2:
            pids["started"] = time.monotonic()

    loop = ParallelLoop(ws, parallel_config(), "c", pool=GpuPool(2),
                        agent=ScriptedAgent(slow, raises, *good), on_event=on_event)
    killer = threading.Thread(target=_kill_run_of, args=(ws, "c", 2), daemon=True)
    killer.start()
    started = time.monotonic()
    why = loop.run(5)
    assert why == "ran 5 experiments as asked" and time.monotonic() - started < 30
    by_n = {e.n: e for e in loop.state.experiments}
    assert by_n[2].status == "crash" and "killed by SIGKILL" in by_n[2].reason
    assert by_n[3].status == "crash" and "out of memory" in by_n[3].reason
    assert [by_n[n].status in ("keep", "discard") for n in (4, 5)] == [True, True]
    assert len(results_rows(ws)) == 5


def _kill_run_of(ws: Path, tag: str, n: int) -> None:
    """SIGKILL experiment n's training process once it runs (as an OOM killer would)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            pid = next((e["pid"] for e in read_journal(ws, tag)
                        if e["event"] == "run_pid" and e["n"] == n), None)
        except (FileNotFoundError, ValueError):
            pid = None
        if pid:
            os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.05)


def test_proposals_queue_for_approval_while_workers_run(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    gate = ApprovalGate()
    first = FAKE_TRAIN.replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.5")
    second = FAKE_TRAIN.replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.003")
    loop = ParallelLoop(ws, parallel_config(), "ap", pool=GpuPool(2),
                        agent=ScriptedAgent(first, second),
                        approver=lambda n, proposal, diff: gate.wait(n))
    thread = threading.Thread(target=loop.run, args=(3,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while len(gate.queue) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gate.queue == [2, 3]  # both workers' proposals wait at once, oldest first
    assert gate.decide(False, "0.5 is absurd") and gate.pending == 3
    assert gate.decide(True)
    thread.join(20)
    assert not thread.is_alive()
    assert [e.status for e in loop.state.experiments] == ["keep", "rejected", "keep"]
    assert "0.5 is absurd" in loop.state.experiments[1].reason
    assert [r[3] for r in results_rows(ws)] == ["keep", "keep"]


def test_the_local_runner_stays_the_sequential_loop(tmp_path):
    config = Config()
    assert type(make_loop(tmp_path, config, "t")) is ResearchLoop
    config.runner.kind = "gpus"
    assert isinstance(make_loop(tmp_path, config, "t"), ParallelLoop)


def test_cli_workers_and_runner_config(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    result = cockpit("run", "--headless", "--workers", "2", "--experiments", "4", "--tag", "w",
                     cwd=ws)
    assert result.returncode == 0, result.stderr
    assert "2 workers (gpus runner)" in result.stdout and "[gpu1] #" in result.stdout
    assert len(results_rows(ws)) == 4

    (ws / "cockpit.toml").write_text('[runner]\nkind = "gpu"\n')
    bad = cockpit("run", "--headless", cwd=ws)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"cockpit: {ws / 'cockpit.toml'}: [runner] kind = 'gpu' is not allowed; "
        "use one of: local, gpus, ray"]
    (ws / "cockpit.toml").write_text('[runner]\nworkers = 4\n')
    bad = cockpit("run", "--headless", cwd=ws)
    assert bad.returncode == 2 and "needs kind = \"gpus\" or \"ray\"" in bad.stderr


def test_the_cockpit_shows_every_worker(tmp_path):
    """A session run by two workers: a worker column, the chart coloured by worker, and
    `w` switching the run log between the workers' runs (in replay too)."""
    import asyncio
    import json

    from cockpit.widgets.metric_chart import MetricChart
    from cockpit.widgets.run_log import RunLog
    from cockpit.widgets.timeline import Timeline
    from tui_support import synthetic_session

    from cockpit.app import CockpitApp, ReplayApp

    ws = synthetic_session(tmp_path / "ws", 6)
    journal = ws / ".cockpit" / "demo" / "journal.jsonl"
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    for e in events:
        if "n" in e:
            e["worker"] = 0 if e["n"] == 1 else e["n"] % 2
    events.insert(1, {"event": "workers", "time": events[0]["time"], "kind": "gpus", "workers": 2})
    journal.write_text("".join(json.dumps(e) + "\n" for e in events))

    async def main():
        app = CockpitApp(ws, "demo", watch_program=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            timeline = app.main.query_one(Timeline)
            assert timeline.show_workers and "gpu" in [str(c.label) for c in timeline.columns.values()]
            chart = app.main.query_one(MetricChart)
            assert {p.worker for p in chart.points} == {0, 1}
            await pilot.press("w")
            await pilot.pause(0.2)
            run_log = app.main.query_one(RunLog)
            assert app.shown_worker == 1 and "gpu1 #5" in str(run_log.border_title)
            assert "run 5" in "\n".join(run_log.log_widget.lines)
            await pilot.press("w")
            assert app.shown_worker == 0
        replay = ReplayApp(ws, "demo")
        async with replay.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            assert replay.screen.query_one(Timeline).show_workers
    asyncio.run(main())


def test_a_killed_parallel_cockpit_marks_every_run_in_flight_and_goes_on(tmp_path):
    import subprocess
    import sys

    hang = FAKE_TRAIN.replace("SEED = 42", (
        "SEED = 42\n"
        "if (LEARNING_RATE, BATCH_SIZE) != (0.01, 16)"
        " and os.path.exists(os.environ['COCKPIT_HANG_FILE']):\n"
        "    time.sleep(120)"))
    ws = make_workspace(tmp_path / "ws", train=hang)
    flag = tmp_path / "hang"
    flag.write_text("")
    env = {**os.environ, "COCKPIT_HANG_FILE": str(flag)}
    proc = subprocess.Popen([sys.executable, "-m", "cockpit", "run", "--headless", "--workers",
                             "2", "--tag", "k"], cwd=ws, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    pids = {}
    while len(pids) < 2 and time.monotonic() < deadline:
        try:
            pids = {e["n"]: e["pid"] for e in read_journal(ws, "k") if e["event"] == "run_pid"
                    and e["n"] > 1}
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert sorted(pids) == [2, 3], "both workers never ran at once"
    flag.unlink()

    result = cockpit("run", "--headless", "--workers", "2", "--experiments", "1", cwd=ws,
                     env={"COCKPIT_HANG_FILE": str(flag)})
    assert result.returncode == 0, result.stderr
    rows = results_rows(ws)
    assert [r[3] for r in rows[:3]] == ["keep", "crash", "crash"] and len(rows) == 4
    events = read_journal(ws, "k")
    for n in (2, 3):
        crashed = next(e for e in events if e["event"] == "result" and e["n"] == n)
        assert "interrupted" in crashed["reason"]
    for pid in pids.values():  # the orphaned runs were killed on resume
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"training process {pid} outlived the recovery")
    repo = git.Repo(ws)
    assert repo.active_branch.name == "autoresearch/k" and not repo.is_dirty()


def test_ray_is_imported_only_for_the_ray_runner():
    import subprocess
    import sys

    code = ("import sys, cockpit.cli, cockpit.app, cockpit.parallel, cockpit.runners.gpus, cockpit.runners.pool; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_the_cockpit_approves_a_queue_of_proposals_from_two_workers(tmp_path):
    import asyncio

    from cockpit.widgets.run_log import RunLog
    from tui_support import wait_for

    from cockpit.app import CockpitApp
    from cockpit.bridge import LoopBridge
    from cockpit.screens.steer import NoteScreen
    from cockpit.tui import stop

    ws = make_workspace(tmp_path / "ws", train=PINNED)
    loop = ParallelLoop(ws, parallel_config(), "q", pool=GpuPool(2))
    bridge = LoopBridge(loop, post=None, auto_approve=False, max_experiments=3)
    app = CockpitApp(ws, "q", bridge, watch_program=False)

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            try:
                await wait_for(pilot, lambda: len(app.approvals) == 2, what="two proposals")
                assert app.approval.n == 2 and bridge.gate.queue == [2, 3]
                await pilot.press("r")
                assert isinstance(app.screen, NoteScreen)
                await pilot.press(*"no", "enter")
                await wait_for(pilot, lambda: app.approval is not None and app.approval.n == 3,
                               what="#3 on screen")
                await pilot.press("a")
                await wait_for(pilot, lambda: app.finished, what="the loop to finish")
                statuses = [e.status for e in loop.state.experiments]
                assert statuses[:2] == ["keep", "rejected"] and statuses[2] in ("keep", "discard")
                await pilot.press("w")
                assert app.shown_worker == 1
                assert "device: 1" in "\n".join(app.main.query_one(RunLog).log_widget.lines)
            finally:
                if bridge.alive:
                    stop(bridge)
                    await asyncio.to_thread(bridge.thread.join, 20)
    asyncio.run(main())
