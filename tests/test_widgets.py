"""The cockpit's widgets under Pilot, in small apps of their own: the main layout built
from the widgets and the real `cockpit/tui/app.tcss` at 120x40 and 80x24, and each widget's
interface (timeline, run log, diff view, chart, status bar)."""
from __future__ import annotations

import asyncio
import io
import itertools
import math
import re
from pathlib import Path

import pytest
from rich.console import Console
from textual.app import App
from textual.containers import Horizontal, Vertical
from textual.geometry import Region
from textual.widgets import Static

import cockpit.tui
from cockpit.tui.keymap import bindings, narrow_footer_ids
from cockpit.tui.screens.panes import PaneScreen
from cockpit.tui.widgets.diff_view import DiffView, VerdictLine
from cockpit.tui.widgets.key_footer import KeyFooter
from cockpit.tui.widgets.metric_chart import (
    CachedPlot,
    LossSpark,
    MetricChart,
    Point,
    best_steps,
    integer_ticks,
    nice_ticks,
    spark,
)
from cockpit.tui.widgets.program_editor import ProgramEditor
from cockpit.tui.widgets.run_log import RunLog, wrap_fields
from cockpit.tui.widgets.search_bar import SearchBar
from cockpit.tui.widgets.status_bar import Status, StatusBar, fit_parts, noise_label, status_parts
from cockpit.tui.widgets.timeline import (
    DESCRIPTION_MIN,
    Row,
    Timeline,
    layout_columns,
    short_reason,
)

CSS = Path(cockpit.tui.__file__).with_name("app.tcss")
PROGRESS = ("step 00123 (41.0%) | loss: 3.912345 | lrm: 1.00 | dt: 312ms | tok/sec: 52,480 | "
            "mfu: 38.1% | epoch: 1 | remaining: 177s")
DIFF = """--- a/train.py
+++ b/train.py
@@ -1,5 +1,5 @@
 import math
-LEARNING_RATE = 0.01  # step size
+LEARNING_RATE = 0.02  # step size
 BATCH_SIZE = 16
 DEPTH = 4
 WARMUP = 100
"""
LONG = "raise LEARNING_RATE from 0.001 to 0.002 and warm up over 200 steps, experiment {n}"


def screen_text(app: App) -> str:
    """The screen as plain text, a line a row: what a terminal shows (rendered as
    Textual's own export_screenshot renders it)."""
    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(),
                      record=True, color_system=None, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text()


def region_text(app: App, region: Region) -> list[str]:
    lines = screen_text(app).split("\n")
    return [line[region.x:region.right] for line in lines[region.y:region.bottom]]


def sample_rows(count: int = 55) -> list[Row]:
    """A session's rows with every kind of verdict among the newest ones."""
    rows, best = [], None
    for n in range(1, count + 1):
        crash = n % 7 == 0
        metric = None if crash else round(1.3 - 0.25 * (1 - math.exp(-n / 40))
                                           + 0.03 * math.sin(n * 1.7), 6)
        status = "crash" if crash else "keep" if best is None or metric < best - 0.002 \
            else "discard"
        confidence = None if metric is None or best is None else (best - metric) / 0.003
        rows.append(Row(n, f"{n:07x}", metric, None if metric is None or best is None
                        else metric - best, status, 2.0, LONG.format(n=n),
                        confidence=confidence,
                        reason="exit code 1: RuntimeError: CUDA out of memory" if crash else ""))
        if status == "keep":
            best = metric
    rows[-3] = Row(count - 2, "f00", None, None, "discard", 2.0, "stopped idea",
                   stopped_at=40.0)
    rows[-4] = Row(count - 3, "", None, None, "rejected", 0.0, "rejected idea",
                   reason="rejected by the human: not now")
    rows.append(Row(count + 1, "", None, None, None, 0.0, "the next idea",
                    live_status="awaiting"))
    return rows


class LikeMain(PaneScreen):
    """The main screen's layout, from the widgets alone."""

    PANES = [("timeline", "Timeline"), ("diff", "Diff"), ("run-log", "Log"),
             ("chart", "Chart"), ("program", "Program")]
    BINDINGS = bindings()

    def __init__(self, program: Path) -> None:
        super().__init__(id="main")
        self.program = program

    def compose(self):
        yield StatusBar(id="status")
        yield self.make_tabs()
        with Horizontal(id="panes"):
            with Vertical(id="left", classes="column"):
                yield Timeline("val_bpb", id="timeline")
                yield DiffView(id="diff")
            with Vertical(id="right", classes="column"):
                yield MetricChart("val_bpb", id="chart")
                yield RunLog(id="run-log")
                yield ProgramEditor(self.program, watch=False, id="program")
        yield SearchBar(id="search-bar")
        yield KeyFooter(narrow_footer_ids())

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(Timeline).focus()


class LayoutApp(App):
    CSS_PATH = CSS

    def __init__(self, program: Path) -> None:
        super().__init__()
        self.main = LikeMain(program)

    async def on_mount(self) -> None:
        await self.push_screen(self.main)

    def action_pane(self, pane: str) -> None:
        self.main.show_pane(pane)

    def action_edit_program(self) -> None:
        self.main.show_pane("program")


def fill(main: LikeMain) -> None:
    rows = sample_rows()
    main.query_one(Timeline).set_rows(rows)
    main.query_one(MetricChart).set_points([Point(r.n, r.metric, r.status) for r in rows
                                            if r.status in ("keep", "discard", "crash")])
    main.query_one(MetricChart).set_bar(1.095, 0.006)
    main.query_one(RunLog).feed("data_fingerprint: abc\nmodel: 12.3M params\n\r" + PROGRESS)
    main.query_one(DiffView).show("#56 the next idea", "a larger step may settle lower", DIFF,
                                  "awaiting approval")
    main.query_one(StatusBar).show(Status(
        "awaiting approval", n=56, elapsed=123, budget=300, best=1.091253,
        best_vs_baseline=-0.232, noise=0.0031, noise_runs=5, confidence=2.3, agent="tune",
        per_hour=11.2, keep_rate=0.23, since_keep=4000, eta=177))


def run(app: App, scenario, size=(120, 40), notifications: bool = False) -> None:
    async def main():
        async with app.run_test(size=size, notifications=notifications) as pilot:
            await pilot.pause()
            await scenario(pilot)
    asyncio.run(main())


def layout_app(tmp_path) -> LayoutApp:
    program = tmp_path / "program.md"
    program.write_text("# program\nMake val_bpb low.\n")
    return LayoutApp(program)


# -- the layout at 120x40 and 80x24 ---------------------------------------------------
def test_timeline_shows_forty_characters_and_the_verdict_at_120x40(tmp_path):
    app = layout_app(tmp_path)

    async def scenario(pilot):
        fill(app.main)
        await pilot.pause(0.1)
        timeline = app.main.query_one(Timeline)
        lines = region_text(app, timeline.content_region)
        assert "verdict" in lines[0] and "description" in lines[0]
        by_n = {int(m.group(1)): line for line in lines[1:]
                if (m := re.match(r"\s*(\d+) ", line))}
        for n in (55, 50, 44):
            assert LONG.format(n=n)[:DESCRIPTION_MIN] in by_n[n]
        assert "awaiting" in by_n[56] and "stop@40%" in by_n[53]
        assert "rejected" in by_n[52] and "CUDA out" in by_n[49]
        assert re.search(r"[+-]\d+\.\dx", by_n[55]) or "noise" in by_n[55]
        kept = [n for n, line in by_n.items() if " ● " in line]
        assert kept and all(re.search(r"\+\d+\.\dx", by_n[n]) for n in kept if n > 1)
        assert timeline.max_scroll_x == 0  # nothing hides past the pane's right edge

    run(app, scenario)


@pytest.mark.slow
def test_the_whole_progress_line_sits_under_the_log_at_120x40(tmp_path):
    app = layout_app(tmp_path)

    async def scenario(pilot):
        fill(app.main)
        await pilot.pause(0.7)  # the strip redraws at most twice a second
        run_log = app.main.query_one(RunLog)
        text = "\n".join(region_text(app, run_log.content_region))
        for field in PROGRESS.split(" | "):
            assert field in text
        log = run_log.log_widget
        strip = run_log.query_one("#run-log-progress")
        assert log.region.height == 2 and strip.region.y == log.region.bottom  # no gap
        run_log.feed("\n" + "".join(f"line {i}\n" for i in range(100)) + "\r" + PROGRESS)
        await pilot.pause(0.7)
        assert strip.region.bottom == run_log.content_region.bottom  # full: strip at the end
        assert "line 99" in "\n".join(region_text(app, run_log.content_region))

    run(app, scenario)


@pytest.mark.slow
def test_a_resize_keeps_the_active_tab(tmp_path):
    app = layout_app(tmp_path)

    def shown():
        return [pane for pane, _ in app.main.PANES if app.main.query_one(f"#{pane}").display]

    async def scenario(pilot):
        fill(app.main)
        assert shown() == ["timeline"]
        await pilot.press("2")
        assert shown() == ["diff"]
        for size in ((120, 40), (80, 24), (100, 24), (80, 30), (80, 24)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.1)
            assert shown() == (["diff"] if app.main.narrow else [p for p, _ in app.main.PANES])
        # side by side, the editor was used and left: the tab is where the focus went
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.1)
        app.main.query_one("#program-text").focus()
        await pilot.pause()
        app.main.query_one(Timeline).focus()
        await pilot.pause()
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.1)
        assert shown() == ["timeline"]

    run(app, scenario, size=(80, 24))


@pytest.mark.slow
def test_panes_stay_usable_at_80x24(tmp_path):
    app = layout_app(tmp_path)

    async def scenario(pilot):
        fill(app.main)
        await pilot.pause(0.7)
        timeline = app.main.query_one(Timeline)
        assert timeline.region.width == 80 and timeline.max_scroll_x == 0
        assert LONG.format(n=52)[:DESCRIPTION_MIN - 1] in screen_text(app)  # then "…"
        await pilot.press("3")
        await pilot.pause(0.7)
        text = screen_text(app)
        assert all(field in text for field in PROGRESS.split(" | "))
        await pilot.press("4")
        await pilot.pause(0.2)
        chart = app.main.query_one(MetricChart)
        assert chart.region.height >= 18 and "● keep" in screen_text(app)

    run(app, scenario, size=(80, 24))


@pytest.mark.slow
def test_slash_searches_the_focused_pane(tmp_path):
    app = layout_app(tmp_path)

    async def scenario(pilot):
        fill(app.main)
        await pilot.pause()
        timeline, bar = app.main.query_one(Timeline), app.main.query_one(SearchBar)
        assert not bar.display
        await pilot.press("slash")
        assert bar.display and app.focused is bar and "timeline" in bar.placeholder
        await pilot.press(*"experiment 4", "enter")
        assert timeline.selected_n == 49
        await pilot.press("down")
        assert timeline.selected_n == 48
        await pilot.press("up")
        assert timeline.selected_n == 49
        await pilot.press("escape")
        assert not bar.display and app.focused is timeline
        app.main.query_one(RunLog).log_widget.focus()
        await pilot.press("slash", "ctrl+a", *"params", "enter")
        assert "find in log" in bar.placeholder
        assert app.main.query_one(RunLog).find("params", forward=False) == 1

    run(app, scenario)


# -- the timeline ---------------------------------------------------------------------
def test_timeline_columns_fit_the_width():
    keys = [c.key for c in layout_columns(66, "val_bpb", 2, False)]
    assert keys == ["n", "mark", "metric", "verdict", "delta", "description"]
    assert layout_columns(66, "val_bpb", 2, False)[-1].width >= DESCRIPTION_MIN
    wide = layout_columns(160, "val_bpb", 3, True)
    assert [c.key for c in wide] == ["n", "gpu", "mark", "metric", "verdict", "delta",
                                     "commit", "mem", "description"]
    assert sum(c.width + 1 for c in wide) - 1 <= 160
    assert layout_columns(30, "val_bpb", 2, False)[-1].width >= 12
    assert short_reason("exit code 1: RuntimeError: CUDA out of memory") == "CUDA out of memory"
    assert short_reason("timeout after 720s") == "timeout after 720s"


class TimelineApp(App):
    CSS_PATH = CSS

    def __init__(self) -> None:
        super().__init__()
        self.messages: list = []

    def compose(self):
        yield Timeline("val_bpb", id="timeline")

    def on_timeline_marks_changed(self, message: Timeline.MarksChanged) -> None:
        self.messages.append(("marks", message.marked))

    def on_timeline_opened(self, message: Timeline.Opened) -> None:
        self.messages.append(("opened", message.n))


def test_timeline_find_marks_and_opens():
    app = TimelineApp()

    async def scenario(pilot):
        timeline = app.query_one(Timeline)
        timeline.set_rows(sample_rows())
        timeline.focus()
        await pilot.pause()
        assert timeline.selected_n == 56
        assert timeline.find("experiment 5") == 55  # down the table: older
        assert timeline.find("EXPERIMENT 5") == 54
        assert timeline.find("experiment 5", forward=False) == 55
        assert timeline.find("#12") == 12 and timeline.selected_n == 12
        assert timeline.find("stop@") == 53
        assert timeline.find("CUDA") in (49, 42, 35, 28, 21, 14, 7)
        assert timeline.find("no such thing") is None and timeline.selected_n is not None
        timeline.select(40)
        assert timeline.toggle_mark() is True
        assert timeline.toggle_mark(12) is True and timeline.marked == [12, 40]
        await pilot.pause()
        cell = timeline.get_cell("40", "mark")
        assert "◆" in cell.plain and "◆" not in timeline.get_cell("41", "mark").plain
        # the mark takes the status mark's cell: the number column never shifts
        assert timeline.get_cell("40", "n").plain == "40 "
        assert timeline.toggle_mark(40) is False and timeline.marked == [12]
        await pilot.pause()
        assert ("marks", [12, 40]) in app.messages and app.messages[-1] == ("marks", [12])
        timeline.select(30)
        await pilot.press("enter")
        assert app.messages[-1] == ("opened", 30)

    run(app, scenario)


def test_timeline_updates_rows_in_place_and_follows_the_newest():
    app = TimelineApp()

    async def scenario(pilot):
        timeline = app.query_one(Timeline)
        rows = sample_rows(20)
        timeline.set_rows(rows)
        await pilot.pause()
        assert timeline.selected_n == 21 and timeline.numbers == list(range(1, 22))
        done = Row(21, "abc1234", 1.05, -0.01, "keep", 2.0, "the next idea", confidence=3.4)
        timeline.set_rows(rows[:-1] + [done, Row(22, "", None, None, None, 0.0, "next")])
        await pilot.pause()
        assert timeline.selected_n == 22
        assert "+3.4x" in timeline.get_cell("21", "verdict").plain
        timeline.select(5)
        timeline.set_rows(rows[:-1] + [done, Row(22, "c", None, None, None, 0.0, "next")])
        assert timeline.selected_n == 5  # a user's choice is kept

    run(app, scenario)


# -- the run log ----------------------------------------------------------------------
class LogApp(App):
    CSS_PATH = CSS

    def compose(self):
        yield RunLog(max_lines=500, id="run-log")


def test_run_log_find_scrolls_to_each_match_and_stops_following():
    app = LogApp()

    async def scenario(pilot):
        run_log = app.query_one(RunLog)
        run_log.feed("".join(f"step {i:05d} loss {3 + i % 7}\n" for i in range(300)))
        run_log.feed("Traceback (most recent call last)\nRuntimeError: boom\n")
        await pilot.pause(0.1)
        log = run_log.log_widget
        assert log.following and log.scroll_y == log.max_scroll_y
        first = run_log.find("step 00100")
        assert first == 100 and not log.following
        await pilot.pause()
        assert log.scroll_y <= 100 < log.scroll_y + log.size.height
        assert run_log.find("runtimeerror") == 301
        nines = [i for i in range(300) if i % 7 == 6]  # the lines with "loss 9"
        found = [run_log.find("LOSS 9") for _ in range(len(nines))]
        assert sorted(found) == nines  # each match once, wrapping around the end
        assert run_log.find("loss 9") == found[0]
        assert run_log.find("loss 9", forward=False) == found[-1]
        assert run_log.find("no such line") is None
        assert log.highlight  # the matches of the last search stay highlighted

    run(app, scenario, size=(60, 20))


@pytest.mark.slow
def test_run_log_stays_bounded_in_a_flood_and_wraps_progress_by_fields():
    app = LogApp()

    async def scenario(pilot):
        run_log = app.query_one(RunLog)
        for batch in range(5):
            run_log.feed("".join(f"flood {batch} {i}\n" for i in range(400)))
        assert len(run_log.log_widget.lines) == 500
        run_log.display = False  # a hidden pane queues, bounded, and catches up when shown
        for batch in range(5, 10):
            run_log.feed("".join(f"flood {batch} {i}\n" for i in range(400)) + "\r" + PROGRESS)
        assert len(run_log._pending) == 500 and run_log.skipped == 1500
        run_log.display = True
        await pilot.pause(0.6)
        run_log.flush()
        lines = run_log.log_widget.lines
        assert len(lines) == 500 and lines[-1] == "flood 9 399"
        # 1500 dropped, and the rows the wrapped progress lines took beyond the bound
        assert re.fullmatch(r"\.\.\. 150\d lines not shown \(see run\.log\)", lines[0])
        strip = run_log.query_one("#run-log-progress", Static)
        assert str(strip.render()).split("\n") == wrap_fields(PROGRESS, run_log.content_size.width)
        run_log.feed("\n" + "x" * 3000)  # a partial line with no fields, never ended
        await pilot.pause(0.6)
        assert strip.region.height == 4 and strip.region.bottom <= run_log.content_region.bottom

    run(app, scenario, size=(50, 20))
    rows = wrap_fields(PROGRESS, 48)
    assert " | ".join(rows) == PROGRESS and all(len(r) <= 48 for r in rows) and len(rows) == 3
    assert wrap_fields(PROGRESS, 200) == [PROGRESS]


# -- the diff view --------------------------------------------------------------------
class DiffApp(App):
    CSS_PATH = CSS

    def compose(self):
        yield DiffView(id="diff")


def test_diff_view_verdict_line_and_find():
    app = DiffApp()

    async def scenario(pilot):
        diff = app.query_one(DiffView)
        long_diff = DIFF + "".join(f" LINE_{i} = {i}\n" for i in range(60)) + "+DEPTH = 8\n"
        diff.show("#7 deeper", "more capacity", long_diff, "discard: val_bpb 1.1",
                  VerdictLine("discard", gain=0.0021, threshold=0.006, confidence=0.7,
                              against="the best's mean of 3 runs"))
        await pilot.pause()
        header = str(diff.query_one("#diff-header", Static).render())
        assert "gain +0.002100 ≤ 0.006000 needed" in header
        assert "+0.7x the noise" in header and "vs the best's mean of 3 runs" in header
        assert diff.find("depth = 8") == len(long_diff.splitlines()) - 1
        await pilot.pause()
        assert diff.scroll_y > 0
        assert diff.find("learning_rate") == 4  # wraps to the top: "-LEARNING_RATE"
        assert diff.find("learning_rate") == 5
        assert diff.find("learning_rate", forward=False) == 4
        assert diff.find("nothing like it") is None
        no_floor = VerdictLine("keep", gain=0.01).render().plain
        assert "no noise floor: any gain keeps" in no_floor
        looked = VerdictLine("keep", 0.026, 0.0237, 3.5, "the best's mean of 4 runs", runs=2)
        assert "the mean of its 2 runs vs the best's mean of 4 runs" in looked.render().plain

    run(app, scenario, size=(80, 20))


# -- the chart ------------------------------------------------------------------------
def test_chart_ticks_are_round_and_whole():
    ticks, labels = nice_ticks(1.0913, 1.3352, 4)
    step = round(ticks[1] - ticks[0], 9)
    assert all(abs(b - a - step) < 1e-9 for a, b in itertools.pairwise(ticks))
    assert round(step / 10 ** math.floor(math.log10(step)), 6) in (1, 2, 2.5, 5)
    assert labels == ["1.1", "1.2", "1.3"] and ticks[0] >= 1.0913 and ticks[-1] <= 1.3352
    assert nice_ticks(0.981, 0.989, 4)[1] == ["0.982", "0.984", "0.986", "0.988"]
    assert integer_ticks(1, 55, 5) == [20, 40] and integer_ticks(1, 7, 10) == list(range(1, 8))
    assert all(isinstance(t, int) for t in integer_ticks(3, 1234, 6))


def test_best_so_far_is_a_step_line():
    points = [Point(1, 1.3, "keep"), Point(2, 1.4, "discard"), Point(3, 1.2, "keep"),
              Point(4, None, "crash"), Point(5, 1.1, "keep"), Point(6, 1.2, "discard")]
    xs, ys = best_steps(points)
    assert list(zip(xs, ys)) == [(1, 1.3), (3, 1.3), (3, 1.2), (5, 1.2), (5, 1.1), (6, 1.1)]
    # every segment is flat or vertical: never a diagonal
    assert all(x1 == x2 or y1 == y2 for (x1, y1), (x2, y2) in zip(zip(xs, ys), zip(xs[1:], ys[1:])))


class ChartApp(App):
    CSS_PATH = CSS

    def compose(self):
        yield MetricChart("val_bpb", id="chart")


def test_chart_key_sits_under_the_plot_and_redraws_only_on_change():
    app = ChartApp()
    points = [Point(r.n, r.metric, r.status) for r in sample_rows(30)
              if r.status in ("keep", "discard", "crash")]

    async def scenario(pilot):
        chart = app.query_one(MetricChart)
        chart.set_points(points)
        chart.set_bar(1.2, 0.05)
        await pilot.pause()
        plot = chart.query_one(CachedPlot)
        key = chart.query_one("#chart-key")
        assert key.region.y >= plot.region.bottom  # the key is outside the data
        key_text = str(key.render())
        assert all(word in key_text for word in ("keep", "discard", "crash", "best", "bar",
                                                 "±0.05"))
        lines = region_text(app, plot.region)
        y_labels = [line.split("┤")[0].strip() for line in lines if "┤" in line]
        assert y_labels and all(re.fullmatch(r"\d\.\d{1,2}", label) for label in y_labels)
        x_line = lines[-1]
        assert x_line.split() and all(re.fullmatch(r"\d+", x) for x in x_line.split())
        assert any("┈" in line for line in lines)  # the noise band is drawn
        drawn = plot.generation
        chart.set_points(list(points))
        chart.set_bar(1.2, 0.05)
        assert plot.generation == drawn  # nothing new: no rebuild
        first = plot.render()
        assert plot.render() is first  # repaints reuse the built picture
        chart.set_cursor(12)
        assert plot.generation == drawn + 1

    run(app, scenario, size=(60, 17))


def test_a_chart_with_nothing_measured_draws_no_made_up_axis():
    app = ChartApp()

    async def scenario(pilot):
        chart = app.query_one(MetricChart)
        chart.set_points([Point(1, None, "crash")])  # the baseline, stopped or crashed
        await pilot.pause()
        plot = chart.query_one(CachedPlot)
        drawn = "\n".join(region_text(app, plot.region))
        assert "x" not in drawn and "1.0" not in drawn and "┤" not in drawn
        assert str(chart.query_one("#chart-key").render()).startswith(
            "no val_bpb measured yet: x crash")
        chart.set_points([Point(1, None, "crash"), Point(2, 1.5, "keep")])
        await pilot.pause()
        assert "┤" in "\n".join(region_text(app, plot.region))
        assert "measured yet" not in str(chart.query_one("#chart-key").render())

    run(app, scenario, size=(60, 17))


def test_loss_sparkline_against_the_best_at_the_same_progress():
    bars = spark([4.0, 3.5, 3.4], [4.1, 3.4, 3.3, 3.2, 3.1], 20)
    styles = [str(span.style) for span in bars.spans]
    assert bars.plain[:3] and styles[:3] == ["green", "red", "red"]
    assert styles[3:] == ["dim", "dim"]  # past the run's end: the best's curve, dim
    assert spark([], None, 10).plain == ""
    app = ChartApp()

    async def scenario(pilot):
        chart = app.query_one(MetricChart)
        chart.set_losses([4.0, 3.5, 3.0], [4.1, 3.6, 3.2, 3.0])
        await pilot.pause()
        line = str(chart.query_one(LossSpark).render())
        assert line.startswith("loss 3.000 best 3.200")

    run(app, scenario, size=(60, 17))


# -- the status bar -------------------------------------------------------------------
def test_status_bar_shows_noise_and_pace_and_drops_the_least_first():
    status = Status("training", percent=41.0, n=12, elapsed=123, budget=300, best=1.091253,
                    best_vs_baseline=-0.0123, noise=0.0103, noise_runs=5, confidence=2.3,
                    agent="llm · anthropic/claude-sonnet-4-5", cost=1.25,
                    flags="auto-approve", per_hour=11.6, keep_rate=0.25, since_keep=4000,
                    eta=177)
    wide = fit_parts(status_parts(status, 300), 300).plain
    for part in ("training 41%", "#12", "2:03/5:00", "eta 2:57", "best 1.091253",
                 "noise ±0.0103 (5 runs)", "11.6 exp/h", "keep 25%", "kept 1h06m ago",
                 "anthropic", "$1.25", "auto-approve", "-0.012300 vs baseline",
                 "2.3x the noise"):
        assert part in wide
    narrow = fit_parts(status_parts(status, 80), 80).plain
    assert len(narrow) <= 80
    for part in ("training 41%", "#12", "best 1.091253", "-0.012300", "auto-approve"):
        assert part in narrow  # the gain over the baseline is what a glance is for
    assert "anthropic" not in narrow and "━" not in narrow
    assert noise_label(None) == "no noise floor" and noise_label(0.0, 3) == "no noise floor"
    assert "no noise floor" in fit_parts(status_parts(Status(), 80), 80).plain

    class BarApp(App):
        def compose(self):
            yield StatusBar()

    app = BarApp()

    async def scenario(pilot):
        bar = app.query_one(StatusBar)
        bar.show(status)
        await pilot.pause()
        assert str(bar.render()) == narrow

    run(app, scenario, size=(80, 5))
