"""The cockpit driven through Textual's Pilot with a real loop on a temp workspace.

Each test runs a bounded session (the fast fake train.py, a few experiments) so the app
settles; the loop thread, git and the training subprocess are all real."""
from __future__ import annotations

import asyncio

import pytest
from cockpit.widgets.run_log import RunLog
from cockpit.widgets.timeline import Timeline
from support import read_journal
from tui_support import slow_train, wait_for, workspace

from cockpit.app import CockpitApp
from cockpit.bridge import LoopBridge
from cockpit.config import Config
from cockpit.loop import ResearchLoop
from cockpit.screens.confirm import ConfirmScreen
from cockpit.screens.help import HelpScreen
from cockpit.screens.replay import ReplayScreen
from cockpit.screens.steer import NoteScreen
from cockpit.tui import stop


def live_app(ws, experiments=3, auto_approve=True, tag="t"):
    loop = ResearchLoop(ws, Config(), tag)
    bridge = LoopBridge(loop, post=None, auto_approve=auto_approve, max_experiments=experiments)
    return CockpitApp(ws, tag, bridge, watch_program=False), bridge


def run(scenario, app, size=(120, 40)):
    async def main():
        async with app.run_test(size=size) as pilot:
            try:
                await scenario(pilot)
            finally:
                if app.bridge is not None and app.bridge.alive:
                    stop(app.bridge)
                    await asyncio.to_thread(app.bridge.thread.join, 20)
    asyncio.run(main())


def test_auto_approved_session_fills_every_pane(tmp_path):
    ws = workspace(tmp_path)
    app, bridge = live_app(ws, experiments=3)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.finished, what="the loop to finish")
        await pilot.pause(0.2)
        main = app.main
        timeline = main.query_one(Timeline)
        assert timeline.row_count == 3 and timeline.numbers == [1, 2, 3]
        assert timeline.selected_n == 3  # newest first, followed
        assert len(main.query_one("#chart").points) == 3
        status = main.query_one("#status").status
        assert status.state == "finished" and status.best is not None and status.n == 3
        assert status.agent == "tune" and "auto-approve" in status.flags
        log = main.query_one(RunLog)
        assert "val_bpb" in "\n".join(log.log_widget.lines)
        # the \r progress lines of a run end as one line each, not a flood
        steps = [l for l in log.log_widget.lines if l.startswith("step ")]
        assert len(steps) == 1 and steps[0].startswith("step 00002"), log.log_widget.lines
        assert "ran 3" in bridge.finished

    run(scenario, app)


def test_approve_reject_and_the_reason_is_journaled(tmp_path):
    ws = workspace(tmp_path)
    app, bridge = live_app(ws, experiments=3, auto_approve=False)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.approval is not None, what="proposal #2")
        assert app.main.query_one("#status").status.state == "awaiting approval"
        assert app.main.query_one(Timeline).selected_n == 2
        await pilot.press("r")
        assert isinstance(app.screen, NoteScreen)
        await pilot.press(*"too big", "enter")
        await wait_for(pilot, lambda: app.approval is not None and app.approval.n == 3,
                       what="proposal #3")
        await pilot.press("a")
        await wait_for(pilot, lambda: app.finished, what="the loop to finish")

    run(scenario, app)
    results = {e["n"]: e for e in read_journal(ws, "t") if e["event"] == "result"}
    assert results[2]["status"] == "rejected" and "too big" in results[2]["reason"]
    assert results[3]["status"] in ("keep", "discard")


def test_escape_on_reject_keeps_waiting_and_auto_approve_releases(tmp_path):
    ws = workspace(tmp_path)
    app, bridge = live_app(ws, experiments=2, auto_approve=False)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.approval is not None, what="proposal #2")
        await pilot.press("r", "escape")
        assert bridge.gate.pending == 2  # still waiting for the human
        await pilot.press("A")  # auto-approve on: the waiting proposal goes ahead
        await wait_for(pilot, lambda: app.finished, what="the loop to finish")
        assert bridge.loop.auto_approve

    run(scenario, app)
    statuses = [e["status"] for e in read_journal(ws, "t") if e["event"] == "result"]
    assert "rejected" not in statuses and len(statuses) == 2


def test_approve_with_nothing_pending_is_harmless(tmp_path):
    ws = workspace(tmp_path)
    app, bridge = live_app(ws, experiments=1)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.finished, what="the loop to finish")
        await pilot.press("a", "r")  # disabled: nothing happens, nothing breaks
        assert app.screen is app.main

    run(scenario, app)


def test_pause_resume_steer_and_stop_run(tmp_path):
    ws = workspace(tmp_path, slow_train())
    app, bridge = live_app(ws, experiments=3)

    async def scenario(pilot):
        await wait_for(pilot, lambda: bridge.loop.runner.running, what="the baseline run")
        await pilot.press("p")  # pause after this run
        await wait_for(pilot, lambda: app.view.paused)
        await pilot.pause(0.2)
        assert "pause after this run" in app.main.query_one("#status").status.flags
        await pilot.press("n")
        await pilot.press(*"try BATCH_SIZE", "enter")
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # keep it running
        assert bridge.loop.runner.running
        await pilot.press("s", "y")
        await wait_for(pilot, lambda: app.view.state.finished, what="the stopped run's result")
        await pilot.pause(0.2)
        exp = app.view.state.experiments[0]
        assert exp.status == "crash" and "stopped by the human" in exp.reason
        assert app.main.query_one("#status").status.state in ("paused", "finished")

    run(scenario, app)
    notes = [e["text"] for e in read_journal(ws, "t") if e["event"] == "note"]
    assert notes == ["try BATCH_SIZE"]


def test_resume_goes_on(tmp_path):
    ws = workspace(tmp_path)
    app, bridge = live_app(ws, experiments=2)

    async def scenario(pilot):
        await pilot.press("p")
        await wait_for(pilot, lambda: app.view.paused)
        await pilot.pause(0.3)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.finished, what="the loop to finish after resume")
        assert len(app.view.state.finished) == 2

    run(scenario, app)


def test_quit_asks_when_the_loop_runs(tmp_path):
    ws = workspace(tmp_path, slow_train())
    app, bridge = live_app(ws, experiments=1)

    async def scenario(pilot):
        await wait_for(pilot, lambda: bridge.loop.runner.running, what="the run")
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("c")
        assert app.screen is app.main and app.is_running
        await pilot.press("q", "l")
        await pilot.pause(0.1)

    run(scenario, app)
    assert app.return_value == "detach"


def test_quit_and_stop(tmp_path):
    ws = workspace(tmp_path, slow_train())
    app, bridge = live_app(ws, experiments=1)

    async def scenario(pilot):
        await wait_for(pilot, lambda: bridge.loop.runner.running, what="the run")
        await pilot.press("q", "s")
        await pilot.pause(0.1)

    run(scenario, app)
    assert app.return_value == "stop"


def test_help_palette_replay_and_theme(tmp_path):
    ws = workspace(tmp_path)
    app, bridge = live_app(ws, experiments=2)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.finished, what="the loop to finish")
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


def test_small_terminal_collapses_panes_into_tabs(tmp_path):
    ws = workspace(tmp_path)
    app, bridge = live_app(ws, experiments=2)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.finished, what="the loop to finish")
        main = app.main
        assert main.narrow and main.query_one("#pane-tabs").display
        shown = [p for p, _ in main.PANES if main.query_one(f"#{p}").display]
        assert shown == ["timeline"]
        await pilot.press("3")
        shown = [p for p, _ in main.PANES if main.query_one(f"#{p}").display]
        assert shown == ["run-log"]
        assert main.query_one(RunLog).log_widget.lines  # caught up when shown
        await pilot.press("e")
        assert main.query_one("#program").display and app.focused.id == "program-text"
        await pilot.press("escape")
        assert app.focused.id == "timeline"
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.2)
        assert all(main.query_one(f"#{p}").display for p, _ in main.PANES)
        assert not main.query_one("#pane-tabs").display

    run(scenario, app, size=(80, 24))
