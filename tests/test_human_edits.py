"""A human's decisions, recorded as they were made, through real sessions (the fast fake
train.py, the offline tune agent, real git and real session processes):

- a proposal the human edited before it ran is the human's change everywhere: the commit
  and its message, results.tsv, experiments.md, the journal's fold, the cockpit's timeline
  and change pane; the editor opens on the line the proposal changes;
- a session killed with SIGKILL and resumed keeps the auto-approve setting it had (R in
  the cockpit, `cockpit run`), unless the human says otherwise on the command line.
"""
from __future__ import annotations

import ast
import asyncio
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from support import cockpit, live_journal, make_workspace, read_journal, results_rows, wait_for
from textual.app import App
from textual.widgets import TextArea
from tui_support import slow_train
from tui_support import wait_for as pilot_wait

from cockpit.client.bootstrap import start_detached
from cockpit.client.connection import request
from cockpit.domain.diffs import (
    EDITED_MARK,
    describe_diff,
    first_changed_line,
    unified_diff,
)
from cockpit.domain.state import Experiment, SessionState
from cockpit.tui.app import CockpitApp
from cockpit.tui.screens.proposal_editor import ProposalEditor
from cockpit.tui.widgets.diff_view import DiffView
from cockpit.tui.widgets.timeline import Timeline
from cockpit.workspace.lock import read_session

QUICK = "[judge]\nbaseline_runs = 0\n"  # no noise re-runs: the proposals come at once
ASSIGNED = re.compile(r"^\+([A-Z_]+) = ([^#\s]+)(.*)$", re.MULTILINE)


# -- what the human changes, and what every record must then say ---------------------------
class HumanEdit:
    """The agent's proposed change of one constant, and the human's other value for it."""

    def __init__(self, exp: Experiment, source: str) -> None:
        match = ASSIGNED.search(exp.diff)
        assert match is not None, exp.diff  # the tune agent moves one constant
        self.name, self.agents_value, rest = match.groups()
        value = ast.literal_eval(self.agents_value)
        self.humans_value = str(value + 8) if isinstance(value, int) else repr(value * 1.5)
        self.agents_line = match.group(0)[1:]
        self.humans_line = f"{self.name} = {self.humans_value}{rest}"
        assert source.count(self.agents_line) == 1
        self.source = source.replace(self.agents_line, self.humans_line)
        base = re.search(rf"^-{self.name} = ([^#\s]+)", exp.diff, re.MULTILINE)
        assert base is not None, exp.diff
        self.base_value = base.group(1)
        self.agents_description = exp.description
        self.first_line = first_changed_line(exp.diff)

    def check_recorded(self, ws: Path, tag: str, n: int) -> Experiment:
        """The journal's fold, the commit, results.tsv and experiments.md all say the
        human's change; the fold's experiment n."""
        exp = SessionState.from_events(read_journal(ws, tag)).get(n)
        assert exp is not None and exp.edited and exp.status in ("keep", "discard")
        assert exp.proposed == self.agents_description
        assert f"+{self.humans_line}" in exp.diff.splitlines()
        assert f"+{self.agents_line}" not in exp.diff.splitlines()
        assert exp.description == \
            f"{self.name} {self.base_value} -> {self.humans_value} {EDITED_MARK}"
        assert exp.params == {} and exp.move is None  # the agent's move is not what ran

        committed = git(ws, "show", f"{exp.commit}:train.py")
        assert self.humans_line in committed and self.agents_line not in committed
        assert git(ws, "log", "-1", "--format=%B", exp.commit).strip() == exp.description

        rows = {row[0]: row for row in results_rows(ws)}
        assert rows[exp.commit[:7]][4] == exp.description

        md = (ws / "experiments.md").read_text()
        assert f"## {n}. {exp.description}\n" in md
        assert f"| {exp.description} |" in md
        assert f"\n+{self.humans_line}\n" in md and f"\n+{self.agents_line}\n" not in md
        assert f"- **Edited by the human** before it ran; the agent proposed: " \
               f"{self.agents_description}\n" in md
        return exp


def git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws, capture_output=True, text=True,
                          check=True).stdout


def proposal_of(ws: Path, tag: str, n: int) -> tuple[Experiment, str]:
    """Proposal n as the journal has it, and the file it proposes (its blob)."""
    exp = SessionState.from_events(live_journal(ws, tag)).get(n)
    assert exp is not None and exp.source_blob
    return exp, git(ws, "cat-file", "blob", exp.source_blob)


def kill_session(ws: Path) -> None:
    info = read_session(ws)
    if info is not None and info.alive:
        os.kill(info.pid, signal.SIGKILL)


@pytest.fixture
def ws(tmp_path):
    workspace = make_workspace(tmp_path / "ws", extra={"cockpit.toml": QUICK})
    yield workspace
    kill_session(workspace)


# -- an edited proposal -------------------------------------------------------------------
@pytest.mark.slow
def test_a_proposal_edited_through_the_sessions_command_is_the_humans_in_every_record(ws):
    started = cockpit("run", "--detach", "--review", "--experiments", "2", "--tag", "h",
                      cwd=ws)
    assert started.returncode == 0, started.stderr
    wait_for(lambda: request(ws, "status")["live"]["awaiting"] == [2], what="proposal #2")
    edit = HumanEdit(*proposal_of(ws, "h", 2))

    answer = request(ws, "approve", n=2, source=edit.source)  # what the cockpit sends
    assert answer == {"ok": True, "message": "#2 approved as edited"}
    wait_for(lambda: read_session(ws) is None, timeout=60, what="the session to end")
    edit.check_recorded(ws, "h", 2)


@pytest.mark.slow
def test_a_proposal_edited_in_the_cockpit_shows_and_is_recorded_as_edited(ws, monkeypatch):
    """e on the proposal waiting, the editor's cursor on its changed line, the value
    changed, ctrl+s: the timeline row and the change pane show the human's change, live
    and after the run, and so does every record."""
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)
    start_detached(ws, "p", ["--review", "--experiments", "2"])
    app = CockpitApp(ws, "p", watch_program=False)
    seen: dict[str, object] = {}

    async def scenario(pilot):
        await pilot_wait(pilot, lambda: app.approval == 2, what="proposal #2")
        edit = HumanEdit(*proposal_of(ws, "p", 2))
        await pilot.press("e")
        assert isinstance(app.screen, ProposalEditor)
        text = app.screen.query_one(TextArea)
        assert edit.first_line > 0  # the fake train.py's constants are below its imports
        assert text.cursor_location == (edit.first_line, 0)
        assert text.document.get_line(edit.first_line) == edit.agents_line
        text.text = edit.source
        await pilot.press("ctrl+s")
        await pilot_wait(pilot, lambda: app.view.ended, timeout=60, what="the session's end")
        await pilot.pause(0.3)
        timeline = app.main.query_one(Timeline)
        timeline.select(2)
        await pilot.pause(0.2)
        row = " ".join(cell.plain for cell in timeline.get_row("2"))  # keyed by its n
        seen.update(edit=edit, row=row, diff=app.main.query_one(DiffView).diff)

    async def main():
        async with app.run_test(size=(160, 40)) as pilot:
            await scenario(pilot)

    asyncio.run(main())
    edit = seen["edit"]
    assert isinstance(edit, HumanEdit)
    exp = edit.check_recorded(ws, "p", 2)
    row, diff = str(seen["row"]), str(seen["diff"])
    assert f"-> {edit.humans_value}" in row and f"-> {edit.agents_value} " not in row, row
    assert diff == exp.diff.rstrip("\n")
    assert f"+{edit.humans_line}" in diff.splitlines()


def test_the_proposal_editor_opens_on_the_change_of_a_long_file_in_view():
    base = "".join(f"X{i} = {i}\n" for i in range(600))
    proposed = base.replace("X400 = 400\n", "X400 = 401\n")

    class Host(App):
        def on_mount(self) -> None:
            self.push_screen(ProposalEditor(3, "train.py", proposed,
                                            unified_diff(base, proposed, "train.py")))

    async def main():
        app = Host()
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.2)
            text = app.screen.query_one(TextArea)
            top, height = text.scroll_offset.y, text.size.height
            assert text.cursor_location == (400, 0)
            assert top + 3 < 400 < top + height - 3  # in view, not at an edge

    asyncio.run(main())


def test_a_change_is_described_from_its_diff():
    """How a human's change is described: each constant set anew, then the other lines;
    without a constant, its first new line."""
    base = "import math\nLR = 1e-2  # step\nBATCH = 16\n\ndef f():\n    return 1\n"
    constant = unified_diff(base, base.replace("1e-2", "3e-2"), "train.py")
    assert describe_diff(constant) == "LR 1e-2 -> 3e-2"
    assert first_changed_line(constant) == 1
    both = unified_diff(base, base.replace("1e-2", "3e-2").replace("return 1", "return 2"),
                        "train.py")
    assert describe_diff(both) == "LR 1e-2 -> 3e-2 (+1 other line)"
    code = unified_diff(base, base.replace("return 1", "return 2"), "train.py")
    assert describe_diff(code) == "edit: return 2"
    assert first_changed_line(code) == 5
    removed = unified_diff(base, base.replace("BATCH = 16\n", ""), "train.py")
    assert describe_diff(removed) == "BATCH removed" and first_changed_line(removed) == 2


# -- auto-approve across a kill --------------------------------------------------------------
def auto_approve_now(ws: Path) -> bool:
    return request(ws, "status")["live"]["auto_approve"]


def last_start(ws: Path, tag: str) -> dict:
    return [e for e in read_journal(ws, tag) if e["event"] == "session"][-1]


def sigkill(ws: Path) -> None:
    info = read_session(ws)
    os.kill(info.pid, signal.SIGKILL)
    wait_for(lambda: not read_session(ws).alive, what="the session to die")


@pytest.mark.slow
def test_cockpit_run_resumes_a_killed_session_with_its_own_auto_approve(tmp_path):
    """Turned off by a human, then SIGKILL: `cockpit run --detach` resumes it with
    proposals waiting for approval; `--auto-approve` (the human saying otherwise) turns it
    on again."""
    ws = make_workspace(tmp_path / "ws", train=slow_train(steps=20, delay=0.05),
                        extra={"cockpit.toml": QUICK})
    try:
        assert cockpit("run", "--detach", "--tag", "k", cwd=ws).returncode == 0
        assert auto_approve_now(ws) is True  # a headless session's default
        assert request(ws, "auto_approve", on=False)["ok"]
        sigkill(ws)

        resumed = cockpit("run", "--detach", "--tag", "k", cwd=ws)
        assert resumed.returncode == 0, resumed.stderr
        assert auto_approve_now(ws) is False
        assert last_start(ws, "k")["resumed"] and last_start(ws, "k")["auto_approve"] is False
        n = wait_for(lambda: request(ws, "status")["live"]["awaiting"], timeout=60,
                     what="a proposal waiting for the human")[0]
        assert SessionState.from_events(read_journal(ws, "k")).auto_approve is False
        sigkill(ws)

        told = cockpit("run", "--detach", "--auto-approve", "--tag", "k", cwd=ws)
        assert told.returncode == 0, told.stderr
        assert auto_approve_now(ws) is True
        wait_for(lambda: any(e["event"] == "run_start" and e["n"] == n
                             for e in live_journal(ws, "k")), timeout=60,
                 what=f"#{n} to run without a human")
    finally:
        kill_session(ws)


@pytest.mark.slow
@pytest.mark.tmux
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_r_in_the_cockpit_resumes_a_killed_session_with_auto_approve_on(tmp_path):
    """`cockpit` in a terminal: A turns auto-approve on, the session is killed with
    SIGKILL, R resumes it: with auto-approve on, so the next proposals run with no one
    there to approve them."""
    from test_tui_tmux import Tmux, cockpit_command

    ws = make_workspace(tmp_path / "ws", train=slow_train(steps=20, delay=0.05),
                        extra={"cockpit.toml": QUICK})
    t = Tmux(120, 40, cockpit_command("--tag", "r"), ws)
    try:
        t.wait_for("awaiting approval", timeout=60)  # a new session waits for the human
        t.keys("A")
        wait_for(lambda: any(e["event"] == "auto_approve" and e["on"]
                             for e in live_journal(ws, "r")), what="auto-approve on")
        killed = read_session(ws).pid
        sigkill(ws)
        t.wait_for("R resumes it", timeout=30)
        t.keys("R")
        wait_for(lambda: (s := read_session(ws)) is not None and s.alive and s.pid != killed,
                 timeout=60, what="the resumed session")  # none until it has written its file
        assert auto_approve_now(ws) is True
        assert last_start(ws, "r")["resumed"] and last_start(ws, "r")["auto_approve"] is True
        after = len(read_journal(ws, "r"))
        wait_for(lambda: any(e["event"] == "run_start" for e in live_journal(ws, "r")[after:]),
                 timeout=60, what="a run started with no one approving it")
    finally:
        kill_session(ws)
        t.close()
