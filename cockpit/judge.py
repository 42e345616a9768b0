"""Honest judging: the noise floor of the metric and the keep policy built on it.

The reference keeps any result that beats the best, so a lucky seed reads as a gain.
Here the unmodified baseline runs more than once, the spread of those runs is the noise
floor, and a change is kept only when it beats the best by more than `min_delta` (by
default a multiple of that noise). A near-tie goes to the simpler change.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


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

    def to_dict(self) -> dict:
        return {"values": self.values, "mean": self.mean, "std": self.std, "mad": self.mad,
                "spread": self.spread}


@dataclass
class Verdict:
    status: str  # keep | discard
    gain: float  # improvement over the best (positive = better, whatever the direction)
    threshold: float  # the gain a keep needed
    confidence: float | None  # gain in units of the noise spread (None: noise unknown)
    why: str


class KeepPolicy:
    def __init__(self, direction: str = "lower", min_delta: float | str = "auto",
                 noise_multiple: float = 2.0):
        self.direction = direction
        self.min_delta = min_delta
        self.noise_multiple = noise_multiple

    def gain(self, value: float, best: float) -> float:
        return best - value if self.direction == "lower" else value - best

    def threshold(self, noise: Noise | None) -> float:
        if self.min_delta != "auto":
            return float(self.min_delta)
        return self.noise_multiple * noise.spread if noise is not None else 0.0

    def decide(self, value: float, best: float, noise: Noise | None,
               lines_delta: int = 0) -> Verdict:
        """Keep or discard `value` against the best so far.

        lines_delta is how many lines the change adds to the editable file (negative when
        it removes code): within the threshold, a change that makes the file shorter wins.
        """
        gain = self.gain(value, best)
        threshold = self.threshold(noise)
        spread = noise.spread if noise is not None else 0.0
        confidence = gain / spread if spread > 0 else None
        conf = f" ({confidence:+.1f}x noise)" if confidence is not None else ""
        if gain > threshold:
            return Verdict("keep", gain, threshold, confidence,
                           f"beats the best by {gain:.6f} > {threshold:.6f}{conf}")
        if abs(gain) <= threshold and lines_delta < 0:
            return Verdict("keep", gain, threshold, confidence,
                           f"a tie within {threshold:.6f}{conf}, and simpler "
                           f"({-lines_delta} lines fewer)")
        if gain > 0:
            return Verdict("discard", gain, threshold, confidence,
                           f"better by {gain:.6f}, within the noise threshold {threshold:.6f}{conf}")
        return Verdict("discard", gain, threshold, confidence,
                       f"worse than the best by {-gain:.6f}{conf}")


def welch_t(a: list[float], b: list[float]) -> float | None:
    """Welch's t statistic of mean(a) - mean(b); None when either side has < 2 runs."""
    if len(a) < 2 or len(b) < 2:
        return None
    var = statistics.variance(a) / len(a) + statistics.variance(b) / len(b)
    if var == 0:
        return math.inf if statistics.fmean(a) != statistics.fmean(b) else 0.0
    return (statistics.fmean(a) - statistics.fmean(b)) / math.sqrt(var)
