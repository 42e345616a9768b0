"""The screen says only what is true: keys that once crashed or misled, driven as a human
drives them, on recorded sessions and on real session processes."""
from __future__ import annotations

import asyncio
import os
import signal

import pytest
from support import make_workspace
from test_app_live import in_flight, live_app
from test_app_live import run as run_live
from textual.widgets import Static
from textual.widgets._toast import Toast
from tui_support import slow_train, synthetic_session, wait_for, workspace

from cockpit.tui.app import CockpitApp
from cockpit.tui.messages import Answered
from cockpit.tui.screens.confirm import ConfirmScreen
from cockpit.tui.screens.experiment import ExperimentScreen
from cockpit.tui.screens.messages import MessagesScreen
from cockpit.tui.widgets.diff_view import DiffView
from cockpit.tui.widgets.message_line import MessageLine
from cockpit.tui.widgets.program_editor import ProgramEditor
from cockpit.tui.widgets.run_log import RunLog
from cockpit.tui.widgets.status_bar import StatusBar
from cockpit.tui.widgets.timeline import Timeline
from cockpit.workspace.lock import read_session

PROGRESS = ("step 00099 (100.0%) | loss: 2.512345 | lrm: 1.00 | dt: 312ms | tok/sec: 52,480 | "
            "mfu: 38.1% | epoch: 1 | remaining: 0s")


def run(app, scenario, size=(120, 40)):
    async def main():
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await scenario(pilot)
    asyncio.run(main())


def recorded(tmp_path, experiments=3):
    ws = synthetic_session(tmp_path / "ws", experiments)
    return CockpitApp(ws, "demo", watch_program=False), ws


async def journal_shown(pilot, app, experiments=3):
    timeline = app.main.query_one(Timeline)
    await wait_for(pilot, lambda: timeline.numbers == list(range(1, experiments + 1)),
                   what="the journal")
    return timeline


# -- the experiment viewer ------------------------------------------------------------------
def test_slash_in_the_experiment_viewers_log_searches_it(tmp_path):
    """enter, tab, / on a finished row: the search opens on the log (it once exited the
    cockpit with a traceback) and finds the line."""
    app, _ = recorded(tmp_path)

    async def scenario(pilot):
        timeline = await journal_shown(pilot, app)
        timeline.focus()
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentScreen), what="viewer")
        await pilot.press("tab")
        assert isinstance(app.focused.parent, RunLog)
        await pilot.press("slash", *"val_bpb", "enter")
        await pilot.pause(0.2)
        assert app.is_running and isinstance(app.screen, ExperimentScreen)
        log = app.screen.query_one(RunLog)
        assert log._found is not None and "val_bpb" in log.log_widget.lines[log._found]

    run(app, scenario)


def test_a_finished_runs_progress_line_wraps_inside_the_pane(tmp_path):
    """The last progress line of a run (a long `|`-separated line) shows every field
    inside the pane, in the main log and in the viewer, with no sideways scrolling."""
    app, ws = recorded(tmp_path)
    log_file = ws / ".cockpit" / "demo" / "runs" / "0003" / "run.log"
    log_file.write_text(f"data_fingerprint: fake0001\n{PROGRESS}\n---\nval_bpb: 1.2\n")

    async def scenario(pilot):
        await journal_shown(pilot, app)
        for run_log in (app.main.query_one(RunLog), None):
            if run_log is None:
                app.open_experiment(3)
                await wait_for(pilot, lambda: isinstance(app.screen, ExperimentScreen))
                await pilot.pause(0.2)
                run_log = app.screen.query_one(RunLog)
            await wait_for(pilot, lambda log=run_log: any(
                "remaining" in line for line in log.log_widget.lines), what="the log")
            lines = run_log.log_widget.lines
            width = run_log.log_widget.scrollable_content_region.width
            assert all(len(line) <= width for line in lines), (width, lines)
            shown = "\n".join(lines)
            for field in PROGRESS.split(" | "):
                assert field in shown
            assert run_log.log_widget.max_scroll_x == 0

    run(app, scenario, size=(100, 30))


# -- program.md only takes typing in its edit mode -------------------------------------------
@pytest.mark.parametrize("size,keys", [((120, 40), ("tab",) * 4), ((80, 24), ("5",))])
def test_keys_never_type_into_program_md_outside_its_edit_mode(tmp_path, size, keys):
    app, ws = recorded(tmp_path)
    program = ws / "program.md"
    before = program.read_text()

    async def scenario(pilot):
        await journal_shown(pilot, app)
        await pilot.press(*keys)
        editor = app.main.query_one(ProgramEditor)
        assert app.focused is editor.text_area  # the pane has focus ...
        assert "save" not in offered(app)  # nothing to save: the footer offers no save
        await pilot.press("1", "a", "3", "x", "ctrl+s")
        await pilot.pause(0.2)
        assert editor.text_area.text == before and program.read_text() == before
        assert not editor.editing and "EDITING" not in str(editor.border_title)
        await pilot.press("E")  # ... edit mode must be asked for, and shows
        assert editor.editing and "EDITING" in str(editor.border_title)
        assert editor.has_class("-editing") and "save" in offered(app)
        await pilot.press("ctrl+home", *"Hi ", "ctrl+s")
        await pilot.pause(0.2)
        assert program.read_text() == "Hi " + before
        await pilot.press("escape")
        assert not editor.editing and "EDITING" not in str(editor.border_title)
        assert "save" not in offered(app)  # saved, left: nothing to save again
        await pilot.press("a")  # the cockpit's key again (nothing awaits: harmless)
        assert program.read_text() == "Hi " + before == editor.text_area.text
        await pilot.press("E", "end", "!", "escape", "5")  # typing left unsaved: a save is
        assert app.focused is editor.text_area and "save" in offered(app)  # offered

    run(app, scenario, size=size)


def offered(app) -> set[str]:
    """The actions the footer offers now (shown and enabled)."""
    return {b.binding.action for b in app.screen.active_bindings.values()
            if b.enabled and b.binding.show}


# -- messages: a line of their own, and a history ----------------------------------------------
@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_messages_cover_nothing_and_keep_a_history(tmp_path, size):
    app, _ = recorded(tmp_path)

    async def scenario(pilot):
        await journal_shown(pilot, app)
        for i in range(4):
            app.notify(f"message {i}")
        app.post_message(Answered("auto_approve", {"ok": True, "message": "auto-approve on"}))
        app.post_message(Answered("stop_run", {"ok": False, "message": "#3 is not running"}))
        await pilot.pause(0.3)
        assert not list(app.screen.query(Toast))
        line = app.main.query_one(MessageLine)
        assert line.notice is not None and line.notice.text == "#3 is not running"
        covered = [app.main.query_one(StatusBar), app.main.query_one("#pane-tabs"),
                   *(app.main.query_one(f"#{p}") for p, _ in app.main.PANES)]
        for widget in covered:
            if widget.display and widget.region.area:
                assert not line.region.overlaps(widget.region), widget
        await pilot.press("M")
        assert isinstance(app.screen, MessagesScreen)
        listed = [n.text for n in app.screen.notices]
        assert listed[-6:] == ["message 0", "message 1", "message 2", "message 3",
                               "auto-approve on", "#3 is not running"]
        shown = str(app.screen.query_one("#messages-list").get_option_at_index(0).prompt)
        assert "#3 is not running" in shown
        assert not any("auto_approve" in t or "stop_run" in t for t in listed)
        await pilot.press("escape")
        await pilot.press("question_mark")  # `?` is never covered: nothing floats over it
        await pilot.pause(0.1)
        assert not list(app.screen.query(Toast))

    run(app, scenario, size=size)


# -- live sessions ---------------------------------------------------------------------------
@pytest.mark.slow
def test_dialogs_follow_the_session(tmp_path):
    """`s` asked while #1 trains, answered after it ended, offers nothing to stop; `q`
    asked while it ran, answered after the session finished, no longer names #1."""
    ws = workspace(tmp_path, slow_train(steps=40, delay=0.05))
    app = live_app(ws, experiments=1)

    async def scenario(pilot):
        await wait_for(pilot, lambda: in_flight(app), what="#1 to train")
        await pilot.press("s")
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen) and "Stop #1" in str(dialog.answers)
        await wait_for(pilot, lambda: "has ended" in dialog.question, timeout=60,
                       what="the stop dialog to see #1 end")
        assert dialog.answers == [("c", "Close")]
        assert "has ended" in str(dialog.query_one(".dialog-question", Static).render())
        await pilot.press("c")
        await wait_for(pilot, lambda: app.screen is app.main)

    run_live(scenario, app)

    ws2 = workspace(tmp_path / "two", slow_train(steps=40, delay=0.05))
    app = live_app(ws2, experiments=1)

    async def quitting(pilot):
        await wait_for(pilot, lambda: in_flight(app), what="#1 to train")
        await pilot.press("q")
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen) and "#1 in flight" in dialog.question
        await wait_for(pilot, lambda: app.view.ended, timeout=60, what="the session to end")
        await wait_for(pilot, lambda: "#1" not in dialog.question, what="the dialog to follow")
        assert "ended" in dialog.question and dict(dialog.answers).keys() == {"q", "c"}
        await pilot.press("q")

    run_live(quitting, app)
    assert app.return_value == "quit"


@pytest.mark.slow
def test_the_status_line_and_the_log_name_what_a_re_run_repeats(tmp_path):
    ws = make_workspace(tmp_path / "ws", train=slow_train(steps=60, delay=0.05),
                        extra={"cockpit.toml": "[judge]\nbaseline_runs = 2\n"})
    app = live_app(ws, experiments=2, auto_approve=False)

    async def scenario(pilot):
        await wait_for(pilot, lambda: any(r["kind"] == "measure" for r in app.view.running),
                       timeout=60, what="the noise re-run")
        await pilot.pause(1.2)
        status = app.main.query_one(StatusBar).status
        assert status.doing == "#1 noise re-run", status
        rendered = str(app.main.query_one(StatusBar).render())
        assert "#1 noise re-run" in rendered and "#2" not in rendered
        assert "#1 noise re-run" in str(app.main.query_one(RunLog).border_title)

    run_live(scenario, app)


@pytest.mark.slow
def test_a_dead_session_stops_looking_alive(tmp_path):
    """kill -9 of the session mid-run: the row, the change pane, the status line, the ETA
    and the loss sparkline all stop saying it runs; R brings it back to life."""
    ws = workspace(tmp_path, slow_train(steps=200, delay=0.05))
    app = live_app(ws, experiments=3)

    async def scenario(pilot):
        await wait_for(pilot, lambda: in_flight(app), what="the run")
        await pilot.pause(1.5)
        n = app.view.running[0]["n"]
        os.kill(read_session(ws).pid, signal.SIGKILL)
        await wait_for(pilot, lambda: app.gone, timeout=5, what="the death to be noticed")
        await pilot.pause(1.2)  # a status tick: nothing counts down
        status = app.main.query_one(StatusBar).status
        assert status.state == "not running" and status.eta is None
        assert status.elapsed is None and status.percent is None
        row = next(r for r in app.view.rows() if r.n == n)
        assert row.live_status == "stopped" and row.verdict == "stopped"
        app.main.query_one(Timeline).select(n)
        app.show_experiment(n)
        await pilot.pause(0.1)
        header = str(app.main.query_one(DiffView).query_one("#diff-header", Static).render())
        assert "stopped unfinished" in header and "running" not in header
        spark = app.main.query_one("#loss-sparkline")
        assert not spark.current
        await pilot.press("R")
        await wait_for(pilot, lambda: not app.gone and in_flight(app), timeout=30,
                       what="the resume")
        assert any(r.live_status == "running" for r in app.view.rows())

    run_live(scenario, app)


def test_no_color_keeps_every_text_readable(tmp_path, monkeypatch):
    """NO_COLOR turns colours to greys; red on a dark panel came out as grey 237 on 235.
    Every text keeps a readable gap to its background."""
    from rich.style import Style
    from textual.color import Color

    from cockpit.tui.contrast import MIN_CONTRAST, ReadableMonochrome, readable

    monkeypatch.setenv("NO_COLOR", "1")
    app, _ = recorded(tmp_path)
    assert any(isinstance(f, ReadableMonochrome) for f in app._filters)
    for colour in ("red", "green", "yellow", "magenta", "bright_black", "#202020"):
        for panel in (Color(18, 18, 18), Color(40, 40, 40), Color(230, 230, 230)):
            shown = readable(Style(color=colour, bgcolor=panel.rich_color), panel)
            gap = Color.from_rich_color(shown.color).brightness - panel.monochrome.brightness
            assert abs(gap) >= MIN_CONTRAST - 1e-9, (colour, panel)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_the_focused_pane_is_marked_in_its_title_and_a_key_reaches_each(tmp_path, size):
    app, _ = recorded(tmp_path)

    async def scenario(pilot):
        await journal_shown(pilot, app)
        main = app.main
        for key, pane in (("2", "diff"), ("3", "run-log"), ("4", "chart"), ("5", "program"),
                          ("1", "timeline")):
            await pilot.press(key)
            await pilot.pause()
            widget = main.query_one(f"#{pane}")
            assert widget.display and main.pane_of(app.focused) == pane, (key, app.focused)
            assert "reverse" in str(widget.styles.border_title_style), pane
            others = [main.query_one(f"#{p}") for p, _ in main.PANES if p != pane]
            assert all("reverse" not in str(w.styles.border_title_style) for w in others)

    run(app, scenario, size=size)
