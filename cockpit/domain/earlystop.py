"""Early stop: end a run whose loss falls behind the best's beyond the noise.

While a run trains, its progress lines (`step 00123 (41.0%) | loss: 3.912345 | ...`) give a
curve of (progress %, loss). At the same progress, the best commit's runs give the loss to
beat, and repeated runs of one commit (the baseline's re-runs, keep re-runs) give how much
the loss moves between runs of the same code at that point: the spread. A run more than
`margin` spreads behind the best, past `min_progress` percent of its budget, is hopeless:
stopping it gives the rest of the budget to the next idea.

Pure logic: no processes, no files. The caller feeds the curves and acts on the decision.

- Smoothing: the printed loss is a noisy per-step value, so a curve's loss at p is the mean
  of its points over the trailing `window` percent of progress (the value interpolated at p
  when the window holds fewer than MIN_WINDOW_POINTS points).
- Calibration: at each GRID_STEP of progress, every group of two or more curves of the same
  commit gives squared deviations from its own mean; they are pooled across commits and over
  +-SPREAD_POOLING percent of progress (the spread changes slowly with progress, and one
  pair of curves alone is too few to trust at a single point).
- The comparison: (loss - best) / (spread * sqrt(1 + 1/m)) against m best curves, so the
  spread of the difference is what `margin` counts. A spread from few pairs of curves can
  be small by chance, so the margin widens as the keep bar does, by the judge's
  small-sample factor at `pairs` degrees of freedom (x7.0 for one pair of curves, x1.65
  for three). Loss is always lower-better, whatever the judged metric's direction.
- Without calibration (no commit ran twice, or its re-runs agreed exactly) it never stops;
  a NaN, infinite or absurd (beyond MAX_LOSS) loss never stops a run here (the run
  crashes on its own, with a clearer reason).

- Sustained: a run is stopped only when it has been behind by more than the margin at
  every SUSTAIN_STEP over the trailing SUSTAIN percent of progress. A stretch of hard
  batches lifts one curve for a moment (runs of different speeds meet the same batches at
  different progress); a hopeless run stays behind.

Defaults (`min_progress` 25, `margin` 1, SUSTAIN 5) come from replaying real sessions' runs
(`bench/bench_earlystop.py --session`: 214 runs of seven 30- and 60-minute tune sessions of
train.py at a 60 s budget on a CPU). The question a stop must answer is not "is this run
worse?" but "can it still be kept?", and a keep needs a gain beyond the noise at the end:
no kept run (15) was behind its best at all, sustained over 5% of progress, past 25% of its
budget (0.08 spreads at most, checked at every line), while half of the rest were. One
spread sustained stops 98 of the 214 (none kept, 11 of 66 near-misses) and saves 28% of
their budgets: experiments cost 50 s instead of 66 s. A check at single points needs three
spreads to spare the keeps (one was 1.7 spreads behind for a moment; another 2.8 before
25%), and then stops 40 of the 214, later. Before 25% a change of learning rate or warmup
is still reshaping its curve; train.py's warmdown starts at 60%, where curves cross. Past
LAST_STOP (90%) a run is left to finish: a 60-minute session here stopped five of its ten
at 87-98%, saving seconds and losing their measured val_bpb.
"""
from __future__ import annotations

import math
import re
import statistics
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import Any

from cockpit.domain.judge import small_sample_factor

PROGRESS = re.compile(r"\((\d+(?:\.\d+)?)%\).*?loss:\s*"
                      r"([-+]?(?:[0-9.]+(?:[eE][-+]?\d+)?|nan|inf))", re.IGNORECASE)
DEFAULT_MIN_PROGRESS = 25.0  # percent of the budget before a run may be stopped
DEFAULT_MARGIN = 1.0  # how many spreads of the difference behind the best (a known spread)
PERCENT = itemgetter(0)  # of a curve's (percent, loss) point
SUSTAIN = 5.0  # percent of progress a run must have stayed that far behind, trailing
# Between the checks of that stretch: a bound on the work, however many lines a run prints.
SUSTAIN_STEP = 0.5
# Past this share of the budget a run ends (training and evaluation) sooner than a stop
# saves much, and its measured metric tells the agent more than "stopped": let it finish.
LAST_STOP = 90.0
# A printed loss beyond this is no loss at all (sums and squares of such overflow): the
# curve is broken, like one with a NaN.
MAX_LOSS = 1e30
# Points a curve added to line by line keeps: train.py prints at most 10 progress lines a
# second (3,000 in 5 minutes); beyond this, a flood.
MAX_POINTS = 5_000
SMALL_SAMPLE_LEVEL = 2.0  # the keep bar's noise multiple: the level of the widening
WINDOW = 5.0  # percent of progress the loss is averaged over, trailing
MIN_WINDOW_POINTS = 3  # fewer points in the window: interpolate instead of averaging
REACH = 1.0  # percent of progress a curve may be short of a point and still cover it
GRID_STEP = 2.0  # percent of progress between calibration points
SPREAD_POOLING = 10.0  # +- percent of progress pooled into one spread


@dataclass
class Curve:
    """One run's loss over its progress: (percent, loss) points sorted by progress, finite
    losses only; `broken` when a NaN, infinite or absurd (beyond MAX_LOSS) loss was seen."""

    points: list[tuple[float, float]] = field(default_factory=list)
    broken: bool = False
    spacing: float = 0.0  # progress between kept points, once a flood had to be thinned

    def __post_init__(self) -> None:
        finite = [(p, loss) for p, loss in self.points
                  if loss is not None and math.isfinite(loss) and abs(loss) <= MAX_LOSS]
        self.broken = self.broken or len(finite) < len(self.points)
        # One sort: added one by one, points in a hostile order (progress running backwards)
        # would be inserted one at a time, quadratic in the number of lines.
        self.points = sorted(finite, key=PERCENT)

    @classmethod
    def from_log(cls, text: str) -> Curve:
        """The curve of a run's log (its `\\r`-updated progress lines included)."""
        return cls([(float(m.group(1)), float(m.group(2))) for line in re.split(r"[\r\n]", text)
                    if (m := PROGRESS.search(line))])

    def add(self, progress: float, loss: float) -> None:
        if loss is None or not math.isfinite(loss) or abs(loss) > MAX_LOSS:
            self.broken = True
            return
        if self.spacing and self.points and progress < self.points[-1][0] + self.spacing:
            return  # thinned: one point per `spacing` of progress, forwards only
        if self.points and progress < self.points[-1][0]:
            insort(self.points, (progress, loss))
        else:
            self.points.append((progress, loss))
        if len(self.points) > MAX_POINTS:
            self._thin()

    def _thin(self) -> None:
        """A flood of progress lines (a live curve is added to line by line): keep one point
        per twice the spacing, so the whole curve keeps its shape in bounded points."""
        span = self.points[-1][0] - self.points[0][0]
        self.spacing = max(2 * self.spacing, 2 * span / MAX_POINTS, 1e-6)
        kept = [self.points[0]]
        for point in self.points[1:]:
            if point[0] >= kept[-1][0] + self.spacing:
                kept.append(point)
        self.points = kept

    @property
    def end(self) -> float:
        """How far the run got, in percent (0 before its first point)."""
        return self.points[-1][0] if self.points else 0.0

    def loss_at(self, progress: float, window: float = WINDOW) -> float | None:
        """The smoothed loss at `progress`; None when the curve does not cover it."""
        if not self.points or progress < self.points[0][0] or progress > self.end + REACH:
            return None
        lo = bisect_left(self.points, progress - window, key=PERCENT)
        hi = bisect_right(self.points, progress, key=PERCENT)
        if hi - lo >= MIN_WINDOW_POINTS:
            return statistics.fmean(loss for _, loss in self.points[lo:hi])
        return self._interpolate(progress)

    def _interpolate(self, progress: float) -> float:
        i = bisect_left(self.points, progress, key=PERCENT)
        if i >= len(self.points):
            return self.points[-1][1]
        (x1, y1) = self.points[i]
        if x1 == progress or i == 0:
            return y1
        (x0, y0) = self.points[i - 1]
        return y0 + (y1 - y0) * (progress - x0) / (x1 - x0)


@dataclass(frozen=True)
class StopDecision:
    progress: float  # percent of the budget when it was stopped
    loss: float  # the run's smoothed loss there
    best_loss: float  # the best's smoothed loss at the same progress
    sigmas: float  # how many spreads of the difference the run was behind
    since: float | None = None  # percent from which it was that far behind, unbroken

    @property
    def why(self) -> str:
        return describe_stop(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The journal's `early_stop` record."""
        record = {"progress": round(self.progress, 1), "loss": self.loss,
                  "best_loss": self.best_loss, "sigmas": round(self.sigmas, 2)}
        if self.since is not None:
            record["since"] = round(self.since, 1)
        return record


def describe_stop(record: dict[str, Any]) -> str:
    """An early stop in words: "stopped at 40%: loss 3.91 vs 3.72 for the best at the same
    point, 5.1x the noise, behind since 31%"."""
    loss, best = record["loss"], record["best_loss"]
    gap = abs(loss - best)
    decimals = 2 if gap >= 0.01 or gap == 0 else min(6, 1 - math.floor(math.log10(gap)))
    return (f"stopped at {record['progress']:.0f}%: loss {loss:.{decimals}f} vs "
            f"{best:.{decimals}f} for the best at the same point, "
            f"{record['sigmas']:.1f}x the noise"
            + (f", behind since {record['since']:.0f}%" if record.get("since") is not None
               else ""))


class EarlyStop:
    """Says when a run is behind the best's runs beyond the calibrated noise."""

    def __init__(self, min_progress: float = DEFAULT_MIN_PROGRESS,
                 margin: float = DEFAULT_MARGIN, window: float = WINDOW,
                 sustain: float = SUSTAIN):
        self.min_progress = min_progress
        self.margin = margin
        self.window = window
        self.sustain = sustain
        self._grid: list[float] = []  # progress points where the spread is known
        self._spread: list[float] = []
        self.pairs = 0  # degrees of freedom of the calibration: curves minus commits

    @property
    def calibrated(self) -> bool:
        return bool(self._grid)

    def calibrate(self, groups: list[list[Curve]]) -> EarlyStop:
        """Learn the spread of the loss from groups of curves of the same commit (a group
        with one curve says nothing). Replaces any earlier calibration."""
        groups = [[c for c in group if c.points] for group in groups]
        groups = [group for group in groups if len(group) >= 2]
        self.pairs = sum(len(group) - 1 for group in groups)
        steps = int(100 / GRID_STEP)
        grid = [GRID_STEP * k for k in range(1, steps + 1)]
        squares, dofs = [0.0] * len(grid), [0] * len(grid)
        for k, progress in enumerate(grid):
            for group in groups:
                losses = [v for v in (c.loss_at(progress, self.window) for c in group)
                          if v is not None]
                if len(losses) >= 2:
                    mean = statistics.fmean(losses)
                    squares[k] += sum((v - mean) ** 2 for v in losses)
                    dofs[k] += len(losses) - 1
        reach = round(SPREAD_POOLING / GRID_STEP)
        self._grid, self._spread = [], []
        for k, progress in enumerate(grid):
            near = range(max(0, k - reach), min(len(grid), k + reach + 1))
            dof = sum(dofs[j] for j in near)
            if dofs[k] and dof:
                self._grid.append(progress)
                self._spread.append(math.sqrt(sum(squares[j] for j in near) / dof))
        return self

    def spread_at(self, progress: float) -> float | None:
        """The calibrated spread of one run's loss at `progress` (None outside the grid)."""
        if not self._grid or progress < self._grid[0] - GRID_STEP or progress > self._grid[-1]:
            return None
        i = bisect_left(self._grid, progress)
        if i == 0:
            return self._spread[0]
        x0, x1 = self._grid[i - 1], self._grid[min(i, len(self._grid) - 1)]
        y0, y1 = self._spread[i - 1], self._spread[min(i, len(self._grid) - 1)]
        return y0 if x1 == x0 else y0 + (y1 - y0) * (progress - x0) / (x1 - x0)

    @property
    def needed(self) -> float:
        """The spreads a run must be behind to be stopped: `margin`, widened for a spread
        that rests on few pairs of curves."""
        if self.pairs < 1:
            return math.inf
        return self.margin * small_sample_factor(self.pairs, SMALL_SAMPLE_LEVEL)

    def check(self, best_curves: list[Curve], current: Curve) -> StopDecision | None:
        """A StopDecision when `current` is between min_progress and LAST_STOP and has been
        behind the mean of the best's curves by more than `needed` spreads at every
        SUSTAIN_STEP over the trailing `sustain` percent of progress; else None."""
        if not self.calibrated or current.broken or current.end < self.min_progress:
            return None
        if current.end > max(LAST_STOP, self.min_progress):
            return None
        decision = self._behind_at(current.end, best_curves, current)
        if decision is None:
            return None
        # A stretch of hard batches lifts a curve for a moment; a hopeless run stays behind.
        since, progress = current.end, current.end - SUSTAIN_STEP
        while progress >= current.points[0][0]:
            if self._behind_at(progress, best_curves, current) is None:
                if progress >= current.end - self.sustain:
                    return None
                break
            since, progress = progress, progress - SUSTAIN_STEP
        return replace(decision, since=since)

    def _behind_at(self, progress: float, best_curves: list[Curve],
                   current: Curve) -> StopDecision | None:
        """The decision had `current` been checked at `progress` alone."""
        loss = current.loss_at(progress, self.window)
        best = [v for v in (c.loss_at(progress, self.window) for c in best_curves)
                if v is not None]
        spread = self.spread_at(progress)
        if loss is None or not best or not spread:
            return None
        best_loss = statistics.fmean(best)
        sigmas = (loss - best_loss) / (spread * math.sqrt(1 + 1 / len(best)))
        if sigmas <= self.needed:
            return None
        return StopDecision(progress, loss, best_loss, sigmas)
