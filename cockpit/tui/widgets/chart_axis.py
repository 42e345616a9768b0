"""Axes for the terminal plots: round ticks, and a y axis whose ticks sit exactly on rows.

plotext puts a value on the row `floor(0.5 + (rows - 1) * (value - low) / (high - low))`:
the bottom row's centre is `low`, the top row's `high`. An axis is even when `low` and the
value one row spans are chosen so that every round tick is a whole number of rows from the
bottom, the same number of rows apart: then each label sits beside the row of its value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

EPS = 1e-9
COARSER_STEPS = 8  # round steps tried once one fits (x2 ... x100 coarser)


def nice_step(span: float, count: int) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) cutting `span` into at most
    `count` intervals."""
    raw = span / max(1, count)
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        if multiple * power >= raw * (1 - EPS):
            return multiple * power
    return 10 * power


def finer_step(step: float) -> float:
    """The next round step under `step` (5 -> 2.5 -> 2 -> 1 -> 0.5 ...)."""
    power = 10 ** math.floor(math.log10(step) + EPS)
    return next(m * power for m in (5, 2.5, 2, 1, 0.5) if m * power < step * (1 - EPS))


def coarser_step(step: float) -> float:
    """The next round step over `step` (1 -> 2 -> 2.5 -> 5 -> 10 ...)."""
    power = 10 ** math.floor(math.log10(step) + EPS)
    return next(m * power for m in (2, 2.5, 5, 10, 20) if m * power > step * (1 + EPS))


def decimals_of(step: float) -> int:
    """The decimals a label needs to tell ticks `step` apart."""
    return next(d for d in range(12) if abs(step * 10 ** d - round(step * 10 ** d)) < 1e-6)


def nice_ticks(low: float, high: float, count: int) -> tuple[list[float], list[str]]:
    """Round tick values within [low, high], about `count` intervals apart (at least two
    ticks), and their labels, all with the same number of decimals."""
    if high <= low:
        pad = abs(low) * 0.01 or 0.01
        low, high = low - pad, high + pad
    step = nice_step(high - low, max(1, count))
    while True:
        first, last = math.ceil(low / step - EPS), math.floor(high / step + EPS)
        if last > first or step < (high - low) * 1e-6:
            break
        step = finer_step(step)
    ticks = [round(i * step, 12) for i in range(first, last + 1)]
    decimals = decimals_of(step)
    return ticks, [f"{t:.{decimals}f}" for t in ticks]


def integer_ticks(first: int, last: int, count: int) -> list[int]:
    """Whole numbers on a round step (1, 2, 5, 10, 20 ...) within [first, last], at most
    about `count` of them."""
    raw = max(1, last - first) / max(1, count)
    step = next(m * 10 ** k for k in range(12) for m in (1, 2, 5) if m * 10 ** k >= raw)
    start = math.ceil(first / step) * step
    return list(range(start, last + 1, step)) or [first]


@dataclass(frozen=True)
class YAxis:
    """A y axis of `rows` rows: row i (0 at the bottom) is the value `low + i * row`.
    The data fills the lowest `data_rows`; the rows above them are for markers."""

    low: float
    row: float  # the value one row spans
    rows: int
    data_rows: int
    ticks: tuple[float, ...]
    labels: tuple[str, ...]

    @property
    def high(self) -> float:
        return self.low + (self.rows - 1) * self.row

    @property
    def data_high(self) -> float:
        """The value of the top row the data may use."""
        return self.low + (self.data_rows - 1) * self.row

    def value_of(self, row: int) -> float:
        return self.low + row * self.row

    def row_of(self, value: float) -> int:
        """The row plotext draws `value` on (as it computes it)."""
        return math.floor(round(0.5 + (self.rows - 1) * (value - self.low)
                                / (self.high - self.low), 8))

    def holds(self, value: float) -> bool:
        """Whether `value` lies within the data's rows."""
        return 0 <= self.row_of(value) < self.data_rows


def even_axis(low: float, high: float, rows: int, marker_rows: int = 0) -> YAxis:
    """The y axis for data in [low, high] on `rows` rows, `marker_rows` of them kept free at
    the top: round ticks a whole, equal number of rows apart (at least two of them), the
    rows as fine as that allows, the data centred."""
    data_rows = max(2, rows - marker_rows)
    rows = max(rows, data_rows)
    if high - low < EPS * max(1.0, abs(high)):
        pad = abs(low) * 0.01 or 0.01
        low, high = low - pad, high + pad
    best: tuple[float, int, float, int] | None = None  # (score, bottom, row, k)
    step = nice_step(high - low, data_rows - 1)  # one step a row: the finest there can be
    tried = 0  # steps tried since the first that fits
    while tried < COARSER_STEPS:  # ends: a step as wide as the data fits two rows
        for k in range(1, data_rows):
            bottom = _bottom(low, high, data_rows, step / k, k)
            if bottom is None:
                continue
            score = step / k * _spacing_cost(k, data_rows)
            if best is None or score < best[0] - EPS * score:
                best = (score, bottom, step / k, k)
        tried += best is not None
        step = coarser_step(step)
    assert best is not None
    _, bottom, row, k = best
    ticks = [round(i * row, 12) for i in range(bottom, bottom + data_rows) if i % k == 0]
    decimals = decimals_of(row * k)
    return YAxis(bottom * row, row, rows, data_rows, tuple(ticks),
                 tuple(f"{t:.{decimals}f}" for t in ticks))


def _spacing_cost(k: int, data_rows: int) -> float:
    """How much a tick every k rows costs against finer rows: labels on every row crowd
    the axis, labels far apart are hard to read across."""
    if data_rows < 5:
        return 1.0
    return {1: 1.5, 2: 1.1}.get(k, max(1.0, k / 5))


def _bottom(low: float, high: float, data_rows: int, row: float, k: int) -> int | None:
    """The index of the bottom row (its value: index x row) that centres [low, high] on
    `data_rows` rows of `row` each, with at least two ticks (every k-th index) among them;
    None when the data does not fit."""
    # a value within half a row of a row's centre is drawn on it
    lowest = math.ceil(high / row - 0.5 + EPS) - (data_rows - 1)  # the top on the top row
    highest = math.floor(low / row + 0.5)  # the data's bottom on the bottom row
    if lowest > highest:
        return None
    bottom = (lowest + highest) // 2
    if sum(1 for i in range(bottom, bottom + data_rows) if i % k == 0) < 2:
        return None
    return bottom
