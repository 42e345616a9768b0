"""The metric a session judges by: its name, which direction is better, and which values
are results at all. The one place that knows what "lower is better" means; everything
else asks a Metric.

Gains are positive when a result is better, whatever the direction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

DIRECTIONS = ("lower", "higher")
IMPLAUSIBLE = 1e9  # no metric of any kind is this large: a value beyond it is a broken run
BPB_RANGE = (0.0, 64.0)  # bits per byte: a byte holds 8 bits; 64 allows any tokenizer's mess


@dataclass(frozen=True)
class Metric:
    name: str = "val_bpb"
    direction: str = "lower"
    low: float | None = None  # the plausible range; None: chosen by the metric's kind
    high: float | None = None

    @property
    def lower_is_better(self) -> bool:
        return self.direction == "lower"

    def better(self, a: float, b: float) -> bool:
        """Whether value a beats value b."""
        return a < b if self.lower_is_better else a > b

    def gain(self, value: float, reference: float) -> float:
        """How much better `value` is than `reference` (negative: worse)."""
        return reference - value if self.lower_is_better else value - reference

    def gain_of(self, delta: float | None) -> float | None:
        """The gain a delta (a value minus its reference) stands for."""
        if delta is None:
            return None
        return -delta if self.lower_is_better else delta

    def best(self, values: list[float]) -> float:
        return min(values) if self.lower_is_better else max(values)

    def plausible_range(self) -> tuple[float, float]:
        """The values that can be a result: bits per byte lie in [0, 64]; any metric is
        finite and below 1e9 in size."""
        bpb = "bpb" in self.name.lower() or "bits_per_byte" in self.name.lower()
        low = self.low if self.low is not None else (BPB_RANGE[0] if bpb else -IMPLAUSIBLE)
        high = self.high if self.high is not None else (BPB_RANGE[1] if bpb else IMPLAUSIBLE)
        return float(low), float(high)

    def implausible(self, value: float | None) -> str:
        """Why a value cannot be a result ("" when it can)."""
        if value is None:
            return ""
        low, high = self.plausible_range()
        if not math.isfinite(value) or not low <= value <= high:
            return (f"{self.name} = {value:.6g} is not plausible (outside [{low:g}, {high:g}]; "
                    "[metric] min/max set the range)")
        return ""

    def describe(self) -> str:
        return f"{self.direction} {self.name} is better"
