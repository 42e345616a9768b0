"""Loss curves (L): the selected experiment's whole curve, marked ones overlaid with the
best's, an early-stopped run against the band it fell behind, the live run growing; and
the val_bpb chart's axis (the data decides it, ticks even and beside their rows) and its
mark for a run stopped early."""
from __future__ import annotations

import asyncio
import itertools
import math
import random
import statistics

import pytest
from curve_support import STOP_AT, curves_session
from support import FAKE_TRAIN, make_workspace
from test_app_live import in_flight, live_app
from test_app_live import run as run_live
from test_widgets import ChartApp, region_text
from tui_support import wait_for

from cockpit.domain.curves import smoothed
from cockpit.domain.earlystop import Curve
from cockpit.tui.app import CockpitApp
from cockpit.tui.screens.curves import CurvesScreen
from cockpit.tui.widgets.chart_axis import even_axis
from cockpit.tui.widgets.loss_chart import LossChart
from cockpit.tui.widgets.metric_chart import CachedPlot, MetricChart, Point
from cockpit.tui.widgets.timeline import Timeline


def run(app, scenario, size=(120, 40)):
    async def main():
        async with app.run_test(size=size) as pilot:
            await scenario(pilot)
    asyncio.run(main())


def labels(chart: LossChart) -> list[str]:
    return [s.label for s in chart.series]


def plot_text(app, widget) -> str:
    return "\n".join(region_text(app, widget.query_one(CachedPlot).region))


async def select(pilot, app, n: int) -> Timeline:
    timeline = app.main.query_one(Timeline)
    await wait_for(pilot, lambda: timeline.row_count > 0, what="the journal")
    timeline.focus()
    timeline.select(n)
    await pilot.pause()
    return timeline


# -- the curves screen on a recorded session -------------------------------------------------
@pytest.mark.slow
def test_L_opens_the_selected_experiments_whole_curve_with_the_best(tmp_path):
    ws = curves_session(tmp_path / "ws", 8)
    app = CockpitApp(ws, "demo", watch_program=False)

    async def scenario(pilot):
        await select(pilot, app, 4)
        await pilot.press("L")
        assert isinstance(app.screen, CurvesScreen)
        chart = app.screen.query_one(LossChart)
        best = app.view.state.best
        assert labels(chart) == ["#4", f"#{best.n} best"]
        whole = Curve.from_log((ws / app.view.state.get(4).log).read_text())
        assert len(whole.points) == 200 and chart.series[0].points == tuple(smoothed(whole))
        assert chart.series[0].points[-1][0] == 100.0  # the whole run, to its end
        drawn = plot_text(app, chart)
        assert "┤" in drawn and "100%" in drawn and any(0x2801 <= ord(ch) <= 0x28FF
                                                        for ch in drawn)  # braille: a line
        assert "#4 " in str(app.screen.query_one("#loss-key").render())
        await pilot.press("right")  # the next experiment
        assert labels(app.screen.query_one(LossChart))[0] == "#5"
        await pilot.press("escape")
        assert app.screen is app.main

    run(app, scenario)


@pytest.mark.slow
def test_two_marked_experiments_are_overlaid_with_the_best(tmp_path):
    ws = curves_session(tmp_path / "ws", 8)
    app = CockpitApp(ws, "demo", watch_program=False)

    async def scenario(pilot):
        timeline = await select(pilot, app, 2)
        await pilot.press("m")
        timeline.select(5)
        await pilot.press("m")
        assert timeline.marked == [2, 5]
        timeline.select(8)
        await pilot.press("L")
        chart = app.screen.query_one(LossChart)
        best = app.view.state.best.n
        assert best not in (2, 5, 8)
        assert labels(chart) == ["#2", "#5", "#8", f"#{best} best"]
        assert len({s.color for s in chart.series}) == 4  # each curve its colour
        key = str(app.screen.query_one("#loss-key").render())
        assert all(f"{label} " in key for label in labels(chart))

    run(app, scenario)


@pytest.mark.slow
def test_an_early_stopped_run_is_drawn_against_the_band_it_fell_behind(tmp_path):
    ws = curves_session(tmp_path / "ws", 8, stopped=(5,))
    app = CockpitApp(ws, "demo", watch_program=False)

    async def scenario(pilot):
        await select(pilot, app, 5)
        await pilot.press("L")
        chart = app.screen.query_one(LossChart)
        stop = chart.stop
        assert stop is not None and stop.stop[0] == STOP_AT and stop.band is not None
        band = stop.band
        # the best when #5 was stopped (not the session's best now), as the stop used it
        state = app.view.state
        then = max(e.n for e in state.experiments if e.status == "keep" and e.n < 5)
        assert band.best_n == then and state.best.n != then
        i = band.progress.index(STOP_AT)
        then_curve = Curve.from_log((ws / state.get(then).log).read_text())
        assert math.isclose(band.reference[i], then_curve.loss_at(STOP_AT))
        assert band.lower[i] < band.reference[i] < band.upper[i]
        mine = dict(chart.series[0].points)
        assert mine[STOP_AT] > band.upper[i]  # it fell behind the band
        assert max(mine) == STOP_AT  # its curve ends where it was stopped
        drawn = plot_text(app, chart)
        assert "┈" in drawn and "x" in drawn  # the band's edges, the point it stopped at
        key = str(app.screen.query_one("#loss-key").render())
        assert "#5 stopped at 55%" in key and f"stop band: #{then} then" in key
        assert "stopped at 55%" in str(app.screen.query_one("#curves-note").render())

    run(app, scenario)


# -- the live run -------------------------------------------------------------------------
PROGRESS_TRAIN = FAKE_TRAIN.replace(
    'for i in range(3):\n    print(f"\\rstep {i:05d} ({i * 33:.1f}%) | loss: {3 - i * 0.1:.6f}'
    ' | remaining: 0s", end="", flush=True)',
    'for i in range(1, 121):\n    time.sleep(0.1)\n'
    '    print(f"\\rstep {i:05d} ({i / 1.2:.1f}%) | loss: {3 + 2 * math.exp(-i / 20):.6f}'
    ' | remaining: {(120 - i) / 10:.0f}s", end="", flush=True)')


@pytest.mark.slow
def test_the_live_run_grows_on_the_curves_screen(tmp_path):
    assert PROGRESS_TRAIN != FAKE_TRAIN
    app = live_app(make_workspace(tmp_path / "ws", train=PROGRESS_TRAIN), experiments=1)

    def live_points():
        series = [s for s in app.screen.query_one(LossChart).series if s.label.endswith("live")]
        return len(series[0].points) if series else 0

    async def scenario(pilot):
        await wait_for(pilot, lambda: in_flight(app) and app.view.curve.points,
                       what="the first run's progress")
        await pilot.press("L")
        assert isinstance(app.screen, CurvesScreen)
        assert [s.label for s in app.screen.query_one(LossChart).series] == ["#1 live"]
        await wait_for(pilot, lambda: live_points() >= 2, what="the live curve")
        before = live_points()
        await wait_for(pilot, lambda: live_points() >= before + 4, timeout=10,
                       what="the live curve to grow")
        assert "#1 at " in str(app.screen.query_one("#curves-note").render())
        drawn = plot_text(app, app.screen.query_one(LossChart))
        assert any(0x2801 <= ord(ch) <= 0x28FF for ch in drawn)  # drawn, not only counted

    run_live(scenario, app)


# -- the val_bpb chart ----------------------------------------------------------------------
def chart_lines(points, bar=None, band=None, size=(60, 20)):
    """The chart's plot as text, its key, and its axis, after drawing `points`."""
    app = ChartApp()
    found = {}

    async def scenario(pilot):
        chart = app.query_one(MetricChart)
        chart.set_points(points)
        chart.set_bar(bar, band)
        await pilot.pause()
        found["lines"] = region_text(app, chart.query_one(CachedPlot).region)
        found["key"] = str(chart.query_one("#chart-key").render())

    run(app, scenario, size=size)
    return found["lines"], found["key"]


def y_labels(lines: list[str]) -> dict[int, float]:
    """Row -> the value its tick label says."""
    return {row: float(line.split("┤")[0]) for row, line in enumerate(lines) if "┤" in line}


YOUNG = [Point(1, 1.3052, "keep"), Point(2, 1.2981, "discard"), Point(3, 1.2843, "keep"),
         Point(4, 1.3107, "discard"), Point(5, 1.2898, "discard")]


def test_a_young_noise_floors_band_does_not_stretch_the_axis():
    """Two baseline runs make a ±2.6 band: the data (1.28..1.31) decides the axis."""
    lines, key = chart_lines(YOUNG, bar=1.2843, band=2.6)
    values = y_labels(lines).values()
    assert len(values) >= 2 and min(values) >= 1.27 and max(values) <= 1.32, lines
    rows = {row for row, line in enumerate(lines) for ch in line if ch in "●○"}
    assert len(rows) >= 4  # the points are spread over the rows, not on one
    assert "±2.6" in key and "┈" not in "\n".join(lines)  # its edges are off the data's range


@pytest.mark.parametrize("size", [(60, 20), (60, 17), (80, 31), (100, 26)])
def test_y_ticks_are_even_and_beside_the_rows_of_their_values(size):
    # metrics on round values, so some marks sit exactly on a tick's value
    points = [Point(n, v, "keep" if n == 1 else "discard")
              for n, v in enumerate([1.30, 1.32, 1.29, 1.31, 1.28, 1.30, 1.34, 1.27], 1)]
    points.append(Point(9, None, "crash"))  # a row of its own on top
    lines, _ = chart_lines(points, bar=1.30, band=0.004, size=size)
    points = points[:-1]
    ticks = y_labels(lines)
    rows = sorted(ticks)
    assert len(rows) >= 3, lines
    gaps = {b - a for a, b in itertools.pairwise(rows)}
    steps = {round(ticks[a] - ticks[b], 9) for a, b in itertools.pairwise(rows)}
    assert len(gaps) == 1 and len(steps) == 1, (ticks, lines)  # evenly spaced, evenly valued
    on_tick = 0
    for point in points:
        row = next((r for r, value in ticks.items() if abs(value - point.metric) < 1e-9), None)
        if row is not None:  # its mark is on the row labelled with its value
            assert any(ch in lines[row] for ch in "●○"), (point, lines)
            on_tick += 1
    assert on_tick >= 2


def test_even_axis_puts_every_tick_on_its_row_whatever_the_range():
    rng = random.Random(7)
    for _ in range(300):
        low = rng.uniform(-5, 5) * 10 ** rng.randint(-3, 3)
        high = low + rng.uniform(0, 3) * 10 ** rng.randint(-4, 2)
        rows, markers = rng.randint(2, 60), rng.randint(0, 1)
        axis = even_axis(low, high, rows, markers)
        assert axis.rows == max(rows, axis.data_rows) and len(axis.ticks) >= 2
        tick_rows = [axis.row_of(t) for t in axis.ticks]
        for t, r in zip(axis.ticks, tick_rows):  # exactly on its row, not between two
            assert math.isclose(axis.value_of(r), t, rel_tol=1e-9, abs_tol=1e-9 * axis.row)
        assert len({b - a for a, b in itertools.pairwise(tick_rows)}) == 1
        assert axis.row_of(low) >= 0 and axis.row_of(high) <= axis.data_rows - 1
        assert len(set(axis.labels)) == len(axis.labels)  # every label tells its tick


def test_a_run_stopped_early_has_its_own_mark_and_legend_not_a_discards():
    points = [Point(1, 1.30, "keep"), Point(2, 1.31, "discard"), Point(3, None, "discard"),
              Point(4, None, "crash"), Point(5, 1.28, "keep")]
    lines, key = chart_lines(points)
    assert "◇ stopped" in key and "○ discard" in key and "x crash" in key
    text = "\n".join(lines)
    assert text.count("◇") == 1 and text.count("○") == 1  # #3 is not drawn as a discard
    top = next(line for line in lines if "◇" in line)
    assert "x" in top  # the row of the runs without a value, above the data
    data_rows = [row for row, line in enumerate(lines) if "●" in line or "○" in line]
    assert lines.index(top) < min(data_rows)
    assert statistics.fmean(y_labels(lines).values()) < 1.4  # no value was made up for it
