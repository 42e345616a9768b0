"""Cockpit's clock: how long a run may take, from its budget and the baseline's own runs.

A run's wall time is startup (imports, data, compilation), training, and handing its model
over. The budget is training; the rest is an allowance measured on the human's code: twice
the longest the baseline's runs spent beyond the budget, never less than ALLOWANCE_FLOOR.
A run still going at budget + allowance is stopped by cockpit and is a crash that says so,
whatever train.py thinks its budget is. Until the baseline has measured, the configured
hard timeout is the only limit (it is the human's code that runs).
"""
from __future__ import annotations

from collections.abc import Iterable

ALLOWANCE_FLOOR = 30.0  # seconds beyond the budget any run may take, at the least
ALLOWANCE_FACTOR = 2.0  # times the baseline's longest time beyond its budget


def allowance(budget: float, baseline_seconds: Iterable[float]) -> float | None:
    """Seconds a run may take beyond `budget`, from the baseline's runs' wall times (None
    before any baseline run measured)."""
    overheads = [max(0.0, s - budget) for s in baseline_seconds if s > 0]
    if not overheads:
        return None
    return max(ALLOWANCE_FLOOR, ALLOWANCE_FACTOR * max(overheads))


def deadline(budget: float, allowed: float | None, hard_timeout: float) -> float:
    """Seconds after which a run is stopped: its budget and allowance, within the hard
    timeout."""
    if allowed is None:
        return hard_timeout
    return min(hard_timeout, budget + allowed)


def over_budget(seconds: float, budget: float, allowed: float) -> str:
    """Why a run the clock stopped is a crash, in words."""
    return (f"trained past its budget: ran {seconds:.0f} s on a {budget:.0f} s budget (+ "
            f"{allowed:.0f} s allowed for startup and handing over, from the baseline's runs); "
            "stopped by cockpit's clock")
