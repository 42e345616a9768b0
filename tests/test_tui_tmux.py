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

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (.ci/run installs it)")


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

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the screen:\n{self.screen()}")

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


def test_cockpit_in_a_terminal_approve_watch_and_quit(tmp_path, term):
    ws = workspace(tmp_path, slow_train(steps=40, delay=0.05))
    t = term(120, 40, cockpit_command("--experiments", "3"), ws)
    screen = t.wait_for("awaiting approval")
    for pane in ("timeline", "change", "run log", "program.md", "val_bpb per experiment"):
        assert pane in screen
    assert "Approve" in screen and "baseline" in screen
    t.keys("a")
    t.wait_for("training")
    t.keys("?")
    t.wait_for("Keys")
    t.keys("Escape")
    time.sleep(0.3)  # escape then q at once reads as alt+q, as in any terminal
    t.keys("q")
    t.wait_for("Leave it running headless")
    t.keys("s")
    screen = t.wait_for("EXITED 0", timeout=30)
    assert "stopping the loop" in screen


def test_cockpit_small_terminal_and_replay(tmp_path, term):
    ws = workspace(tmp_path)
    t = term(80, 24, cockpit_command("--experiments", "2", "--auto-approve"), ws)
    t.wait_for("finished")
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
