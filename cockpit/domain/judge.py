"""Honest judging: the noise floor of the metric and the keep policy built on it.

The reference keeps any result that beats the best, so a lucky run reads as a gain. Here
every repeated run of one commit (the baseline's re-runs, keep re-runs, confirm runs) feeds
one pooled estimate of how much a re-run moves the metric: the noise floor. A change is kept
only when it beats the best by more than `noise_multiple` times that noise, widened for how
few runs the floor and the bar rest on, so that the chance of keeping a change that does
nothing stays near 1 - Phi(noise_multiple) (2.3% at the default 2) however young the floor:

    threshold = noise_multiple * factor(dof) * std * sqrt(1 / runs + 1 / best_runs)

- std: the pooled standard deviation of a run (every commit's runs around their own mean).
- factor(dof) = t_p(dof) / z_p with p = Phi(noise_multiple): Student's t quantile over the
  normal one, as a t-interval widens with few degrees of freedom. At the default 2:

      dof      1     2     3     4     5    10    30
      factor 6.98  2.26  1.65  1.43  1.32  1.14  1.04

  so a floor from the 2 runs of a baseline (dof 1) asks for a gain of ~14 std (20 against a
  single-run bar): 2 runs say almost nothing about the noise. 4 baseline runs (dof 3) ask
  for 3.7 std against their mean; every keep re-run and confirm run tightens it further.
- sqrt(1/runs + 1/best_runs): the delta is the mean of the change's runs (one, or two after
  a second look) minus the mean of the best's runs; its noise shrinks as either side rests
  on more runs.

A second look: a near-miss whose gain reaches `second_look` of its bar (default half) is run
once more and judged on the mean of its two runs, whose bar is lower (at 5 runs of the best:
0.76 of the one-run bar). A real gain of 2 std is then kept 52% of the time instead of 33%,
at 0.4 extra runs per such change; a change that does nothing is kept 3.3% of the time
instead of 2.3%, and a one-run bar lowered until it keeps as many of those keeps only 40% of
the real gains (bench/bench_second_look.py measures all three on this policy).

The same edit on other bests: a near-miss whose edit (the same lines out and in, see
domain.diffs.edit_key) was measured on other bests before is judged on every measurement of
it together, each weighted by how many runs it and its bar rest on (the inverse of its
gain's variance), widened by how much its gains disagree beyond the noise (a random-effects
mean: a change may help one model more than another). The same bar applies to the pooled
gain, over the weight it rests on: a change that stays a little ahead through successive
bests (an optimizer 2 noise stds ahead on three models in turn) is kept once the runs
already spent say so together. Nothing is pooled when one of its measurements stopped
early or crashed (behind, with no value), and every measurement counts, behind or ahead;
an edit's first POOLED_MEASUREMENTS measurements pool, later ones stand on their own.

A near-tie goes to the simpler change. Gains are positive when the result is better,
whatever the metric's direction.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from cockpit.domain.metric import Metric

MAX_EXACT_DOF = 1000  # beyond this the t quantile is the normal one to 4 digits
# An edit's first this many measurements may be judged pooled, later ones on their own
# runs: every pooled judgement is one more look at the same change, and looking until the
# pooled gain happens to cross its bar keeps a change that does nothing (optional stopping).
POOLED_MEASUREMENTS = 3


@dataclass
class Noise:
    """Repeated measurements of one commit's metric."""

    values: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    @property
    def mad(self) -> float:
        """Median absolute deviation: robust to one outlier run."""
        median = statistics.median(self.values)
        return statistics.median(abs(v - median) for v in self.values)

    @property
    def spread(self) -> float:
        """One number for "how much a rerun moves": the std, or the MAD scaled to a std."""
        return max(self.std, 1.4826 * self.mad)

    def to_dict(self) -> dict[str, Any]:
        return {"values": self.values, "mean": self.mean, "std": self.std, "mad": self.mad,
                "spread": self.spread}


@dataclass(frozen=True)
class NoiseFloor:
    """The pooled noise of one run's metric, from groups of runs of the same commit."""

    std: float  # pooled: squared deviations from each group's own mean over `dof`
    dof: int  # degrees of freedom: runs minus groups
    runs: int  # how many runs it rests on
    groups: int  # how many commits were run more than once

    @classmethod
    def from_groups(cls, groups: Iterable[Iterable[float]] | Mapping[str, Iterable[float]]
                    ) -> NoiseFloor | None:
        """The floor pooled over groups (lists, or {commit: values}); None when no group has
        two runs. Values that are not finite (a crashed run) are left out."""
        if isinstance(groups, Mapping):
            groups = groups.values()
        squares, dof, runs, counted = 0.0, 0, 0, 0
        for group in groups:
            values = [float(v) for v in group if v is not None and math.isfinite(v)]
            if len(values) < 2:
                continue
            mean = statistics.fmean(values)
            squares += sum((v - mean) ** 2 for v in values)
            dof += len(values) - 1
            runs += len(values)
            counted += 1
        if dof == 0:
            return None
        return cls(math.sqrt(squares / dof), dof, runs, counted)

    def factor(self, multiple: float) -> float:
        """How much wider than `multiple` std a bar must be when the std rests on `dof`."""
        return small_sample_factor(self.dof, multiple)

    def describe(self) -> str:
        """One line for the report and the screens: "noise floor: ±0.0103 from 5 runs of 2
        commits"."""
        commits = "1 commit" if self.groups == 1 else f"{self.groups} commits"
        return f"noise floor: ±{self.std:.4f} from {self.runs} runs of {commits}"


def t_quantile(p: float, dof: int) -> float:
    """Student's t quantile: the t with P(T <= t) = p for `dof` degrees of freedom.

    Exact for whole degrees of freedom, without scipy: the t distribution's CDF has a closed
    form in theta = atan(t / sqrt(dof)) (Abramowitz & Stegun 26.7.3 and 26.7.4), which rises
    monotonically with theta, so bisection on theta finds the quantile to float precision.
    Above MAX_EXACT_DOF it is the normal quantile."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), not {p}")
    if dof < 1:
        raise ValueError(f"dof must be at least 1, not {dof}")
    if p < 0.5:
        return -t_quantile(1.0 - p, dof)
    if dof > MAX_EXACT_DOF:
        return NormalDist().inv_cdf(p)
    target = 2.0 * p - 1.0  # P(|T| <= t)
    low, high = 0.0, math.pi / 2
    for _ in range(80):
        mid = (low + high) / 2
        if _t_central(mid, dof) < target:
            low = mid
        else:
            high = mid
    return math.sqrt(dof) * math.tan((low + high) / 2)


def _t_central(theta: float, dof: int) -> float:
    """P(|T| <= sqrt(dof) tan(theta)) for T with `dof` degrees of freedom (A&S 26.7.3-4)."""
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if dof % 2 == 0:  # sin(theta) * (1 + 1/2 c2 + 1*3/(2*4) c2^2 + ...), dof/2 terms
        term, total = 1.0, 1.0
        for k in range(1, dof // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        return s * total
    if dof == 1:
        return 2.0 * theta / math.pi
    term, total = 1.0, 1.0  # (2/pi)(theta + sin cos (1 + 2/3 c2 + 2*4/(3*5) c2^2 + ...))
    for k in range(1, (dof - 1) // 2):
        term *= c2 * (2 * k) / (2 * k + 1)
        total += term
    return 2.0 / math.pi * (theta + s * math.cos(theta) * total)


def small_sample_factor(dof: int, multiple: float) -> float:
    """t_p(dof) / z_p at p = Phi(multiple): how much a bar of `multiple` std must widen when
    the std is estimated from `dof` degrees of freedom (1 for a well-known std)."""
    if multiple <= 0:
        return 1.0
    return t_quantile(NormalDist().cdf(multiple), dof) / multiple


@dataclass(frozen=True)
class Evidence:
    """One measurement of a change: the mean of its `runs` runs beat the mean of the
    `bar_runs` runs of the best it was made on by `gain`."""

    gain: float
    runs: int = 1
    bar_runs: int = 1

    @property
    def weight(self) -> float:
        """1 / the variance of its gain, in units of one run's variance."""
        return 1.0 / (1.0 / max(1, self.runs) + 1.0 / max(1, self.bar_runs))


def pooled(evidence: Sequence[Evidence], std: float) -> tuple[float, float]:
    """(gain, weight): the mean gain of measurements of one change on different bests, and
    the weight it rests on (1 / its variance, in units of one run's variance `std`**2).

    A random-effects mean (DerSimonian and Laird): the change may help one model more than
    another, so the spread of its gains beyond what the runs' noise explains (tau**2) is
    added to each measurement's variance. Gains that agree pool as if one long measurement;
    gains that disagree widen the pooled one's noise, and so its bar."""
    weights = [e.weight for e in evidence]
    total = sum(weights)
    mean = sum(e.gain * w for e, w in zip(evidence, weights)) / total
    spread = 0.0  # tau**2 / std**2
    if len(evidence) > 1 and std > 0:
        q = sum(w * (e.gain - mean) ** 2 for e, w in zip(evidence, weights)) / std**2
        spread = max(0.0, (q - (len(evidence) - 1))
                     / (total - sum(w * w for w in weights) / total))
    weights = [1.0 / (1.0 / w + spread) for w in weights]
    total = sum(weights)
    return sum(e.gain * w for e, w in zip(evidence, weights)) / total, total


@dataclass
class Verdict:
    status: str  # keep | discard
    gain: float  # improvement over the bar (positive = better, whatever the direction)
    threshold: float  # the gain a keep needed
    confidence: float | None  # gain in units of the noise floor's std (None: no floor)
    why: str

    @property
    def near_miss(self) -> bool:
        """Better than the bar, but within the noise: discarded, yet worth combining."""
        return self.status == "discard" and 0 < self.gain <= self.threshold


class KeepPolicy:
    def __init__(self, direction: str = "lower", min_delta: float | str = "auto",
                 noise_multiple: float = 2.0):
        self.direction = direction
        self.min_delta = min_delta
        self.noise_multiple = noise_multiple

    def gain(self, value: float, best: float) -> float:
        return Metric(direction=self.direction).gain(value, best)

    def threshold(self, floor: NoiseFloor | Noise | None, best_runs: int = 1,
                  runs: int = 1) -> float:
        """The gain a keep needs for the mean of `runs` runs over a bar that is the mean of
        `best_runs` runs."""
        return self.bar_for(floor, Evidence(0.0, runs, best_runs).weight)

    def bar_for(self, floor: NoiseFloor | Noise | None, weight: float) -> float:
        """The gain a keep needs for a gain that rests on `weight` (see Evidence.weight)."""
        if self.min_delta != "auto":
            return float(self.min_delta)
        floor = _as_floor(floor)
        if floor is None:
            return 0.0
        return (self.noise_multiple * floor.factor(self.noise_multiple) * floor.std
                / math.sqrt(weight))

    def decide(self, value: float, best: float, floor: NoiseFloor | Noise | None,
               lines_delta: int = 0, best_runs: int = 1, runs: int = 1) -> Verdict:
        """Keep or discard `value` (the mean of the change's `runs` runs) against `best`,
        the mean of the best's `best_runs` runs.

        lines_delta is how many lines the change adds to the editable file (negative when
        it removes code): within the threshold, a change that makes the file shorter wins.
        """
        floor = _as_floor(floor)
        gain = self.gain(value, best)
        threshold = self.threshold(floor, best_runs, runs)
        std = floor.std if floor is not None else 0.0
        confidence = gain / std if std > 0 else None
        bar = "the best's single run" if best_runs <= 1 else f"the best's mean of {best_runs} runs"
        mean = f"the mean of its {runs} runs " if runs > 1 else ""
        if gain > threshold:
            return Verdict("keep", gain, threshold, confidence,
                           f"{mean}beats {bar} by {gain:.6f} > {threshold:.6f}"
                           f"{self._noise_words(floor, confidence, threshold)}")
        if abs(gain) <= threshold and lines_delta < 0:
            return Verdict("keep", gain, threshold, confidence,
                           f"a tie with {bar} within {threshold:.6f}, and simpler "
                           f"({-lines_delta} lines fewer)"
                           f"{self._noise_words(floor, confidence, threshold)}")
        if gain > 0:
            return Verdict("discard", gain, threshold, confidence,
                           f"near-miss: {mean}better than {bar} by {gain:.6f}, within the noise "
                           f"(a keep needs {threshold:.6f})"
                           f"{self._noise_words(floor, confidence, threshold)}")
        words = f"worse than {bar} by {-gain:.6f}" if gain < 0 else f"no better than {bar}"
        words = mean + words
        return Verdict("discard", gain, threshold, confidence,
                       f"{words}{self._noise_words(floor, confidence, threshold)}")

    def pool(self, now: Evidence, earlier: Sequence[tuple[str, Evidence]],
             floor: NoiseFloor | Noise | None) -> Verdict | None:
        """A near-miss's edit judged on every measurement of it: on this best (`now`: its
        runs, with any earlier ones of the same edit here) and on other bests (`earlier`:
        (which experiments, "#8 #12"; evidence)). A keep when their pooled gain clears the
        bar their weight sets, else None (the near-miss stands). Never with a fixed
        min_delta (the human's bar), without a floor, or when it is not ahead here."""
        floor = _as_floor(floor)
        if self.min_delta != "auto" or floor is None or floor.std <= 0 or now.gain <= 0:
            return None
        every = [now, *(e for _, e in earlier)]
        gain, weight = pooled(every, floor.std)
        bar = self.bar_for(floor, weight)
        if gain <= bar:
            return None
        confidence = gain / floor.std
        here = f"{now.gain:+.6f} over {now.runs} run{'s' * (now.runs != 1)} here"
        if earlier:
            others = ", ".join(f"{names} {e.gain:+.6f}" for names, e in earlier)
            bests = "another best" if len(earlier) == 1 else f"{len(earlier)} other bests"
            here += f", and the same edit on {bests} ({others})"
        return Verdict("keep", gain, bar, confidence, (
            f"a near-miss pooled with its edit's other runs: {here}; together {gain:+.6f} "
            f"over {sum(e.runs for e in every)} runs beats {bar:.6f}"
            f"{self._noise_words(floor, confidence, bar)}"))

    def second_look_due(self, verdict: Verdict, share: float) -> bool:
        """Whether a one-run near-miss came close enough to its bar (`share` of it) to be
        worth a second run: the mean of two runs meets a lower bar."""
        return share > 0 and verdict.near_miss and verdict.gain >= share * verdict.threshold

    def needs_confirm(self, gain: float, threshold_then: float,
                      floor_now: NoiseFloor | Noise | None, best_runs: int = 1,
                      runs: int = 1, weight: float | None = None) -> bool:
        """Whether a keep should be re-checked with `cockpit confirm`: it was judged under an
        older, smaller estimate of the noise (its bar was `threshold_then`), and its `gain`
        does not clear the bar the floor measured since (`floor_now`) sets. A keep whose gain
        clears the current bar too stands as it is. A pooled keep passes its pooled gain
        and `weight`."""
        now = (self.bar_for(floor_now, weight) if weight is not None
               else self.threshold(floor_now, best_runs, runs))
        return now > threshold_then and gain <= now

    def _noise_words(self, floor: NoiseFloor | None, confidence: float | None,
                     threshold: float) -> str:
        if self.min_delta != "auto":
            return f" (min_delta {threshold:g} from the config)"
        if floor is None:
            return "; no noise floor: any gain keeps"
        if confidence is None:
            return f"; {floor.describe()}: re-runs agreed exactly"
        return f" ({confidence:+.1f}x the noise; {floor.describe()})"


def _as_floor(noise: NoiseFloor | Noise | None) -> NoiseFloor | None:
    """A single commit's runs (`Noise`, what a journal's `noise` event holds) as a floor."""
    if isinstance(noise, Noise):
        return NoiseFloor.from_groups([noise.values])
    return noise


def gain_of(delta_best: float | None, direction: str) -> float | None:
    """An experiment's recorded delta vs its bar as a gain (positive = better)."""
    return Metric(direction=direction).gain_of(delta_best)


def welch_t(a: list[float], b: list[float]) -> float | None:
    """Welch's t statistic of mean(a) - mean(b); None when either side has < 2 runs."""
    if len(a) < 2 or len(b) < 2:
        return None
    var = statistics.variance(a) / len(a) + statistics.variance(b) / len(b)
    if var == 0:
        return math.inf if statistics.fmean(a) != statistics.fmean(b) else 0.0
    return (statistics.fmean(a) - statistics.fmean(b)) / math.sqrt(var)
