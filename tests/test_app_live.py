"""The cockpit driven through Textual's Pilot, attached to a real session process on a
temp workspace (the fast fake train.py, a few experiments): the session, git and the
training subprocesses are all real; the App is one of its clients."""
from __future__ import annotations

import asyncio
import os
import signal

import pytest
from support import make_workspace, read_journal
from textual.widgets import TextArea
from tui_support import slow_train, wait_for, workspace

from cockpit.client.bootstrap import start_detached
from cockpit.tui.app import CockpitApp
from cockpit.tui.screens.confirm import ConfirmScreen
from cockpit.tui.screens.experiment import ExperimentScreen
from cockpit.tui.screens.help import HelpScreen
from cockpit.tui.screens.proposal_editor import ProposalEditor
from cockpit.tui.screens.replay import ReplayScreen
from cockpit.tui.screens.steer import NoteScreen
from cockpit.tui.widgets.run_log import RunLog
from cockpit.tui.widgets.timeline import Timeline
from cockpit.workspace.lock import read_session


def live_app(ws, experiments=3, auto_approve=True, tag="t"):
    options = ["--experiments", str(experiments)] + ([] if auto_approve else ["--review"])
    start_detached(ws, tag, options)
    return CockpitApp(ws, tag, watch_program=False, resume=lambda: start_detached(ws, tag, options))


def run(scenario, app, size=(120, 40)):
    async def main():
        async with app.run_test(size=size) as pilot:
            await scenario(pilot)
    try:
        asyncio.run(main())
    finally:
        info = read_session(app.workspace)
        if info is not None and info.alive:
            os.kill(info.pid, signal.SIGKILL)


def in_flight(app) -> bool:
    return any(r["kind"] == "experiment" for r in app.view.running)


@pytest.mark.slow
def test_auto_approved_session_fills_every_pane(tmp_path):
    ws = workspace(tmp_path)
    app = live_app(ws, experiments=3)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.view.ended, what="the session to finish")
        await pilot.pause(0.5)
        main = app.main
        timeline = main.query_one(Timeline)
        assert timeline.row_count == 3 and timeline.numbers == [1, 2, 3]
        assert timeline.selected_n == 3  # newest first, followed
        assert len(main.query_one("#chart").points) == 3
        status = main.query_one("#status").status
        assert status.state == "finished" and status.best is not None and status.n == 3
        assert status.agent == "tune"
        log = main.query_one(RunLog)
        assert "val_bpb" in "\n".join(log.log_widget.lines)
        # the \r progress lines of a run end as one line each, not a flood
        steps = [line for line in log.log_widget.lines if line.startswith("step ")]
        assert len(steps) == 1 and steps[0].startswith("step 00002"), log.log_widget.lines
        assert "ran 3" in app.view.ended
        timeline.focus()
        await pilot.press("enter")  # #3 in full: its diff and its whole log
        assert isinstance(app.screen, ExperimentScreen)
        whole = app.screen.query_one(RunLog)
        assert "val_bpb" in "\n".join(whole.log_widget.lines)
        await pilot.press("escape")
        await pilot.press("m", "down", "m", "c")  # mark #3 and #2, compare them
        assert isinstance(app.screen, ExperimentScreen)
        assert str(app.screen.query_one("#experiment-title").render()).startswith(" #2 → #3")
        assert not app.screen.query(RunLog)  # a comparison has no single log
        await pilot.press("escape")
        assert app.screen is app.main

    run(scenario, app)


@pytest.mark.slow
def test_approve_reject_and_the_reason_is_journaled(tmp_path):
    ws = workspace(tmp_path)
    app = live_app(ws, experiments=2, auto_approve=False)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.approval == 2, what="proposal #2")
        await pilot.pause(0.2)
        assert app.main.query_one("#status").status.state == "awaiting approval"
        assert app.main.query_one(Timeline).selected_n == 2
        await pilot.press("r")
        assert isinstance(app.screen, NoteScreen)
        await pilot.press(*"too big", "enter")
        await wait_for(pilot, lambda: app.approval == 3, what="proposal #3")
        await pilot.press("a")
        await wait_for(pilot, lambda: app.view.ended, what="the session to finish")

    run(scenario, app)
    results = {e["n"]: e for e in read_journal(ws, "t") if e["event"] == "result"}
    assert results[2]["status"] == "rejected" and "too big" in results[2]["reason"]
    assert results[3]["status"] in ("keep", "discard")


@pytest.fixture
def reviewed(tmp_path, monkeypatch):
    """A live session of two experiments whose proposals wait for the human, edited in the
    app's own editor (no $VISUAL or $EDITOR): (workspace, app)."""
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)
    ws = workspace(tmp_path)
    return ws, live_app(ws, experiments=2, auto_approve=False)


@pytest.mark.slow
def test_a_proposal_edited_in_the_app_runs_as_edited(reviewed):
    ws, app = reviewed

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.approval == 2, what="proposal #2")
        await pilot.press("e")
        assert isinstance(app.screen, ProposalEditor)
        text = app.screen.query_one(TextArea)
        text.text = text.text + "# the human's line\n"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.view.ended, what="the session to finish")
        events = read_journal(ws, "t")
        assert [e["n"] for e in events if e["event"] == "edited"] == [2]
        assert [e for e in events if e["event"] == "approved"][-1]["edited"] is True
        assert [e["status"] for e in events if e["event"] == "result"][-1] in ("keep", "discard")

    run(scenario, app)


@pytest.mark.slow
def test_no_key_of_the_keymap_breaks_the_cockpit(reviewed):
    """Every key the cockpit offers, pressed on a live session with a proposal waiting:
    each opens what it opens, escape closes it, and the app is still there."""
    from cockpit.tui.keymap import ACTIONS

    _, app = reviewed

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.approval == 2, what="proposal #2")
        app.main.query_one(Timeline).focus()
        for action in ACTIONS:
            if action.id in ("quit", "approve"):
                continue
            await pilot.press(action.keys.split(",")[0])
            await pilot.pause(0.1)
            for _ in range(3):  # close what it opened (a dialog, a screen, the editor)
                await pilot.press("escape")
                if app.screen is app.main:
                    break
            assert app.screen is app.main, f"{action.id} left {app.screen!r} open"
            assert app.is_running, f"{action.id} ended the cockpit"
        await pilot.press("a")
        await wait_for(pilot, lambda: app.view.ended, what="the session to finish")
        await pilot.press("q")

    run(scenario, app)


@pytest.mark.slow
def test_escape_on_reject_keeps_waiting_and_auto_approve_releases(tmp_path):
    ws = workspace(tmp_path)
    app = live_app(ws, experiments=2, auto_approve=False)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.approval == 2, what="proposal #2")
        await pilot.press("r", "escape")
        await pilot.pause(0.3)
        assert app.view.awaiting == [2]  # still waiting for the human
        await pilot.press("A")  # auto-approve on: the waiting proposal goes ahead
        await wait_for(pilot, lambda: app.view.ended, what="the session to finish")
        assert app.view.state.auto_approve  # as the journal has it (nothing is live now)

    run(scenario, app)
    statuses = [e["status"] for e in read_journal(ws, "t") if e["event"] == "result"]
    assert "rejected" not in statuses and len(statuses) == 2


def test_approve_with_nothing_pending_is_harmless(tmp_path):
    ws = workspace(tmp_path)
    app = live_app(ws, experiments=1)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.view.ended, what="the session to finish")
        await pilot.press("a", "r")  # disabled: nothing happens, nothing breaks
        assert app.screen is app.main

    run(scenario, app)


@pytest.mark.slow
def test_pause_resume_steer_and_stop_run(tmp_path):
    ws = workspace(tmp_path, slow_train())
    app = live_app(ws, experiments=3)

    async def scenario(pilot):
        await wait_for(pilot, lambda: in_flight(app), what="the baseline run")
        await pilot.press("p")  # pause after this run
        await wait_for(pilot, lambda: app.view.paused)
        await pilot.pause(0.2)
        assert "paused after this run" in app.main.query_one("#status").status.flags
        await pilot.press("n")
        await pilot.press(*"try BATCH_SIZE", "enter")
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # keep it running
        await pilot.pause(0.2)
        assert in_flight(app)
        await pilot.press("s", "y")
        await wait_for(pilot, lambda: app.view.state.finished, what="the stopped run's result")
        await pilot.pause(0.2)
        exp = app.view.state.experiments[0]
        assert exp.status == "crash" and "stopped by the human" in exp.reason
        assert app.main.query_one("#status").status.state in ("paused", "finished")

    run(scenario, app)
    notes = [e["text"] for e in read_journal(ws, "t") if e["event"] == "note"]
    assert notes == ["try BATCH_SIZE"]


@pytest.mark.slow
def test_resume_goes_on(tmp_path):
    ws = workspace(tmp_path, slow_train(steps=20, delay=0.05))
    app = live_app(ws, experiments=2)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.view.live, what="the session's state")
        await pilot.press("p")
        await wait_for(pilot, lambda: app.view.paused)
        await pilot.pause(0.3)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.view.ended, what="the session to finish after resume")
        assert len(app.view.state.finished) == 2

    run(scenario, app)


@pytest.mark.slow
def test_quit_asks_when_the_loop_runs(tmp_path):
    ws = workspace(tmp_path, slow_train())
    app = live_app(ws, experiments=1)

    async def scenario(pilot):
        await wait_for(pilot, lambda: in_flight(app), what="the run")
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("c")
        assert app.screen is app.main and app.is_running
        await pilot.press("q", "d")
        await pilot.pause(0.1)
        assert read_session(ws).alive  # detaching leaves the research running

    run(scenario, app)
    assert app.return_value == "detach"


def test_quit_and_stop(tmp_path):
    ws = workspace(tmp_path, slow_train())
    app = live_app(ws, experiments=1)

    async def scenario(pilot):
        await wait_for(pilot, lambda: in_flight(app), what="the run")
        app.main.query_one("#program-text").focus()  # a read-only editor lets q through
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("s")
        await pilot.pause(0.1)

    run(scenario, app)
    assert app.return_value == "stop"
    import time
    for _ in range(100):
        if read_session(ws) is None:
            break
        time.sleep(0.1)
    assert read_session(ws) is None
    result = next(e for e in read_journal(ws, "t") if e["event"] == "result")
    assert result["reason"] == "stopped by the human"


@pytest.mark.slow
def test_quit_and_stop_during_a_noise_re_run_names_it_and_ends_it(tmp_path):
    """The re-run is a run in flight like an experiment: the dialog says so, and the stop
    ends it now instead of letting it train to the end of its budget."""
    ws = make_workspace(tmp_path / "ws", train=slow_train(steps=100, delay=0.1),
                        extra={"cockpit.toml": "[judge]\nbaseline_runs = 2\n"})
    app = live_app(ws, experiments=2)

    async def scenario(pilot):
        await wait_for(pilot, lambda: any(r["kind"] == "measure" for r in app.view.running),
                       what="the noise re-run")
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        asked = app.screen.question
        assert "#1 noise re-run" in asked and "no run in flight" not in asked
        await pilot.press("s")

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            await scenario(pilot)
    asyncio.run(main())  # not run(): the session must be left to end on its own
    assert app.return_value == "stop"
    import time
    for _ in range(50):  # well before the re-run's 10 s would end on its own
        if read_session(ws) is None:
            break
        time.sleep(0.1)
    info = read_session(ws)
    if info is not None and info.alive:
        os.kill(info.pid, signal.SIGKILL)
    assert info is None, "the session still ran the re-run"
    measured = [e for e in read_journal(ws, "t") if e["event"] == "measure"]
    assert measured and measured[-1]["metric"] is None  # ended, not measured


@pytest.mark.slow
def test_help_palette_replay_and_theme(tmp_path):
    ws = workspace(tmp_path)
    app = live_app(ws, experiments=2)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.view.ended, what="the session to finish")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        assert app.screen.__class__.__name__ == "CommandPalette"
        await pilot.press(*"replay")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReplayScreen), what="replay")
        await pilot.press("escape")
        assert app.screen is app.main
        await pilot.press("t")
        assert isinstance(app.screen, ReplayScreen)
        await pilot.press("q")
        assert app.screen is app.main
        await pilot.press("ctrl+t")
        assert app.theme == "textual-light"
        await pilot.press("ctrl+t")
        assert app.theme == "textual-dark"

    run(scenario, app)


@pytest.mark.slow
def test_small_terminal_collapses_panes_into_tabs(tmp_path):
    ws = workspace(tmp_path)
    app = live_app(ws, experiments=2)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.view.ended, what="the session to finish")
        await pilot.pause(0.3)
        main = app.main
        assert main.narrow and main.query_one("#pane-tabs").display
        shown = [p for p, _ in main.PANES if main.query_one(f"#{p}").display]
        assert shown == ["timeline"]
        await pilot.press("3")
        shown = [p for p, _ in main.PANES if main.query_one(f"#{p}").display]
        assert shown == ["run-log"]
        assert main.query_one(RunLog).log_widget.lines  # caught up when shown
        await pilot.press("E")
        assert main.query_one("#program").display and app.focused.id == "program-text"
        await pilot.press("escape")
        assert app.focused.id == "timeline"
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.2)
        assert all(main.query_one(f"#{p}").display for p, _ in main.PANES)
        assert not main.query_one("#pane-tabs").display

    run(scenario, app, size=(80, 24))


def test_a_session_that_dies_is_said_so_and_resumed(tmp_path):
    ws = workspace(tmp_path, slow_train(steps=100, delay=0.05))
    app = live_app(ws, experiments=3)

    async def scenario(pilot):
        await wait_for(pilot, lambda: in_flight(app), what="the run")
        os.kill(read_session(ws).pid, signal.SIGKILL)
        await wait_for(pilot, lambda: app.gone, timeout=5, what="the death to be noticed")
        assert "died" in app.gone and "died" in app.main.query_one("#status").status.flags
        await pilot.press("R")
        await wait_for(pilot, lambda: not app.gone and in_flight(app), what="the resume")
        events = read_journal(ws, "t")
        assert any(e["event"] == "session" and e.get("resumed") for e in events)

    run(scenario, app)
