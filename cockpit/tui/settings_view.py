"""What each setting did, across the session's experiments: for every top-level setting a
change touched, the values tried, each with its experiment, its verdict and its gain. No
widget code: the settings screen draws these rows."""
from __future__ import annotations

from dataclasses import dataclass

from cockpit.domain.diffs import settings_changed
from cockpit.domain.judge import gain_of
from cockpit.domain.state import Experiment


@dataclass(frozen=True)
class Try:
    n: int
    old: str
    new: str
    status: str  # keep | discard | crash | rejected | "" (not finished)
    gain: float | None  # against the best before it (> 0: better)
    metric: float | None
    stopped: bool  # stopped early


@dataclass(frozen=True)
class Setting:
    name: str
    tries: tuple[Try, ...]

    @property
    def kept(self) -> int:
        return sum(t.status == "keep" for t in self.tries)

    @property
    def best_gain(self) -> float | None:
        gains = [t.gain for t in self.tries if t.gain is not None]
        return max(gains) if gains else None


def settings_tried(experiments: list[Experiment], direction: str) -> list[Setting]:
    """Every setting changed by an experiment, the most kept (then the largest gain) first."""
    tries: dict[str, list[Try]] = {}
    for e in experiments:
        for name, (old, new) in settings_changed(e.diff).items():
            tries.setdefault(name, []).append(Try(
                e.n, old, new, e.status or "", gain_of(e.delta_best, direction), e.metric,
                e.early_stop is not None))
    settings = [Setting(name, tuple(found)) for name, found in tries.items()]
    return sorted(settings, key=lambda s: (-s.kept, -(s.best_gain or float("-inf")), s.name))
