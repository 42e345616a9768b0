"""A pane holding a plotext plot and its key below it, redrawn only when what it shows
changed (the val_bpb chart and the loss curves share this)."""
from __future__ import annotations

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from cockpit.tui.widgets.chart_axis import YAxis


class CachedPlot(PlotextPlot):
    """A PlotextPlot that builds its picture once per change, not on every repaint."""

    generation = 0  # bumped by whoever changes the plot's data

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._cache: tuple[tuple, Text] | None = None

    def render(self):
        key = (self.size, self.app.theme, self.generation)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, super().render())
        return self._cache[1]


class PlotPane(Vertical):
    """Subclasses compose one CachedPlot and a Static with id KEY_ID, and say what the
    plot shows (`shown`), its y axis (`y_axis`), how to draw the rest (`_draw`) and its key
    (`_key`)."""

    KEY_ID = ""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._drawn: tuple | None = None  # what the plot last showed, to skip identical redraws

    def shown(self) -> tuple:
        raise NotImplementedError

    def y_axis(self, height: int) -> YAxis | None:
        """The y axis for the data shown; None when there is nothing to draw."""
        raise NotImplementedError

    def _draw(self, plt, axis: YAxis, width: int) -> None:
        """The x axis and the data, on a cleared figure whose y axis is set."""
        raise NotImplementedError

    def _key(self) -> Text:
        raise NotImplementedError

    def redraw(self) -> None:
        if not self.is_mounted:
            return
        plot = self.query_one(CachedPlot)
        width, height = plot.size
        key = (*self.shown(), width, height)
        if key == self._drawn:
            return
        self._drawn = key
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        axis = self.y_axis(height)
        if axis is not None:  # else nothing to show: no made-up axis (the key says so)
            plt.ylim(axis.low, axis.high)
            plt.yticks(list(axis.ticks), list(axis.labels))
            self._draw(plt, axis, width)
        plot.generation += 1
        plot.refresh()
        self.query_one(f"#{self.KEY_ID}", Static).update(self._key())
