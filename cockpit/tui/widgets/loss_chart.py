"""The loss chart: whole training curves (loss over the progress of the time budget),
overlaid, each in its colour, with an early stop's band and the point it was stopped at.

The y axis fits the curves past their first HEAD percent (the steep start would flatten
everything after it: it runs off the top), with round ticks on the rows of their values.
The key, under the plot, names each curve and its last loss.
"""
from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from cockpit.domain.curves import StopBand
from cockpit.tui.widgets.chart_axis import YAxis, even_axis, integer_ticks
from cockpit.tui.widgets.plot_pane import CachedPlot, PlotPane

HEAD = 10.0  # percent of progress left out of the y range (the steep start)
BAND_COLOR, REFERENCE_COLOR, STOP_COLOR = "blue", "blue", "red"
BAND_MARK, STOP_MARK = "┈", "x"
# plotext's colour names that rich (the key) spells otherwise
KEY_STYLE = {"orange": "orange1", "blue+": "bright_blue", "red+": "bright_red"}


@dataclass(frozen=True)
class LossSeries:
    """One curve: its label in the key ("#12 best"), (percent, loss) points, its colour."""

    label: str
    points: tuple[tuple[float, float], ...]
    color: str


@dataclass(frozen=True)
class StopMarks:
    """An early-stopped run's band (None when it could not be rebuilt) and where it was
    stopped: (percent, its loss there, the best's loss there)."""

    band: StopBand | None
    stop: tuple[float, float, float]
    label: str  # "#5"


class LossChart(PlotPane):
    """Methods called down: `set_curves` (the whole picture; a redraw only on change)."""

    KEY_ID = "loss-key"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.series: list[LossSeries] = []
        self.stop: StopMarks | None = None

    def compose(self) -> ComposeResult:
        yield CachedPlot(id="loss-plot")
        yield Static("", id="loss-key", markup=False)

    def on_resize(self) -> None:
        self.redraw()

    def set_curves(self, series: list[LossSeries], stop: StopMarks | None = None) -> None:
        self.series, self.stop = series, stop
        self.redraw()

    def shown(self) -> tuple:
        return (tuple(self.series), self.stop)

    def y_axis(self, height: int) -> YAxis | None:
        """The axis of the curves past their steep start (of all of a curve too short to
        have one), the early stop's point and reference included."""
        levels = []
        for series in self.series:
            past = [loss for p, loss in series.points if p >= HEAD]
            levels += past or [loss for _, loss in series.points]
        if self.stop is not None:
            levels += self.stop.stop[1:]
        if not levels:
            return None
        return even_axis(min(levels), max(levels), max(2, height - 3))

    def _draw(self, plt, axis: YAxis, width: int) -> None:
        plt.xlim(0, 100)
        xticks: list[float] = [*integer_ticks(0, 100, max(1, (width - 8) // 8))]
        plt.xticks(xticks, [f"{x:.0f}%" for x in xticks])
        band = self.stop.band if self.stop is not None else None
        if band is not None:  # under the curves
            xs = list(band.progress)
            plt.plot(xs, list(band.reference), color=REFERENCE_COLOR, marker="braille")
            for edge in (band.upper, band.lower):
                plt.plot(xs, list(edge), color=BAND_COLOR, marker=BAND_MARK)
        for series in self.series:
            if series.points:
                plt.plot([p for p, _ in series.points], [loss for _, loss in series.points],
                         color=series.color, marker="braille")
        if self.stop is not None:  # over them
            self._draw_stop(plt, axis, self.stop)

    def _draw_stop(self, plt, axis: YAxis, stop: StopMarks) -> None:
        at, loss, _ = stop.stop
        plt.vline(at, STOP_COLOR)
        plt.scatter([at], [min(max(loss, axis.low), axis.high)], color=STOP_COLOR,
                    marker=STOP_MARK)

    def _key(self) -> Text:
        key = Text(no_wrap=True, overflow="ellipsis")
        if not self.series:
            key.append("no loss curve: the runs shown printed no progress lines yet",
                       style="dim")
        for series in self.series:
            key.append("⣀", style=KEY_STYLE.get(series.color, series.color))
            last = f" {series.points[-1][1]:.4f}" if series.points else " (no loss yet)"
            key.append(f"{series.label}{last}  ")
        stop = self.stop
        if stop is not None:
            key.append(STOP_MARK, style=STOP_COLOR)
            key.append(f"{stop.label} stopped at {stop.stop[0]:.0f}%  ")
            if stop.band is not None:
                key.append(BAND_MARK, style=BAND_COLOR)
                who = f"#{stop.band.best_n}" if stop.band.best_n is not None else "the best"
                key.append(f"stop band: {who} then ±{stop.band.needed:.2g} spreads")
            else:
                key.append("(its band: no re-runs to rebuild it from)", style="dim")
        return key
