"""The cockpit on recorded sessions (no session process needed): the program editor, a
session that is over, replay, and the small parts they are built from."""
from __future__ import annotations

import asyncio
import fcntl
import json
import os

import pytest
from textual.widgets import Static
from tui_support import synthetic_session, wait_for

from cockpit.client.store import JournalTail
from cockpit.domain.progress import parse_progress
from cockpit.tui.app import CockpitApp
from cockpit.tui.feeds import OutputBuffer
from cockpit.tui.replay_app import ReplayApp
from cockpit.tui.screens.replay import ReplayScreen
from cockpit.tui.widgets.metric_chart import MetricChart
from cockpit.tui.widgets.program_editor import ProgramEditor
from cockpit.tui.widgets.run_log import LineAssembler, RunLog
from cockpit.tui.widgets.timeline import Timeline
from cockpit.workspace.lock import SessionLock, read_session


def run(app, scenario, size=(120, 40)):
    async def main():
        async with app.run_test(size=size) as pilot:
            await scenario(pilot)
    asyncio.run(main())


# -- pure parts ----------------------------------------------------------------------
def test_carriage_returns_become_one_line():
    a = LineAssembler()
    assert a.feed("start\n\rstep 1 (10%)") == ["start"]
    assert a.current == "step 1 (10%)"
    assert a.feed("\rstep 2 (20%)\r") == [] and a.current == "step 2 (20%)"
    assert a.feed("step 3 (30%)\nnext\n") == ["step 3 (30%)", "next"]
    assert a.feed("windows\r\n") == ["windows"]
    a.feed("\r" + "x" * 100_000)  # a line that never ends stays bounded
    assert len(a.partial) <= 4096


def test_output_buffer_is_bounded_and_counts_what_it_dropped():
    buffer = OutputBuffer(max_chars=1000)
    for i in range(100):
        buffer.append(f"line {i:04d}\n")  # 10 chars each
    text, dropped = buffer.drain()
    assert len(text) <= 1000 and text.endswith("line 0099\n") and dropped == 100 - len(text) // 10
    assert buffer.drain() == ("", 0)


def test_journal_tail_waits_for_a_torn_line(tmp_path):
    path = tmp_path / "journal.jsonl"
    tail = JournalTail(path)
    assert tail.poll() == []
    path.write_text('{"event": "a"}\n{"event": "b"')
    assert [e["event"] for e in tail.poll()] == ["a"]
    with open(path, "a") as f:
        f.write(', "x": 1}\n')
    assert tail.poll() == [{"event": "b", "x": 1}]


def test_a_long_log_says_where_the_rest_is(tmp_path):
    """A view starts from a log's tail, on a whole line, and names the file holding the rest."""
    from cockpit.client.store import SessionStore

    (tmp_path / "run.log").write_text("a" * 1000 + "\nlast\n")
    text = SessionStore(tmp_path, "t").log("run.log", max_bytes=10)
    assert text.splitlines()[1:] == ["last"]  # the cut line of a's is dropped whole
    assert text.startswith("... (the first ") and str(tmp_path / "run.log") in text.splitlines()[0]
    assert SessionStore(tmp_path, "t").log("run.log") == "a" * 1000 + "\nlast\n"


def test_the_status_line_scores_a_commit_by_the_mean_of_its_runs():
    """One lucky run is not the best's value: the status line shows the best's and the
    baseline's means, as the bar the judge holds results to."""
    from cockpit.tui.view import SessionView

    view = SessionView()
    view.apply({"event": "session", "tag": "t", "branch": "autoresearch/t", "base": "0" * 40,
                "metric": "val_bpb", "direction": "lower"})
    for n, commit, runs in ((1, "a" * 40, [1.00, 1.02]), (2, "b" * 40, [0.90, 0.96, 0.93])):
        view.apply({"event": "proposal", "n": n, "description": "baseline" if n == 1
                    else "an idea", "diff": "" if n == 1 else "+x", "params": {}})
        view.apply({"event": "result", "n": n, "commit": commit, "status": "keep",
                    "metric": runs[0], "delta_best": None})
        for value in runs[1:]:
            view.apply({"event": "measure", "commit": commit, "purpose": "keep",
                        "metric": value})
    status = view.status()
    assert status.best == pytest.approx(0.93)
    assert status.best_vs_baseline == pytest.approx(0.93 - 1.01)
    assert status.gained  # lower is better: 0.93 beats 1.01
    view.state.direction = "higher"  # as a session judging accuracy would have recorded
    assert not view.status().gained


def test_the_eta_is_the_runs_own_count_when_it_prints_one():
    """A run that says `remaining: 177s` is believed over the budget's rest."""
    from cockpit.tui.view import SessionView

    view = SessionView()
    view.apply({"event": "session", "tag": "t", "branch": "autoresearch/t", "base": "0" * 40,
                "config": {"experiment": {"time_budget": 300}}})
    view.apply_live({"running": [{"worker": 0, "kind": "experiment", "n": 1,
                                  "elapsed": 10.0}]})
    assert view.pace(now=view.live_at).eta == pytest.approx(290.0)  # the budget's rest
    view.on_progress_line("step 00123 (41.0%) | loss: 3.9 | dt: 312ms | remaining: 177s")
    assert view.pace(now=view.live_at).eta == 177.0
    view.new_run_shown()  # another run on screen: its own count, or none yet
    assert view.pace(now=view.live_at).eta == pytest.approx(290.0)


def test_progress_line_parsing():
    line = ("step 00123 (41.0%) | loss: 3.912345 | lrm: 1.00 | dt: 312ms | tok/sec: 52,480 | "
            "mfu: 38.1% | epoch: 1 | remaining: 177s")
    progress = parse_progress(line)
    assert (progress.percent, progress.loss, progress.step, progress.remaining) == \
        (41.0, 3.912345, 123, 177.0)
    assert parse_progress("hello") is None


def test_the_lock_tells_a_live_session_from_a_dead_one(tmp_path):
    assert read_session(tmp_path) is None
    lock = SessionLock(tmp_path)
    lock.acquire("nov23")
    info = read_session(tmp_path)
    assert info.alive and info.pid == os.getpid() and info.tag == "nov23" and info.started
    lock.release()
    assert read_session(tmp_path) is None  # a clean end names no one
    # a lock file naming a process that holds no flock: dead, whatever pid it names
    path = tmp_path / ".cockpit" / "lock"
    path.write_text(json.dumps({"pid": os.getpid(), "started": "1", "tag": "x"}) + "\n")
    dead = read_session(tmp_path)
    assert dead is not None and not dead.alive and dead.tag == "x"
    with open(path, "a+") as held:  # the flock held, but by a process the file does not name
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert not read_session(tmp_path).alive


def to_end(editor):
    editor.text_area.move_cursor(editor.text_area.document.end)


# -- the program editor --------------------------------------------------------------
@pytest.mark.slow
def test_program_editor_in_a_live_cockpit(tmp_path):
    ws = synthetic_session(tmp_path / "ws", 2)
    program = ws / "program.md"

    app = CockpitApp(ws, "demo", watch_program=True)

    async def scenario(pilot):
        editor = app.main.query_one(ProgramEditor)
        await pilot.press("E")
        to_end(editor)
        await pilot.press(*"Go deeper.")
        await pilot.press("ctrl+s")
        assert program.read_text().endswith("Go deeper.\n")  # the final newline stays
        # an edit outside with no unsaved typing here: picked up (through watchfiles)
        program.write_text("# program\nfrom git pull\n")
        await wait_for(pilot, lambda: editor.text_area.text == "# program\nfrom git pull\n",
                       timeout=10, what="the watcher to reload program.md")
        # typing here, then an edit outside: a conflict, and nothing is overwritten
        to_end(editor)
        await pilot.press(*" mine")
        program.write_text("# program\ntheirs\n")
        await wait_for(pilot, lambda: editor.conflict, timeout=10, what="the conflict banner")
        assert app.main.query_one("#program-conflict").display
        await pilot.press("ctrl+l")  # load theirs
        assert editor.text_area.text == "# program\ntheirs\n" and not editor.conflict
        to_end(editor)
        await pilot.press(*" again")
        program.write_text("# program\nthird\n")
        editor.disk_changed()
        assert editor.conflict and "third" in program.read_text()
        await pilot.press("ctrl+s")  # after the banner, ctrl+s is the human's explicit choice
        assert program.read_text().endswith("again\n")

    run(app, scenario)


# -- a session that is over -------------------------------------------------------------
def test_a_session_no_process_runs_shows_its_journal_and_says_so(tmp_path):
    ws = synthetic_session(tmp_path / "ws", 5)

    app = CockpitApp(ws, "demo", watch_program=False)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.main.query_one(Timeline).numbers == [1, 2, 3, 4, 5],
                       what="the journal")
        await pilot.pause(0.2)
        status = app.main.query_one("#status").status
        assert "died" in status.flags  # no session_end, no process: it died
        assert app.check_action("approve", ()) is None  # shown, dimmed: nothing to act on
        run_log = app.main.query_one(RunLog)
        assert "run 5" in "\n".join(run_log.log_widget.lines)  # the last run's log

    run(app, scenario)


@pytest.mark.slow
def test_a_run_stopped_early_shows_why_in_the_live_view_its_screen_and_replay(tmp_path):
    ws = synthetic_session(tmp_path / "ws", 6, stopped=(5,))
    app = CockpitApp(ws, "demo", watch_program=False)
    why = "discard: stopped at 55%: loss 3.91 vs 3.72 for the best at the same point, 9.1x"

    def header() -> str:
        return str(app.screen.query_one("#diff-header", Static).render())

    async def scenario(pilot):
        timeline = app.main.query_one(Timeline)
        await wait_for(pilot, lambda: timeline.numbers == [1, 2, 3, 4, 5, 6], what="journal")
        app.show_experiment(5)  # as a click on its row does
        await pilot.pause()
        assert why in header()
        app.open_experiment(5)  # Enter on its row: the whole diff and log
        await pilot.pause()
        assert why in header()
        await pilot.press("escape")
        await pilot.press("t")  # replay, from the last experiment back over #5
        assert isinstance(app.screen, ReplayScreen)
        await pilot.press("end", "left")
        assert app.screen.current == 5 and why in header()
        await pilot.press("left", "q")

    run(app, scenario)


# -- replay ---------------------------------------------------------------------------
@pytest.mark.slow
def test_replay_steps_plays_and_loads_logs_on_selection(tmp_path):
    ws = synthetic_session(tmp_path / "ws", 40)
    app = ReplayApp(ws, "demo")

    async def scenario(pilot):
        await pilot.pause(0.2)
        screen = app.screen
        assert screen.current == 40
        await wait_for(pilot, lambda: "run 40" in "\n".join(
            screen.query_one(RunLog).log_widget.lines), what="log of #40")
        await pilot.press("left", "left")
        assert screen.current == 38 and screen.query_one(MetricChart).cursor == 38
        await pilot.press("home")
        assert screen.current == 1
        await pilot.press("right")
        assert screen.current == 2
        diff = screen.query_one("#diff-header").render()
        assert "#2" in str(diff)
        await pilot.press("plus", "plus", "plus", "plus")  # 16 experiments a second
        await pilot.press("space")
        await wait_for(pilot, lambda: screen.current >= 6, timeout=5, what="playback")
        await pilot.press("space")
        stopped_at = screen.current
        await pilot.pause(0.3)
        assert screen.current == stopped_at and not screen.playing
        await pilot.press("end")
        assert screen.current == 40
        await pilot.press("q")

    run(app, scenario)


def test_an_experiments_screen_shows_what_cockpit_measured_after_its_run_log(tmp_path):
    """Enter on a row: the run's log, then what cockpit's evaluator said of its model (the
    value judged is that one, not the run's)."""
    ws = synthetic_session(tmp_path / "ws", 3)
    evaluated = ws / ".cockpit" / "demo" / "runs" / "0002" / "evaluate.log"
    evaluated.write_text("---\nval_bpb:          1.234567\neval_seconds:     4.2\n")
    app = CockpitApp(ws, "demo", watch_program=False)

    async def scenario(pilot):
        timeline = app.main.query_one(Timeline)
        await wait_for(pilot, lambda: timeline.numbers == [1, 2, 3], what="journal")
        app.open_experiment(2)
        await pilot.pause(0.2)
        shown = "\n".join(app.screen.query_one(RunLog).log_widget.lines)
        assert "cockpit's evaluation" in shown and "val_bpb:          1.234567" in shown
        await pilot.press("escape")
        app.open_experiment(3)  # no evaluator ran: its log alone
        await pilot.pause(0.2)
        assert "cockpit's evaluation" not in "\n".join(
            app.screen.query_one(RunLog).log_widget.lines)
        await pilot.press("escape")

    run(app, scenario)
