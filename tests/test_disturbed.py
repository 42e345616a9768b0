"""A run the busy machine slowed: cockpit measures how much other work shared the CPUs
while it trained (pressure stall information and the CPU the run's own tree used), leaves
such a run's value out of the noise floor and the bars, and runs it again. Real runs, real
CPU hogs started by the test outside the run; skipped where Linux does not say."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support import ScriptedAgent, live_journal, read_journal, run_session
from test_sandbox import ISOLATION, policy_for
from test_second_look import config, results, scripted
from test_second_look import workspace as scripted_workspace

from cockpit.domain.measured import OTHERS_MIN, disturbed
from cockpit.runners import contention
from cockpit.runners.local import LocalRunner
from cockpit.tui.view import describe

needs_pressure = pytest.mark.skipif(contention.read() is None,
                                    reason="no pressure stall information here")
BURN = 2.0  # seconds each scripted run keeps one CPU busy (what a hog takes from)
BURNING = f"import time\n_t = time.time()\nwhile time.time() - _t < {BURN}: pass\n"
# twice as many busy processes as CPUs, and one more: the run gets less than half a core
HOGS = 2 * (os.cpu_count() or 1) + 1


def burning(values: Path, idea: int = 0) -> str:
    return BURNING + scripted(values, idea)


class Hogs:
    """Busy processes outside the run, started while the run the test names trains; none
    outlives the test, whatever it asserts."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.done = threading.Event()  # the test ended
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            if not self.done.is_set():
                self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                              for _ in range(HOGS)]

    def stop(self) -> None:
        with self.lock:
            for proc in self.procs:
                proc.kill()
                proc.wait()
            self.procs = []

    def during(self, ws: Path, started, ended) -> None:
        """From the journal event `started` matches until the one `ended` matches."""
        def watch() -> None:
            try:
                if wait(ws, started, self.done):
                    self.start()
                    wait(ws, ended, self.done)
            finally:
                self.stop()
        threading.Thread(target=watch, daemon=True).start()


@pytest.fixture
def hogs():
    busy = Hogs()
    yield busy
    busy.done.set()
    busy.stop()


def wait(ws: Path, match, done: threading.Event) -> bool:
    """Whether the journal showed the event before the test ended."""
    journal = ws / ".cockpit" / "t" / "journal.jsonl"
    while not done.wait(0.02):
        if journal.exists() and any(match(e) for e in live_journal(ws, "t")):
            return True
    return False


def workspace(tmp_path: Path, baseline: str, *ideas: tuple[str, int]):
    """A workspace whose runs keep a CPU busy, then print the scripted values."""
    return scripted_workspace(tmp_path, *ideas, baseline=baseline, script=burning)


# -- the decision -------------------------------------------------------------------------
def test_a_run_is_disturbed_only_when_it_waited_for_cpus_that_others_used():
    assert disturbed(0.30, 0.9, 0.03).startswith("the machine was busy with other work")
    assert "30% of the time" in disturbed(0.30, 0.9, 0.03)
    assert disturbed(0.50, 0.0, 0.03) == ""  # a run that starts more threads than cores
    assert disturbed(0.01, 1.5, 0.03) == ""  # others on cores the run left idle
    assert disturbed(0.30, OTHERS_MIN / 2, 0.03) == ""
    assert disturbed(0.90, 2.0, 0.0) == ""  # the setting at 0: never
    assert disturbed(None, None, 0.03) == ""  # a machine that does not say


# -- the measurement, on real runs ---------------------------------------------------------
@needs_pressure
@pytest.mark.parametrize("sandboxed", [
    False, pytest.param(True, marks=pytest.mark.skipif(not ISOLATION, reason="no sandbox"))],
    ids=["reaper", "sandbox"])
def test_the_runner_measures_others_work_and_not_the_runs_own(tmp_path, sandboxed, hogs):
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    burn = work / "train.py"
    policy = policy_for(work, home) if sandboxed else None

    def run(code: str):
        burn.write_text(code)
        return LocalRunner().run("python train.py", cwd=work, log_path=tmp_path / "run.log",
                                 timeout=60, sandbox=policy)

    quiet = run(BURNING)
    assert quiet.returncode == 0 and quiet.stalled is not None and quiet.others is not None
    assert not disturbed(quiet.stalled, quiet.others, 0.03), (quiet.stalled, quiet.others)

    hogs.start()
    try:
        busy = run(BURNING)
        # busy CPUs do not slow a run that sleeps, and a short run's counters say nothing
        asleep, short = run(f"import time; time.sleep({BURN})"), run("print('done')")
    finally:
        hogs.stop()
    assert disturbed(busy.stalled, busy.others, 0.03), (busy.stalled, busy.others)
    assert (asleep.stalled, asleep.others, short.stalled, short.others) == (None,) * 4

    # its own hogs, in its own tree (a double fork too): its work, not the machine's
    own = run("import os, subprocess, sys\n"
              f"hogs = [subprocess.Popen([sys.executable, '-c', {BURNING!r}]) "
              f"for _ in range({HOGS})]\n"
              "if os.fork() == 0:\n"
              "    os.setsid()\n"
              f"    exec({BURNING!r})\n"
              "    os._exit(0)\n"
              + BURNING + "[h.wait() for h in hogs]\nos.wait()\n")
    assert own.returncode == 0
    assert own.stalled is not None and own.stalled > 0.03  # the CPUs were short ...
    assert not disturbed(own.stalled, own.others, 0.03), (own.stalled, own.others)  # by it


# Children of a process that ignores SIGCHLD are reaped by the kernel unwaited: their CPU
# reaches no one's rusage, and reads as other work. A known gap (README), bounded by
# REDRAWS; a cgroup per run would close it, and this test then passes.
SELF_REAPED = ("import signal, subprocess, sys, time\n"
               "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
               "_t = _next = time.time()\n"
               f"while time.time() - _t < {BURN}:  # it keeps a CPU busy itself: a reading\n"
               "    if time.time() >= _next:\n"
               "        _next = time.time() + 0.05\n"
               "        for _ in range(2):\n"
               "            subprocess.Popen([sys.executable, '-c', 'import time\\n"
               "_s = time.time()\\nwhile time.time() - _s < 0.05: pass'])\n")


@needs_pressure
@pytest.mark.xfail(strict=True, reason="children reaped unwaited read as other work")
def test_children_the_kernel_reaps_unwaited_are_the_runs_own(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "train.py").write_text(SELF_REAPED)
    run = LocalRunner().run("python train.py", cwd=work, log_path=tmp_path / "run.log",
                            timeout=60)
    assert run.returncode == 0
    assert not disturbed(run.stalled, run.others, 0.03), (run.stalled, run.others)


# -- the session ---------------------------------------------------------------------------
# The second noise run trains while the machine is busy and measures an outlier: left out,
# run again, the floor rests on the four undisturbed runs (std 0.0082, a one-run keep needs
# 0.030), and a gain of 0.04 is kept. Counted, the outlier would have made the std 0.1.
NOISE = "1.00 1.01 1.20 0.99 1.00"
GAIN = ("0.96 0.96", 1)


def noise_run(k: int):
    return lambda e: e["event"] == "measure_start" and e["k"] == k


def measured(k: int):
    return lambda e: e["event"] == "measure" and e["k"] == k


@needs_pressure
def test_a_noise_run_the_busy_machine_slowed_is_left_out_and_run_again(tmp_path, hogs):
    ws, sources = workspace(tmp_path, NOISE, GAIN)
    hogs.during(ws, noise_run(2), measured(2))
    coordinator, ending = run_session(ws, 2, agent=ScriptedAgent(*sources), config=config())
    assert ending.code == 0, ending.why
    events = read_journal(ws, "t")
    measures = [e for e in events if e["event"] == "measure"]
    assert [(e["purpose"], e["metric"], bool(e["disturbed"])) for e in measures] == [
        ("noise", 1.01, False), ("noise", 1.20, True), ("noise", 0.99, False),
        ("noise", 1.00, False), ("keep", 0.96, False)]
    assert measures[1]["stalled"] > 0.03 and measures[1]["others"] > OTHERS_MIN
    noise = next(e for e in events if e["event"] == "noise")
    assert sorted(noise["values"]) == [0.99, 1.00, 1.00, 1.01]
    assert noise["std"] == pytest.approx(0.0082, abs=1e-4)
    state = coordinator.state
    assert state.values_of(state.baseline.commit) == [1.00, 1.01, 0.99, 1.00]
    assert state.get(2).status == "keep"
    # nor do its curves calibrate early stop
    assert measures[1]["log"] not in [log for log, _ in state.runs_with_logs()]
    assert measures[0]["log"] in [log for log, _ in state.runs_with_logs()]


@needs_pressure
@pytest.mark.slow
def test_with_the_setting_at_zero_the_outlier_counts_and_the_gain_is_lost(tmp_path, hogs):
    ws, sources = workspace(tmp_path, NOISE, GAIN)
    settings = config()
    settings.judge.disturbed = 0.0
    hogs.during(ws, noise_run(2), measured(2))
    coordinator, ending = run_session(ws, 2, agent=ScriptedAgent(*sources), config=settings)
    assert ending.code == 0, ending.why
    assert not any(e.get("disturbed") for e in read_journal(ws, "t"))
    assert coordinator.state.get(2).status == "discard"
    assert coordinator.state.floor().std > 0.09


# An experiment whose run the busy machine slowed measures 1.10: it runs again, and is
# judged on the re-run alone (0.96: a keep), not on the mean of both (1.03: a discard).
SLOWED = ("1.10 0.96 0.96", 1)


def experiment_run(n: int):
    return lambda e: e["event"] == "run_start" and e["n"] == n


def result(n: int):
    return lambda e: e["event"] in ("result", "second_look") and e["n"] == n


@needs_pressure
def test_an_experiment_the_busy_machine_slowed_is_judged_on_its_re_run(tmp_path, hogs):
    ws, sources = workspace(tmp_path, "1.00 1.01 0.99 1.00", SLOWED)
    hogs.during(ws, experiment_run(2), result(2))
    coordinator, ending = run_session(ws, 2, agent=ScriptedAgent(*sources), config=config())
    assert ending.code == 0, ending.why
    events = read_journal(ws, "t")
    look = next(e for e in events if e["event"] == "second_look")
    assert look["why"].startswith("the machine was busy with other work")
    assert look["result"]["metric"] == 1.10
    judged = results(ws)[2]
    assert judged["status"] == "keep" and judged["runs"] == 1
    assert judged["metric"] == 0.96 and judged["delta_best"] == pytest.approx(-0.04)
    assert "it measured 1.100000, and is judged on its re-run" in judged["disturbed"]
    state = coordinator.state
    assert "and is judged on its re-run" in describe(state.get(2), "val_bpb")  # the diff view
    assert 1.10 not in state.values_of(state.get(2).commit)  # nor in the bar it sets
    assert state.values_of(state.get(2).commit) == [0.96, 0.96]


# -- how far it goes ------------------------------------------------------------------------
@needs_pressure
@pytest.mark.slow
def test_a_commit_is_run_again_at_most_twice_then_its_runs_count(tmp_path, hogs):
    ws, _ = workspace(tmp_path, "1.00 1.01 0.99 1.00 1.02 0.98")
    hogs.during(ws, experiment_run(1), measured(5))  # busy for every baseline run
    _coordinator, ending = run_session(ws, 1, config=config())
    assert ending.code == 0, ending.why
    events = read_journal(ws, "t")
    assert results(ws)[1]["disturbed"]
    measures = [e for e in events if e["event"] == "measure"]
    assert [bool(e["disturbed"]) for e in measures] == [True, False, False, False, False]
    noise = next(e for e in events if e["event"] == "noise")
    assert sorted(noise["values"]) == [0.98, 0.99, 1.00, 1.02]  # REDRAWS = 2 left out


def test_a_machine_that_stays_busy_is_measured_as_it_is():
    """Three runs in a row on a busy machine: the next is not run again (each run would
    cost three), until a run on a quiet machine."""
    from cockpit.domain.measured import BUSY_STREAK
    from cockpit.domain.state import SessionState
    from cockpit.runners.local import RunResult
    from cockpit.session.judging import Judge
    from cockpit.workspace.config import Config

    busy, quiet = {"stalled": 0.4, "others": 1.5}, {"stalled": 0.01, "others": 0.0}
    events = [{"event": "session", "tag": "t", "branch": "b", "base": "c0",
               "config": {"judge": {"disturbed": 0.03}}}]
    state = SessionState.from_events(events)
    judge = Judge(state, Config())
    run = RunResult(0, 60.0, stalled=0.4, others=1.5)
    for k in range(BUSY_STREAK):
        assert judge.disturbed(run, f"c{k + 1}")
        state.apply({"event": "measure", "k": k + 1, "commit": f"c{k + 1}", "purpose": "keep",
                     "metric": 1.0, "disturbed": "busy", **busy})
    assert state.busy_streak == BUSY_STREAK and judge.disturbed(run, "c9") == ""
    state.apply({"event": "measure", "k": 9, "commit": "c9", "purpose": "keep", "metric": 1.0,
                 **quiet})
    assert state.busy_streak == 0 and judge.disturbed(run, "c10")
