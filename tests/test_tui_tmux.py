"""A real terminal: tmux runs `cockpit`, send-keys drives it, capture-pane reads it."""
from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest
from tui_support import slow_train, workspace

pytestmark = [pytest.mark.tmux, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None,
                                 reason="tmux is not installed (.ci/run installs it)")]


class Tmux:
    def __init__(self, width: int, height: int, command: str, cwd) -> None:
        self.socket = f"cockpit-test-{uuid.uuid4().hex[:8]}"
        self.tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height),
                  # COLUMNS/LINES from pytest's terminal would override the pane's size
                  f"cd {shlex.quote(str(cwd))} && env -u COLUMNS -u LINES {command}; "
                  "echo EXITED $?; sleep 60")

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, check=True).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def resize(self, width: int, height: int) -> None:
        self.tmux("resize-window", "-t", "t", "-x", str(width), "-y", str(height))
        time.sleep(0.5)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the screen:\n{self.screen()}")

    def wait_for_line(self, start: str, timeout: float = 30.0) -> str:
        """Wait for a line of the screen that starts with `start`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if any(line.startswith(start) for line in screen.splitlines()):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"no line starts with {start!r}; the screen:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def term():
    sessions = []

    def start(width, height, command, cwd):
        sessions.append(Tmux(width, height, command, cwd))
        return sessions[-1]

    yield start
    for s in sessions:
        s.close()


def cockpit_command(*args: str) -> str:
    return " ".join(shlex.quote(a) for a in [sys.executable, "-m", "cockpit", *args])


def journal(ws, tag=None) -> list[dict]:
    from cockpit.workspace.journal import Journal
    from cockpit.workspace.sessions import latest_session

    tag = tag or latest_session(ws)
    return Journal(ws / ".cockpit" / tag / "journal.jsonl").read() if tag else []


def wait_journal(ws, condition, timeout: float = 30.0, what: str = "") -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = journal(ws)
        if condition(events):
            return events
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; "
                         f"journal: {[e['event'] for e in journal(ws)]}")


def stop_session(ws) -> None:
    subprocess.run([sys.executable, "-m", "cockpit", "stop", "--now"], cwd=ws,
                   capture_output=True, timeout=30)


def test_cockpit_in_a_terminal_approve_help_and_detach(tmp_path, term):
    ws = workspace(tmp_path, slow_train(steps=40, delay=0.05))
    t = term(120, 40, cockpit_command("--experiments", "3"), ws)
    try:
        screen = t.wait_for("awaiting approval", timeout=60)
        for pane in ("timeline", "change", "run log", "program.md", "val_bpb per experiment"):
            assert pane in screen
        assert "approve" in screen and "baseline" in screen and "? help" in screen
        t.keys("a")
        t.wait_for("training")
        t.keys("?")
        t.wait_for("Decide")
        t.keys("Escape")
        time.sleep(0.3)  # escape then q at once reads as alt+q, as in any terminal
        t.keys("q")
        t.wait_for("Detach: the research goes on")
        t.keys("d")
        screen = t.wait_for("EXITED 0", timeout=30)
        assert "detached" in screen
        # the research went on without the screen
        wait_journal(ws, lambda ev: any(e["event"] == "proposal" and e["n"] == 3 for e in ev),
                     what="the next proposal after detaching")
    finally:
        stop_session(ws)


def test_a_closed_terminal_never_stops_the_research(tmp_path, term):
    """The terminal that runs `cockpit` is killed (SIGHUP, as a dropped SSH connection): the
    run in flight finishes and is recorded, the next starts, and a new cockpit attaches
    with pause, steer and approve working."""
    ws = workspace(tmp_path, slow_train(steps=40, delay=0.05))
    first = term(120, 40, cockpit_command("--auto-approve"), ws)
    try:
        first.wait_for("training", timeout=60)
        events = wait_journal(ws, lambda ev: any(e["event"] == "run_start" and e["n"] >= 2
                                                 for e in ev), what="#2 to start")
        running = max(e["n"] for e in events if e["event"] == "run_start")
        first.close()  # the tmux server goes: SIGHUP to the cockpit
        wait_journal(ws, lambda ev: any(e["event"] == "result" and e["n"] == running
                                        for e in ev) and any(e["event"] == "run_start"
                                                             and e["n"] > running for e in ev),
                     what=f"#{running} to be recorded and the next to start")
        result = next(e for e in journal(ws) if e["event"] == "result" and e["n"] == running)
        assert result["status"] in ("keep", "discard") and "interrupted" not in result["reason"]

        second = term(120, 40, cockpit_command(), ws)
        second.wait_for("training", timeout=30)
        second.keys("p")
        wait_journal(ws, lambda ev: any(e["event"] == "paused" for e in ev), what="the pause")
        second.wait_for("paused")
        second.keys("n")
        second.wait_for("steering note")
        second.keys(*"try a larger BATCH_SIZE", "Enter")
        wait_journal(ws, lambda ev: any(e["event"] == "note" for e in ev), what="the note")
        second.keys("A")  # auto-approve off: the next proposal waits for the human
        second.keys("p")  # resume
        second.wait_for("awaiting approval", timeout=60)
        waiting = [e for e in journal(ws) if e["event"] == "proposal"][-1]["n"]
        second.keys("a")
        wait_journal(ws, lambda ev: any(e["event"] == "approved" and e["n"] == waiting
                                        for e in ev), what="the approval")
    finally:
        stop_session(ws)


def test_two_cockpits_see_one_decision(tmp_path, term):
    ws = workspace(tmp_path, slow_train(steps=20, delay=0.05))
    one = term(120, 40, cockpit_command("--experiments", "4"), ws)
    try:
        one.wait_for("awaiting approval", timeout=60)
        two = term(120, 40, cockpit_command(), ws)
        two.wait_for("awaiting approval", timeout=30)
        assert "#2" in two.screen().splitlines()[0]
        one.keys("a")
        deadline = time.monotonic() + 5
        while "awaiting approval   #2" in two.screen() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "awaiting approval   #2" not in two.screen(), two.screen()
        assert any(e["event"] == "approved" and e["n"] == 2 for e in journal(ws))
    finally:
        stop_session(ws)


def test_what_a_researcher_needs_is_on_screen(tmp_path, term):
    """At 120x40: the whole progress line, 40+ characters of description, the verdict, the
    no-noise-floor notice; at 80x24 the footer keeps `?` and a resize keeps the tab."""
    progress = ("step {i:05d} ({p:.1f}%) | loss: 3.912345 | lrm: 1.00 | dt: 312ms | "
                "tok/sec: 52,480 | mfu: 38.1% | epoch: 1 | remaining: 177s")
    train = slow_train(steps=200, delay=0.05).replace(
        'print(f"\\rstep {i:05d} ({i * 33:.1f}%) | loss: {3 - i * 0.1:.6f} | remaining: 0s", '
        'end="", flush=True)',
        'print("\\r' + progress + '".format(i=i, p=i / 2), end="", flush=True)')
    assert "tok/sec" in train
    ws = workspace(tmp_path, train)
    (ws / "cockpit.toml").write_text("[judge]\nbaseline_runs = 0\n")
    import git

    repo = git.Repo(ws)
    repo.index.add(["cockpit.toml"])
    repo.index.commit("no noise runs")
    t = term(120, 40, cockpit_command("--auto-approve"), ws)
    try:
        screen = t.wait_for("remaining: 177s", timeout=60)
        assert "mfu: 38.1%" in screen and "tok/sec: 52,480" in screen
        assert "no noise floor" in screen.splitlines()[0]
        t.wait_for("LEARNING_RATE 0.01 -> 0.02", timeout=60)
        screen = t.wait_for("keep", timeout=60)
        assert "? help" in screen.splitlines()[-1]
        # the verdict is where the result is, and says what it is measured against
        wait_journal(ws, lambda ev: sum(e["event"] == "result" for e in ev) >= 2,
                     timeout=60, what="a judged experiment")
        # the cursor follows the newest row: once #3 is on screen it is on #3, and Down
        # lands on the judged #2 (a Down before #3's row arrives would land on the baseline)
        t.wait_for_line("┃ 3 ", timeout=60)  # the focused pane's heavy border
        t.keys("Down")
        screen = t.wait_for("vs the best", timeout=10)
        t.resize(80, 24)
        t.keys("3")
        screen = t.wait_for("run log", timeout=10)
        assert "? help" in screen.splitlines()[-1] or "?" in screen.splitlines()[-1]
        t.resize(100, 30)
        t.resize(80, 24)
        screen = t.wait_for("run log", timeout=10)  # still on the log's tab
    finally:
        stop_session(ws)


def test_cockpit_small_terminal_and_replay(tmp_path, term):
    ws = workspace(tmp_path)
    t = term(80, 24, cockpit_command("--experiments", "2", "--auto-approve"), ws)
    t.wait_for("finished", timeout=60)
    t.keys("3")
    t.wait_for("val_bpb:")
    t.keys("q")
    t.wait_for("EXITED 0")
    r = term(80, 24, cockpit_command("replay"), ws)
    r.wait_for("replay")
    r.wait_for("2/2")  # the last experiment is selected once the journal is read
    r.keys("Left")
    r.wait_for("1/2")
    r.keys("q")
    r.wait_for("EXITED 0")


def test_headless_in_a_terminal_shows_progress_and_stops_on_ctrl_c(tmp_path, term):
    """A headless session at a terminal: one live progress line per run, and Ctrl-C (sent
    to the whole foreground group, git's readers included) ends it cleanly with 130."""
    ws = workspace(tmp_path, slow_train(steps=100, delay=0.05))
    t = term(120, 30, cockpit_command("run", "--headless") + " 2>&1", ws)
    t.wait_for("#1 baseline", timeout=60)
    t.wait_for("% loss", timeout=30)  # the live line: "#1 40% loss 2.5000 ..."
    time.sleep(1.0)  # a few redraws later: still one line, redrawn in place, not appended
    live = [line for line in t.screen().splitlines() if "% loss" in line]
    assert len(live) == 1 and live[0].lstrip().startswith("#1 "), live
    t.keys("C-c")
    screen = t.wait_for("EXITED 130", timeout=30)
    assert "Traceback" not in screen and "Error" not in screen
    assert "stopped by the human" in screen
