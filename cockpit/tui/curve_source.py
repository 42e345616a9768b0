"""What the curves screen draws, gathered from what the cockpit already holds: the
session's state, its run logs (each finished run's read once), the live run's curve (the
one the run log's output feeds), and the journal for an early stop's band."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cockpit.domain.curves import smoothed, state_at_stop, stop_band
from cockpit.domain.earlystop import Curve
from cockpit.domain.state import Experiment, SessionState
from cockpit.tui.widgets.loss_chart import LossSeries, StopMarks

CURVE_BYTES = 20_000_000  # of a run's log read for its curve (the session's own bound)
RUNNING_REREAD = 2.0  # seconds before a running experiment's log is read again
BEST_COLOR, SELECTED_COLOR, LIVE_COLOR = "green", "cyan", "orange"
MARKED_COLORS = ("magenta", "yellow", "white", "blue+", "red+")


class Logs(Protocol):
    """The session's files, as a client reads them (client.store.SessionStore)."""

    def log(self, relative: str, max_bytes: int = ...) -> str: ...

    def events(self) -> list[dict]: ...


@dataclass(frozen=True)
class LiveRun:
    """The run in flight the run log shows: its experiment (None for a re-run), its title
    ("#15", "noise re-run") and its curve so far (grown as its output arrives)."""

    n: int | None
    title: str
    curve: Curve


class CurveSource:
    def __init__(self, state: SessionState, logs: Logs, selected: int | None = None,
                 marked: list[int] | None = None,
                 live: Callable[[], LiveRun | None] = lambda: None) -> None:
        self.state = state
        self.logs = logs
        self.selected = selected
        self.marked = list(marked or [])
        self.live = live
        self._curves: dict[str, Curve] = {}  # a finished run's log -> its curve
        self._running: dict[str, tuple[float, Curve]] = {}  # log -> (when read, curve)
        self._points: dict[str, tuple] = {}  # a finished run's log -> its drawn points
        self._bands: dict[int, StopMarks] = {}

    def curve_of_log(self, log: str) -> Curve:
        if log not in self._curves:
            self._curves[log] = Curve.from_log(self.logs.log(log, CURVE_BYTES))
        return self._curves[log]

    def curve(self, exp: Experiment) -> Curve:
        """An experiment's curve: read once when it is over; while it runs (on a worker
        the run log does not show), again every RUNNING_REREAD seconds."""
        if not exp.log:
            return Curve()
        if exp.finished:
            return self.curve_of_log(exp.log)
        read = self._running.get(exp.log)
        if read is None or time.monotonic() - read[0] > RUNNING_REREAD:
            read = (time.monotonic(), Curve.from_log(self.logs.log(exp.log, CURVE_BYTES)))
            self._running[exp.log] = read
        return read[1]

    def points(self, exp: Experiment) -> tuple[tuple[float, float], ...]:
        """Its curve as drawn (a finished run's computed once)."""
        curve = self.curve(exp)
        if not exp.finished or not exp.log:
            return tuple(smoothed(curve))
        if exp.log not in self._points:
            self._points[exp.log] = tuple(smoothed(curve))
        return self._points[exp.log]

    def ran(self) -> list[int]:
        """The experiments that have a log (ran or run), oldest first."""
        return [e.n for e in self.state.experiments if e.log]

    def series(self, live: LiveRun | None) -> list[LossSeries]:
        """The curves to draw, the last on top: the marked, the selected, the best, the
        live run."""
        best = self.state.best
        chosen: list[tuple[Experiment, str, str]] = []
        for i, n in enumerate(self.marked):
            exp = self.state.get(n)
            if exp is not None:
                chosen.append((exp, f"#{n}", MARKED_COLORS[i % len(MARKED_COLORS)]))
        selected = self.state.get(self.selected)
        if selected is not None:
            chosen.append((selected, f"#{selected.n}", SELECTED_COLOR))
        if best is not None:
            chosen.append((best, f"#{best.n} best", BEST_COLOR))
        live_n = live.n if live is not None else None
        seen: dict[int, LossSeries] = {}
        for exp, label, color in chosen:
            if exp.n == live_n:
                continue  # drawn as the live run, growing
            seen.pop(exp.n, None)  # drawn once, in its last role (best over selected)
            seen[exp.n] = LossSeries(label, self.points(exp), color)
        drawn = list(seen.values())
        if live is not None:
            drawn.append(LossSeries(f"{live.title} live", tuple(smoothed(live.curve)),
                                    LIVE_COLOR))
        return drawn

    def stopped(self) -> Experiment | None:
        """The early-stopped run whose band is drawn: the selected, else the first marked."""
        for n in [self.selected, *self.marked]:
            exp = self.state.get(n)
            if exp is not None and exp.early_stop is not None:
                return exp
        return None

    def stop_marks(self) -> StopMarks | None:
        exp = self.stopped()
        if exp is None or exp.early_stop is None:
            return None
        if exp.n not in self._bands:
            record = exp.early_stop
            then = state_at_stop(self.logs.events(), exp.n)
            self._bands[exp.n] = StopMarks(
                stop_band(then, self.curve_of_log),
                (float(record["progress"]), float(record["loss"]), float(record["best_loss"])),
                f"#{exp.n}")
        return self._bands[exp.n]


def live_run_of(runs: dict, worker: int, shown: tuple | None, curve: Curve) -> LiveRun | None:
    """The run the run log follows, while it is in flight: `runs` is the view's worker ->
    latest run, `shown` the (worker, kind, n) the log shows, `curve` the one its output
    feeds."""
    run = runs.get(worker)
    if run is None or run["done"] or run["key"] != shown:
        return None
    _, kind, n = run["key"]
    return LiveRun(n if kind == "experiment" else None, run["title"], curve)
