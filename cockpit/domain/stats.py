"""The session's pace, as the status line shows it: experiments per hour, keep rate, time
since the last keep, and the current run's ETA.

Pure functions over a `SessionState`, the wall-clock times results were recorded at (the
journal's `result` events carry them; SessionState does not) and the current run's
progress. No widget code here. One pass over the experiments: 10,000 of them take a few
milliseconds.
"""
from __future__ import annotations

from dataclasses import dataclass

from cockpit.domain.state import SessionState

RATE_WINDOW = 12  # experiments per hour is measured over the last this many finished runs
RAN = ("keep", "discard", "crash")  # outcomes of a run that trained (not a rejection)


@dataclass(frozen=True)
class RunProgress:
    """Where the current run stands (all optional: a run that printed nothing yet)."""

    elapsed: float | None = None  # seconds since the run started
    budget: float = 0.0  # the training time budget, seconds
    percent: float | None = None  # the run's own progress, from its \r lines
    remaining: float | None = None  # the run's own "remaining: 177s", if it prints one


@dataclass(frozen=True)
class Pace:
    """The status line's pace fields (names match `Status`'s, so `**asdict(pace)` fits)."""

    per_hour: float | None = None  # finished runs per hour, over the recent ones
    keep_rate: float | None = None  # keeps / judged runs, the baseline left out
    since_keep: float | None = None  # seconds since the last keep was recorded
    eta: float | None = None  # seconds until the current run's training ends


def run_eta(run: RunProgress | None) -> float | None:
    """Seconds left in the current run: the run's own count when it prints one, else the
    budget's rest, else a projection of its percent. None when nothing says."""
    if run is None or run.elapsed is None:
        return None
    if run.remaining is not None:
        return max(0.0, run.remaining)
    if run.budget > 0:
        return max(0.0, run.budget - run.elapsed)
    if run.percent and run.percent > 0:
        return max(0.0, run.elapsed * (100.0 - run.percent) / run.percent)
    return None


def pace(state: SessionState, now: float, run: RunProgress | None = None) -> Pace:
    """The session's pace at wall-clock time `now`.

    An experiment counts from the time its result was recorded (state.finished_at);
    one without a time still counts in the keep rate. The rate is over the last
    RATE_WINDOW finished runs and runs to `now`, so a stalled or paused session reads
    slower as it waits.
    """
    baseline = state.baseline
    kept = judged = 0
    last_keep: int | None = None
    times: list[float] = []
    for exp in state.experiments:
        if exp.status not in RAN:
            continue
        at = state.finished_at.get(exp.n)
        if at is not None:
            times.append(at)
        if exp is baseline:
            continue  # the baseline is kept by definition: it says nothing of the ideas
        judged += 1
        if exp.status == "keep":
            kept += 1
            last_keep = exp.n
    if baseline is not None and baseline.status == "keep" and last_keep is None:
        last_keep = baseline.n  # nothing beat it yet: the wait since the baseline
    per_hour = None
    if len(times) >= 2:
        times.sort()
        window = times[-(RATE_WINDOW + 1):]
        span = max(now, window[-1]) - window[0]
        if span > 0:
            per_hour = (len(window) - 1) * 3600.0 / span
    since_keep = None
    if last_keep is not None and last_keep in state.finished_at:
        since_keep = max(0.0, now - state.finished_at[last_keep])
    return Pace(per_hour=per_hour, keep_rate=kept / judged if judged else None,
                since_keep=since_keep, eta=run_eta(run))
