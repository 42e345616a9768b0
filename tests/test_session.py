"""The session process and its clients, as a user drives them from a shell: real
processes, a real control socket, SIGKILL."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support import (
    FAKE_TRAIN,
    cockpit,
    live_journal,
    make_workspace,
    read_journal,
    results_rows,
    wait_for,
)

from cockpit.client.connection import NoSession, Subscription, connect, request
from cockpit.workspace.lock import read_session

SLOW = FAKE_TRAIN.replace("SEED = 42",
                         "SEED = 42\ntime.sleep(float(os.environ.get('COCKPIT_SLOW', '1')))")


def events_of(ws: Path, tag: str, kind: str) -> list[dict]:
    return [e for e in live_journal(ws, tag) if e["event"] == kind]


@pytest.fixture
def detached(tmp_path):
    """A workspace and a session started with `cockpit run --detach` (stopped at the end)."""
    started = []

    def start(train: str = SLOW, *options: str, env: dict | None = None):
        ws = make_workspace(tmp_path / f"ws{len(started)}", train=train, extra={
            "cockpit.toml": '[experiment]\nenv = ["COCKPIT_SLOW"]\n'})
        result = cockpit("run", "--detach", "--tag", "d", *options, cwd=ws, env=env)
        assert result.returncode == 0, result.stderr
        started.append(ws)
        return ws, result

    yield start
    for ws in started:
        info = read_session(ws)
        if info is not None and info.alive:
            os.kill(info.pid, signal.SIGKILL)


@pytest.mark.slow
def test_a_script_drives_a_detached_session(detached):
    ws, started = detached()
    assert "started in the background (pid" in started.stdout and "session.log" in started.stdout
    info = read_session(ws)
    assert info.alive and os.getpgid(info.pid) == info.pid and os.getsid(info.pid) == info.pid
    wait_for(lambda: events_of(ws, "d", "run_start"), what="a run")

    steer = cockpit("steer", "try", "a", "larger", "BATCH_SIZE", cwd=ws)
    assert steer.returncode == 0 and "note 1 added" in steer.stdout
    assert events_of(ws, "d", "note")[-1]["text"] == "try a larger BATCH_SIZE"
    assert cockpit("pause", cwd=ws).returncode == 0
    assert events_of(ws, "d", "paused")[-1]["kind"] == "human"
    again = cockpit("pause", cwd=ws)
    assert again.returncode == 2 and again.stderr.strip() == "cockpit: already paused"
    status = cockpit("status", cwd=ws)
    assert status.returncode == 0 and "state: paused" in status.stdout
    assert "session d on autoresearch/d" in status.stdout
    as_json = json.loads(cockpit("status", "--json", cwd=ws).stdout)
    assert as_json["live"]["paused"] and as_json["live"]["notes"][0]["id"] == 1
    assert cockpit("resume", cwd=ws).returncode == 0
    assert events_of(ws, "d", "resumed")
    notes = cockpit("notes", cwd=ws)
    assert "1  try a larger BATCH_SIZE" in notes.stdout
    assert cockpit("notes", "--drop", "1", cwd=ws).returncode == 0
    assert events_of(ws, "d", "note_dropped")[-1]["id"] == 1
    running = wait_for(lambda: list(request(ws, "status")["live"]["running"]),
                       what="a run in flight")
    stop = cockpit("stop", "--now", cwd=ws)
    assert stop.returncode == 0 and "stopping now" in stop.stdout
    wait_for(lambda: not read_session(ws), what="the session to end")
    assert events_of(ws, "d", "session_end")
    assert read_session(ws) is None  # a clean end leaves the lock naming no one
    gone = cockpit("status", cwd=ws)
    assert gone.returncode == 1 and "no cockpit session is running" in gone.stdout
    refused = cockpit("pause", cwd=ws)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert running


@pytest.mark.slow
def test_approvals_name_their_proposal_and_every_client_sees_them(detached):
    ws, _ = detached(SLOW, "--review", env={"COCKPIT_SLOW": "0.2"})
    feeds = [[], []]
    subs = [Subscription(ws, 0, feed.append) for feed in feeds]
    try:
        wait_for(lambda: request(ws, "status")["live"]["awaiting"], what="a proposal")
        both = cockpit("approve", "2", cwd=ws)
        assert both.returncode == 0 and both.stdout.strip() == "#2 approved"
        late = cockpit("approve", "2", cwd=ws)
        assert late.returncode == 2 and "#2 does not await approval" in late.stderr
        for feed in feeds:  # both clients saw the decision, numbered the same way
            wait_for(lambda feed=feed: any(e["event"] == "approved" for m in feed
                                           if m["type"] == "journal" for e in m["events"]),
                     timeout=5, what="the approval in every client")
        wait_for(lambda: request(ws, "status")["live"]["awaiting"] == [3], what="#3")
        reject = cockpit("reject", "--reason", "too timid", cwd=ws)
        assert reject.returncode == 0 and reject.stdout.strip() == "#3 rejected"
        assert "too timid" in events_of(ws, "d", "result")[-1]["reason"]
    finally:
        for sub in subs:
            sub.close()


def test_only_the_owner_gets_in(detached):
    ws, _ = detached()
    info = read_session(ws)
    socket_dir = Path(info.socket).parent
    assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(info.key_file).stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(info.socket).stat().st_mode) & 0o077 == 0
    with open(info.key_file, "w") as f:  # a client that does not know the key
        f.write("0" * 64)
    with pytest.raises(NoSession, match="refused this client"):
        connect(info)
    listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
    assert f"pid={info.pid}," not in listening  # nothing on a network port


@pytest.mark.slow
def test_a_second_session_is_refused_and_a_killed_one_is_known_dead_and_resumed(detached):
    ws, _ = detached()
    second = cockpit("run", "--headless", cwd=ws)
    assert second.returncode == 2 and "already running" in second.stderr
    run = wait_for(lambda: events_of(ws, "d", "run_pid"), what="a run")[-1]
    info = read_session(ws)
    os.kill(info.pid, signal.SIGKILL)
    start = time.monotonic()
    status = cockpit("status", cwd=ws)
    assert status.returncode == 1 and "is not running (it died)" in status.stdout
    assert time.monotonic() - start < 5
    dead = read_session(ws)
    assert dead is not None and not dead.alive and dead.pid == info.pid
    rows_before = results_rows(ws) if (ws / "results.tsv").exists() else []

    resumed = cockpit("run", "--detach", cwd=ws)  # the dead session's tag, resumed
    assert resumed.returncode == 0, resumed.stderr
    assert "session d started" in resumed.stdout
    wait_for(lambda: events_of(ws, "d", "session")[-1].get("resumed"), what="the resume")
    interrupted = wait_for(lambda: [e for e in events_of(ws, "d", "result")
                                    if e["n"] == run["n"]], what="the interrupted run")
    assert "interrupted" in interrupted[0]["reason"]
    assert results_rows(ws)[:len(rows_before)] == rows_before
    with pytest.raises(ProcessLookupError):
        for _ in range(100):
            os.kill(run["pid"], 0)
            time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("sandbox", ["off", "auto"])
def test_a_killed_session_takes_its_runs_processes_with_it(tmp_path, sandbox):
    """The run leaves a child that keeps the marker and one that sheds it (setsid, env -i);
    cockpit is killed with SIGKILL: both die with it (the sandbox's PID namespace, or the
    reaper without a sandbox). A marked process whose holder was killed first is killed on
    restart."""
    from cockpit.runners.sandbox import available

    if sandbox == "auto" and not available()[0]:
        pytest.skip(available()[1])
    flags = tmp_path / "flags"  # shown to the run read-only: the test says when to hang
    flags.mkdir()
    token = f"{os.getpid()}{time.time_ns() % 10**6}"
    leave = FAKE_TRAIN.replace("SEED = 42", (
        "SEED = 42\n"
        "if LEARNING_RATE != 0.01 and os.path.exists(os.environ['COCKPIT_HANG']):\n"
        "    import subprocess\n"
        f"    subprocess.Popen(['sleep', '313{token}'], stdout=subprocess.DEVNULL)\n"
        f"    subprocess.Popen(['setsid', 'sh', '-c', 'env -i sleep 314{token} &'])\n"
        "    time.sleep(60)"))
    ws = make_workspace(tmp_path / "ws", train=leave, extra={"cockpit.toml": (
        f'[sandbox]\nmode = "{sandbox}"\nread_only = ["{flags}"]\n'
        '[judge]\nbaseline_runs = 0\n[experiment]\nenv = ["COCKPIT_HANG"]\n')})
    flag = flags / "hang"
    flag.write_text("")
    env = {**os.environ, "COCKPIT_HANG": str(flag)}

    def sleeping(number: str) -> list[str]:
        return subprocess.run(["pgrep", "-f", f"sleep {number}{token}"], capture_output=True,
                              text=True).stdout.split()

    def start(tag: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "cockpit", "run", "--headless", "--tag",
                                 tag], cwd=ws, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)

    proc = start("g")
    try:
        wait_for(lambda: sleeping("313") and sleeping("314"), what="the children")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        wait_for(lambda: not sleeping("313") and not sleeping("314"), timeout=5,
                 what="the run's processes to die with cockpit")
        if sandbox == "auto":
            return
        proc = start("g")  # again, and this time the run's holder goes first
        leader = wait_for(lambda: [e["pid"] for e in events_of(ws, "g", "run_pid")
                                   if e["n"] == 3], what="run #3")[0]
        wait_for(lambda: sleeping("313"), what="the marked child")
        # cockpit, frozen, cannot see its holder die and end the run's group itself
        proc.send_signal(signal.SIGSTOP)
        wait_for(lambda: stopped(proc.pid), timeout=5, what="cockpit to stop")
        os.kill(leader, signal.SIGKILL)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(0.3)
        assert sleeping("313")  # nothing held it: only its marker tells whose it is
        flag.unlink()
        result = cockpit("run", "--headless", "--experiments", "1", cwd=ws,
                         env={"COCKPIT_HANG": str(flag)})
        assert result.returncode == 0, result.stderr
        wait_for(lambda: not sleeping("313"), timeout=10, what="the marked child killed")
    finally:
        proc.kill()
        subprocess.run(["pkill", "-f", f"sleep 31[34]{token}"])


def stopped(pid: int) -> bool:
    """Whether every thread of a process has stopped (a SIGSTOP reaches each in its time)."""
    try:
        states = [(task / "stat").read_text().rsplit(")", 1)[1].split()[0]
                  for task in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:  # a thread ended meanwhile
        return False
    return all(state in "tT" for state in states)


@pytest.mark.slow
def test_a_kill_during_the_noise_runs_resumes_measuring_the_noise(tmp_path):
    noisy = FAKE_TRAIN.replace('print("---")', "import random\nval += random.gauss(0, 0.01)\n"
                               "time.sleep(0.4)\nprint(\"---\")")
    ws = make_workspace(tmp_path / "ws", train=noisy,
                        extra={"cockpit.toml": "[judge]\nbaseline_runs = 4\n"})
    proc = subprocess.Popen([sys.executable, "-m", "cockpit", "run", "--headless", "--tag", "n"],
                            cwd=ws, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: events_of(ws, "n", "measure"), what="a noise re-run")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    assert not events_of(ws, "n", "noise")
    result = cockpit("run", "--headless", "--experiments", "2", cwd=ws)
    assert result.returncode == 0, result.stderr
    events = read_journal(ws, "n")
    kinds = [e["event"] for e in events]
    noise = events[kinds.index("noise")]
    assert len(noise["values"]) >= 4 and noise["spread"] > 0
    judged = [i for i, e in enumerate(events) if e["event"] == "result" and e["n"] > 1
              and e["status"] in ("keep", "discard")]
    assert judged and min(judged) > kinds.index("noise")
    assert all(e["verdict"] and "0.000000" not in e["verdict"].split(">")[-1]
               for e in events if e["event"] == "result" and e["n"] > 1 and e.get("verdict"))


def test_feed_latency_is_measured_not_assumed(detached):
    """An event reaches a subscribed client quickly (the bench measures p99)."""
    ws, _ = detached()
    seen = threading.Event()
    arrived = []

    def on(message):
        if message["type"] == "journal" and any(e["event"] == "note" for e in message["events"]):
            arrived.append(time.monotonic())
            seen.set()

    sub = Subscription(ws, 0, on)
    try:
        sent = time.monotonic()
        request(ws, "steer", text="latency probe")
        assert seen.wait(5)
        assert arrived[0] - sent < 2.0
    finally:
        sub.close()


def test_the_wire_checks_the_version_and_bounds_a_frame(detached):
    """A client of another protocol version is refused in one line before anything acts,
    a frame past the bound is dropped (the session goes on), and a long backlog arrives
    in bounded chunks that add up to the journal."""
    from cockpit import protocol

    ws, _ = detached()
    info = read_session(ws)
    old = connect(info)
    protocol.send(old, {"op": "pause", "version": protocol.VERSION + 1})
    answer = protocol.receive(old, protocol.MAX_FRAME)
    assert answer["type"] == protocol.REFUSED and not answer["ok"]
    assert f"speaks protocol {protocol.VERSION}" in answer["message"]
    assert "\n" not in answer["message"]
    old.close()
    unversioned = connect(info)
    protocol.send(unversioned, {"op": "pause"})  # a cockpit from before the versions
    assert "an older one" in protocol.receive(unversioned, protocol.MAX_FRAME)["message"]
    unversioned.close()
    assert not events_of(ws, "d", "paused")  # neither acted

    huge = connect(info)
    with pytest.raises((EOFError, OSError)):  # cut off at the length, before it is read
        huge.send_bytes(b'{"op": "steer", "text": "' + b"x" * protocol.MAX_REQUEST + b'"}')
        huge.recv_bytes()
    huge.close()
    assert request(ws, "status")["ok"] and not events_of(ws, "d", "note")

    frames = protocol.backlog_frames(7, [{"i": i} for i in range(2 * protocol.BACKLOG_CHUNK + 3)])
    assert [f["start"] for f in frames] == [7, 7 + protocol.BACKLOG_CHUNK,
                                            7 + 2 * protocol.BACKLOG_CHUNK]
    assert [e["i"] for f in frames for e in f["events"]] == list(
        range(2 * protocol.BACKLOG_CHUNK + 3))
    assert protocol.backlog_frames(3, []) == [{"type": "journal", "start": 3, "events": []}]


def test_sigterm_twice_stops_once_and_says_so_once(tmp_path):
    """A supervisor's SIGTERM often comes twice (to the process and to its group): the
    session ends its runs in flight once, and the terminal reads one line saying so."""
    ws = make_workspace(tmp_path / "ws", train=SLOW, extra={
        "cockpit.toml": "[judge]\nbaseline_runs = 0\n"})
    proc = subprocess.Popen([sys.executable, "-m", "cockpit", "run", "--headless", "--tag",
                             "t"], cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "COCKPIT_SLOW": "60"})
    try:
        wait_for(lambda: events_of(ws, "t", "run_pid"), what="the baseline's run")
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert output.count("stopping: ") == 1, output
    assert "stopping: ending the runs in flight (Ctrl-C again to quit at once)" in output
    assert len(events_of(ws, "t", "stopping")) == 1
    assert "done: stopped" in output
