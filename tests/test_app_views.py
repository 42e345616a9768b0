"""The cockpit without a loop of its own: the program editor, the read-only view of a
session another process runs, replay, and the small parts they are built from."""
from __future__ import annotations

import asyncio
import fcntl
import json
import time

from cockpit.widgets.metric_chart import MetricChart
from cockpit.widgets.program_editor import ProgramEditor
from cockpit.widgets.run_log import LineAssembler, RunLog
from cockpit.widgets.timeline import Timeline
from tui_support import synthetic_session, wait_for

from cockpit.app import CockpitApp, ReplayApp
from cockpit.feeds import FileTail, JournalTail, OutputBuffer
from cockpit.session_view import parse_progress
from cockpit.tui import lock_owner, owner_session


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


def test_file_tail_follows_from_near_the_end(tmp_path):
    path = tmp_path / "run.log"
    path.write_text("a" * 1000 + "\nlast\n")
    tail = FileTail(path, start_chars=10)
    assert tail.poll().endswith("last\n")
    with open(path, "a") as f:
        f.write("more\n")
    assert tail.poll() == "more\n"


def test_progress_line_parsing():
    line = ("step 00123 (41.0%) | loss: 3.912345 | lrm: 1.00 | dt: 312ms | tok/sec: 52,480 | "
            "mfu: 38.1% | epoch: 1 | remaining: 177s")
    assert parse_progress(line) == (41.0, 3.912345)
    assert parse_progress("hello") == (None, None)


def test_lock_owner_names_the_process_and_session(tmp_path):
    assert lock_owner(tmp_path) is None
    (tmp_path / ".cockpit").mkdir()
    with open(tmp_path / ".cockpit" / "lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 123, session nov23, since 10:00\n")
        held.flush()
        owner = lock_owner(tmp_path)
        assert owner.startswith("pid 123") and owner_session(owner) == "nov23"
    assert lock_owner(tmp_path) is None  # released: a live session may start here


def to_end(editor):
    editor.text_area.move_cursor(editor.text_area.document.end)


# -- the program editor --------------------------------------------------------------
def test_program_editor_saves_reloads_and_never_clobbers(tmp_path):
    ws = synthetic_session(tmp_path / "ws", 3)
    program = ws / "program.md"
    app = CockpitApp(ws, "demo", watch_program=False)

    async def scenario(pilot):
        editor = app.main.query_one(ProgramEditor)
        await pilot.press("e")
        assert app.focused.id == "program-text"
        to_end(editor)
        await pilot.press(*"More depth.")
        await pilot.press("ctrl+s")  # read-only view: nothing is written
        assert "More depth" not in program.read_text()

    run(app, scenario)


def test_program_editor_in_a_live_cockpit(tmp_path):
    ws = synthetic_session(tmp_path / "ws", 2)
    program = ws / "program.md"

    app = CockpitApp(ws, "demo", watch_program=True)
    app.main.read_only = False  # as in a live cockpit (no loop needed for the editor)

    async def scenario(pilot):
        editor = app.main.query_one(ProgramEditor)
        await pilot.press("e")
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


# -- the read-only view of a session run elsewhere ------------------------------------
def test_watching_a_session_follows_its_journal_and_log(tmp_path):
    ws = synthetic_session(tmp_path / "ws", 5)
    app = CockpitApp(ws, "demo", owner="pid 99, session demo, since 10:00", watch_program=False)
    journal = ws / ".cockpit" / "demo" / "journal.jsonl"

    async def scenario(pilot):
        await pilot.pause(0.2)
        timeline = app.main.query_one(Timeline)
        assert timeline.numbers == [1, 2, 3, 4, 5]
        status = app.main.query_one("#status").status
        assert "watching pid 99" in status.flags
        assert app.check_action("approve", ()) is False  # not offered at all
        log = ws / ".cockpit/demo/runs/0006/run.log"
        log.parent.mkdir(parents=True)
        log.write_text("data_fingerprint: x\n")
        now = time.time()
        with open(journal, "a") as f:
            for e in ({"event": "proposal", "n": 6, "description": "six", "diff": ""},
                      {"event": "commit", "n": 6, "commit": "f" * 40},
                      {"event": "run_start", "n": 6, "commit": "f" * 40, "time": now,
                       "log": ".cockpit/demo/runs/0006/run.log"}):
                f.write(json.dumps({"time": now, **e}) + "\n")
        await wait_for(pilot, lambda: timeline.numbers[-1] == 6, what="the new experiment")
        with open(log, "a") as f:
            f.write("\rstep 00001 (50.0%) | loss: 2.5")
        run_log = app.main.query_one(RunLog)
        await wait_for(pilot, lambda: run_log.last_line.startswith("step 00001"), what="the log")
        await pilot.pause(0.3)
        status = app.main.query_one("#status").status
        assert status.state == "training" and status.percent == 50.0 and status.n == 6

    run(app, scenario)


# -- replay ---------------------------------------------------------------------------
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
