"""The metric chart: the metric per experiment (keep / discard / crash marked) with the
best-so-far line, an optional cursor, and a Sparkline of the current run's loss."""
from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline
from textual_plotext import PlotextPlot

MAX_LOSS_POINTS = 200
MARKS = {"keep": ("green", "●"), "discard": ("yellow", "○"), "crash": ("red", "x")}
# With parallel workers the colour says which worker, the marker still says the status.
WORKER_COLORS = ("cyan", "magenta", "orange", "blue", "green", "yellow", "red", "white")


@dataclass(frozen=True)
class Point:
    n: int
    metric: float | None  # None for a crash
    status: str  # keep | discard | crash
    worker: int = 0


class MetricChart(Vertical):
    DEFAULT_CLASSES = "pane"

    def __init__(self, metric: str = "val_bpb", lower_is_better: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.metric = metric
        self.lower_is_better = lower_is_better
        self.points: list[Point] = []
        self.cursor: int | None = None
        self.losses: list[float] = []
        self._drawn = None  # what the plot last showed, to skip identical redraws

    def compose(self) -> ComposeResult:
        yield PlotextPlot(id="metric-plot")
        yield Sparkline([], id="loss-sparkline")

    def set_points(self, points: list[Point], cursor: int | None = None) -> None:
        self.points = points
        self.cursor = cursor
        self.redraw()

    def set_cursor(self, n: int | None) -> None:
        self.cursor = n
        self.redraw()

    def set_losses(self, losses: list[float]) -> None:
        self.losses = losses[-MAX_LOSS_POINTS:]
        self.query_one(Sparkline).data = self.losses

    def redraw(self) -> None:
        key = (tuple(self.points), self.cursor)
        if key == self._drawn or not self.is_mounted:
            return
        self._drawn = key
        widget = self.query_one(PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(f"{self.metric} per experiment")
        measured = [p for p in self.points if p.metric is not None]
        if measured:
            low = min(p.metric for p in measured)
            high = max(p.metric for p in measured)
            crash_y = high + (high - low) * 0.05 if high > low else high + 0.01
            best_x, best_y, best = [], [], None
            for p in self.points:
                if p.status == "keep" and p.metric is not None:
                    best = p.metric
                if best is not None:
                    best_x.append(p.n)
                    best_y.append(best)
            if best_x:
                plt.plot(best_x, best_y, color="green", marker="braille", label="best")
            workers = sorted({p.worker for p in self.points})
            for status, (color, marker) in MARKS.items():
                for worker in workers:
                    mine = [p for p in self.points if p.status == status and p.worker == worker]
                    if not mine:
                        continue
                    xs = [p.n for p in mine]
                    ys = [crash_y if p.metric is None else p.metric for p in mine]
                    if len(workers) > 1:
                        color = WORKER_COLORS[worker % len(WORKER_COLORS)]
                        label = f"gpu{worker} {status}"
                    else:
                        label = status
                    plt.scatter(xs, ys, color=color, marker=marker, label=label)
        if self.cursor is not None:
            plt.vline(self.cursor, "cyan")
        widget.refresh()
