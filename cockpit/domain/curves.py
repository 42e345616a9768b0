"""Loss curves to draw: a run's loss over the progress of its budget, smoothed as early
stop sees it, and the band an early stop measured a run against.

The band is the one the decision used: at each point of progress, the mean loss of the
best's runs (the reference) and, `needed` calibrated spreads of the difference either side
of it, the edges; a run above the upper edge, sustained, was stopped. It is rebuilt from
the journal as it stood when the run was stopped (the best then, the runs calibrating the
spread then), with the session's `[early_stop]` settings. Pure logic: the caller reads the
logs.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cockpit.domain.earlystop import (
    DEFAULT_MARGIN,
    DEFAULT_MIN_PROGRESS,
    WINDOW,
    Curve,
    EarlyStop,
)
from cockpit.domain.state import SessionState

PLOT_STEP = 0.5  # percent of progress between two drawn points (201 over a whole run)


def smoothed(curve: Curve, step: float = PLOT_STEP,
             window: float = WINDOW) -> list[tuple[float, float]]:
    """(percent, loss) every `step` percent the curve covers, and at its end: the loss
    averaged over the trailing `window` percent, as early stop compares runs."""
    if not curve.points:
        return []
    first, end = curve.points[0][0], curve.end
    grid = [k * step for k in range(math.ceil(first / step), math.floor(end / step) + 1)]
    if not grid or grid[-1] < end:
        grid.append(end)  # a live run's newest point, however far between two steps
    return [(p, loss) for p in grid if (loss := curve.loss_at(p, window)) is not None]


@dataclass(frozen=True)
class StopBand:
    """What an early-stopped run was held against, on a grid of progress."""

    progress: tuple[float, ...]
    reference: tuple[float, ...]  # the mean loss of the best's runs then
    upper: tuple[float, ...]  # behind this (sustained), a run was stopped
    lower: tuple[float, ...]
    needed: float  # spreads of the difference the stop needed
    best_n: int | None  # the best then


def state_at_stop(events: list[dict[str, Any]], n: int) -> SessionState:
    """The session as it stood when experiment n was stopped early: the journal folded up
    to its `early_stop` event (or its result, for a journal without one)."""
    state = SessionState()
    for event in events:
        kind = event.get("event")
        if event.get("n") == n and kind in ("early_stop", "result"):
            break
        state.apply(event)
    return state


def calibration_runs(state: SessionState) -> dict[str, list[str]]:
    """commit -> the logs of its runs, for the commits run more than once (the only ones
    the spread is learned from)."""
    logs: dict[str, list[str]] = {}
    for log, commit in state.runs_with_logs():
        logs.setdefault(commit, []).append(log)
    return {commit: found for commit, found in logs.items() if len(found) > 1}


def stop_band(state: SessionState, curve_of: Callable[[str], Curve],
              step: float = PLOT_STEP) -> StopBand | None:
    """The band of a stop, from the session as it stood then (`state_at_stop`) and the
    curves of its logs; None when it cannot be rebuilt (no best, its logs gone, nothing
    calibrates the spread)."""
    best = state.best
    if best is None or not best.commit:
        return None
    settings = state.config.get("early_stop") or {}
    stopper = EarlyStop(float(settings.get("min_progress", DEFAULT_MIN_PROGRESS)),
                        float(settings.get("margin", DEFAULT_MARGIN)))
    groups = calibration_runs(state)
    stopper.calibrate([[curve_of(log) for log in logs] for logs in groups.values()])
    best_curves = [c for c in (curve_of(log) for log, commit in state.runs_with_logs()
                               if commit == best.commit) if c.points]
    needed = stopper.needed  # computed once: it solves for a quantile
    if not stopper.calibrated or not best_curves or not math.isfinite(needed):
        return None
    rows = []
    for k in range(1, int(100 / step) + 1):
        p = k * step
        spread = stopper.spread_at(p)
        losses = [v for v in (c.loss_at(p) for c in best_curves) if v is not None]
        if spread and losses:
            width = needed * spread * math.sqrt(1 + 1 / len(losses))
            mean = statistics.fmean(losses)
            rows.append((p, mean, mean + width, mean - width))
    if not rows:
        return None
    progress, reference, upper, lower = (tuple(column) for column in zip(*rows))
    return StopBand(progress, reference, upper, lower, needed, best.n)
