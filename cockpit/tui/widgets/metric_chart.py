"""The metric chart: the metric per experiment (keep / discard / crash marked), the
best-so-far as a step line, the bar to beat with its noise band, an optional cursor, and
a one-line sparkline of the current run's loss against the best run's at the same
progress.

The key sits on its own line under the plot (no legend over the data); the data decides
the y axis (a noise band wider than the data is drawn only within it), whose round ticks
sit evenly on the rows of their values; the x ticks fall on whole experiment numbers. A
crash and a run stopped early (no value measured) sit on a row of their own on top, each
with its own mark. A redraw with nothing new
is skipped, and the plot is built once per change, not once per repaint.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Static

from cockpit.tui.widgets.chart_axis import (  # noqa: F401 (nice_ticks: the chart's API)
    YAxis,
    even_axis,
    integer_ticks,
    nice_ticks,
)
from cockpit.tui.widgets.plot_pane import CachedPlot, PlotPane

MAX_LOSS_POINTS = 200
# A crash and a run stopped early have no value: they sit on the top row, above the
# data, each with a mark of its own.
MARKS = {"keep": ("green", "●"), "discard": ("yellow", "○"), "stopped": ("magenta", "◇"),
         "crash": ("red", "x")}
# With parallel workers the colour says which worker, the marker still says the status.
WORKER_COLORS = ("cyan", "magenta", "orange", "blue", "green", "yellow", "red", "white")
BEST_COLOR, BAR_COLOR, BAND_COLOR, CURSOR_COLOR = "green", "cyan", "blue", "cyan"
SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Point:
    n: int
    metric: float | None  # None for a crash
    status: str  # keep | discard | crash
    worker: int = 0

    @property
    def kind(self) -> str:
        """How it is drawn: its status, or "stopped" for a discard that has no value (a
        run stopped early, behind the best: nothing was measured)."""
        return "stopped" if self.status == "discard" and self.metric is None else self.status


def best_steps(points: list[Point]) -> tuple[list[float], list[float]]:
    """The best-so-far as a step line: flat until a keep, then straight down (or up) to
    it, through the last experiment."""
    xs: list[float] = []
    ys: list[float] = []
    best = None
    for p in sorted(points, key=lambda p: p.n):
        if p.status == "keep" and p.metric is not None:
            if best is not None:
                xs.append(p.n)
                ys.append(best)
            best = p.metric
            xs.append(p.n)
            ys.append(best)
    if xs and points:
        last = max(p.n for p in points)
        if last > xs[-1]:
            xs.append(last)
            ys.append(ys[-1])
    return xs, ys


def spark(current: list[float], reference: list[float] | None, width: int) -> Text:
    """The loss as bars, `width` cells: where the run has a value, its bar (green at or
    under the reference at the same index, red above it); past the run's end, the
    reference's bar, dim. Both lists are sampled on the same progress grid."""
    reference = reference or []
    length = max(len(current), len(reference))
    values = [v for v in (*current, *reference) if math.isfinite(v)]
    text = Text()
    if not length or width <= 0 or not values:
        return text
    low, high = min(values), max(values)
    cells = min(width, length)

    def bucket(series: list[float], i: int) -> float | None:
        lo, hi = i * length // cells, max(i * length // cells + 1, (i + 1) * length // cells)
        chunk = [v for v in series[lo:hi] if math.isfinite(v)]
        return sum(chunk) / len(chunk) if chunk else None

    for i in range(cells):
        mine, theirs = bucket(current, i), bucket(reference, i)
        value = mine if mine is not None else theirs
        if value is None:
            text.append(" ")
            continue
        level = 0 if high == low else round((value - low) / (high - low) * (len(SPARK_BLOCKS) - 1))
        if mine is None:
            style = "dim"
        elif theirs is None:
            style = "cyan"
        else:
            style = "green" if mine <= theirs else "red"
        text.append(SPARK_BLOCKS[level], style=style)
    return text


class LossSpark(Widget):
    """One line: the current run's loss, against the best run's at the same progress."""

    DEFAULT_CSS = "LossSpark { height: 1; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.current: list[float] = []
        self.reference: list[float] | None = None

    def set(self, current: list[float], reference: list[float] | None) -> None:
        if (current, reference) != (self.current, self.reference):
            self.current, self.reference = current, reference
            self.refresh()

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="crop")
        now = self.current[-1] if self.current else None
        if now is None and not self.reference:
            return text
        at = len(self.current) - 1
        if now is not None:
            text.append(f"loss {now:.3f} ")
        if self.reference and now is not None and 0 <= at < len(self.reference):
            then = self.reference[at]
            text.append(f"best {then:.3f} ", style="green" if now <= then else "red")
        elif self.reference:
            text.append(f"best {self.reference[-1]:.3f} ", style="dim")
        text.append_text(spark(self.current, self.reference, self.size.width - text.cell_len))
        return text


class MetricChart(PlotPane):
    """Methods called down: `set_points`, `set_cursor`, `set_bar`, `set_losses`,
    `redraw` (after the pane is shown again)."""

    KEY_ID = "chart-key"

    can_focus = True  # its pane key (4) focuses it, so the focus shows where you are

    DEFAULT_CLASSES = "pane"

    def __init__(self, metric: str = "val_bpb", **kwargs) -> None:
        super().__init__(**kwargs)
        self.metric = metric
        self.points: list[Point] = []
        self.cursor: int | None = None
        self.bar: float | None = None
        self.band: float | None = None
        self.losses: list[float] = []
        self.reference: list[float] | None = None
        self._band_cut = False  # the noise band reaches past the data's range

    def compose(self) -> ComposeResult:
        yield Static(f"{self.metric} per experiment", id="chart-title", markup=False)
        yield CachedPlot(id="metric-plot")
        yield Static("", id="chart-key", markup=False)
        yield LossSpark(id="loss-sparkline")

    def on_resize(self) -> None:
        self.redraw()

    def on_show(self) -> None:
        self.redraw()

    def set_metric(self, name: str) -> None:
        self.metric = name
        if self.is_mounted:
            self.query_one("#chart-title", Static).update(f"{name} per experiment")
            self._drawn = None
            self.redraw()

    def set_points(self, points: list[Point], cursor: int | None = None) -> None:
        self.points = points
        self.cursor = cursor
        self.redraw()

    def set_cursor(self, n: int | None) -> None:
        self.cursor = n
        self.redraw()

    def set_bar(self, value: float | None, band: float | None = None) -> None:
        """The bar a result must beat (the best's mean) and the noise band around it
        (drawn at bar ± band); None removes them."""
        self.bar = value
        self.band = band if value is not None else None
        self.redraw()

    def set_losses(self, current: list[float], reference: list[float] | None = None) -> None:
        """The current run's loss so far and, sampled on the same progress grid (index i
        is the same point of the budget in both), the best run's loss. The reference may
        run longer than the current run: a run stopped early shows against the whole."""
        self.losses = current[-MAX_LOSS_POINTS:]
        self.reference = reference[:MAX_LOSS_POINTS] if reference else None
        if self.is_mounted:
            self.query_one(LossSpark).set(self.losses, self.reference)

    def shown(self) -> tuple:
        return (tuple(self.points), self.cursor, self.bar, self.band)

    def _draw(self, plt, axis: YAxis, width: int) -> None:
        first, last = min(p.n for p in self.points), max(p.n for p in self.points)
        digits = len(str(last))
        # whole numbers, as the floats plotext's types ask for
        xticks: list[float] = [*integer_ticks(first, last, max(1, (width - 8) // (digits + 5)))]
        plt.xlim(first - 0.5 if first == last else first, last + 0.5 if first == last else last)
        plt.xticks(xticks, [str(x) for x in xticks])
        x_span = [first, last] if first != last else [first - 0.5, last + 0.5]
        if self.bar is not None:
            edges = self.band_edges(axis)  # only the edges the data's range holds
            self._band_cut = bool(self.band) and len(edges) < 2
            for edge in edges:
                plt.plot(x_span, [edge, edge], marker="┈", color=BAND_COLOR)
            plt.plot(x_span, [self.bar, self.bar], marker="─", color=BAR_COLOR)
        best_x, best_y = best_steps(self.points)
        if best_x:
            plt.plot(best_x, best_y, color=BEST_COLOR, marker="braille")
        self._scatter(plt, axis)
        if self.cursor is not None:
            plt.vline(self.cursor, CURSOR_COLOR)

    def y_axis(self, height: int) -> YAxis | None:
        """The y axis: the data (every value and the bar) decides its range, with a row on
        top for the runs without a value; None when nothing was measured."""
        levels = [p.metric for p in self.points if p.metric is not None]
        if not levels:
            return None
        if self.bar is not None:
            levels.append(self.bar)
        rows = max(2, height - 3)  # the frame and the x tick labels take three rows
        unmeasured = any(p.metric is None for p in self.points)
        return even_axis(min(levels), max(levels), rows, 1 if unmeasured else 0)

    def band_edges(self, axis: YAxis) -> list[float]:
        """The noise band's edges the axis holds: a band wider than the data (a young noise
        floor) is drawn only where the data is, never stretching the axis."""
        if self.bar is None or not self.band:
            return []
        return [e for e in (self.bar - self.band, self.bar + self.band) if axis.holds(e)]

    def _scatter(self, plt, axis: YAxis) -> None:
        top = axis.value_of(axis.rows - 1)  # the row of the runs without a value
        workers = sorted({p.worker for p in self.points})
        for kind, (color, marker) in MARKS.items():
            for worker in workers:
                mine = [p for p in self.points if p.kind == kind and p.worker == worker]
                if not mine:
                    continue
                if len(workers) > 1:
                    color = WORKER_COLORS[worker % len(WORKER_COLORS)]
                plt.scatter([p.n for p in mine], [top if p.metric is None
                                                  else p.metric for p in mine],
                            color=color, marker=marker)

    def _key(self) -> Text:
        """The chart's key, one line under the plot."""
        key = Text(no_wrap=True, overflow="ellipsis")
        if self.points and self.bar is None and all(p.metric is None for p in self.points):
            key.append(f"no {self.metric} measured yet: ", style="dim")
        kinds = {p.kind for p in self.points}
        for kind, (color, marker) in MARKS.items():
            if kind in kinds:
                key.append(marker, style=color)
                key.append(f" {kind}  ")  # the marker apart: "x crash", never "xcrash"
        if any(p.status == "keep" for p in self.points):
            key.append("⣀", style=BEST_COLOR)
            key.append(" best  ")
        if self.bar is not None:
            key.append("─", style=BAR_COLOR)
            key.append(" bar  ")
            if self.band:
                key.append("┈", style=BAND_COLOR)
                key.append(f" ±{self.band:.4g}" + (" off axis  " if self._band_cut else "  "))
        if len({p.worker for p in self.points}) > 1:
            key.append("colour: worker", style="dim")
        return key
