"""The status line: state, experiment, budget progress, best metric, agent and cost."""
from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

STATE_STYLE = {"training": "bold green", "re-running": "bold green",
               "awaiting approval": "bold reverse yellow",
               "paused": "bold yellow", "proposing": "bold cyan", "judging": "bold cyan",
               "finished": "bold", "watching": "bold magenta"}


@dataclass(frozen=True)
class Status:
    state: str = "starting"
    percent: float | None = None  # the run's own progress, from its \r lines
    n: int | None = None
    elapsed: float | None = None  # seconds into the current run
    budget: float = 0.0
    best: float | None = None
    best_vs_baseline: float | None = None
    lower_is_better: bool = True
    noise: float | None = None  # the metric's measured noise spread (std of re-runs)
    confidence: float | None = None  # the best's last gain, in units of that noise
    metric: str = "val_bpb"
    agent: str = ""
    cost: float = 0.0
    flags: str = ""  # auto-approve, pause pending, read-only ...


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class StatusBar(Static):
    """One line, rendered from a Status: the App sets `status`, the bar draws it."""

    def __init__(self, **kwargs) -> None:
        super().__init__("", markup=False, **kwargs)
        self.status = Status()

    def show(self, status: Status) -> None:
        if status != self.status:
            self.status = status
            self.refresh()

    def on_resize(self) -> None:
        self.refresh()

    def render(self) -> Text:
        s = self.status
        state = s.state
        if state in ("training", "re-running") and s.percent is not None:
            state = f"{state} {s.percent:.0f}%"
        parts = Text()
        parts.append(f" {state} ", style=STATE_STYLE.get(s.state, "bold"))
        if s.n is not None:
            parts.append(f" #{s.n}")
        width = self.size.width or 120
        if s.elapsed is not None and s.budget:
            bar = max(6, min(24, width // 8))
            filled = int(bar * min(1.0, s.elapsed / s.budget))
            parts.append("  ")
            parts.append("━" * filled, style="green")
            parts.append("━" * (bar - filled), style="dim")
            parts.append(f" {_clock(s.elapsed)}/{_clock(s.budget)}")
        if s.best is not None:
            parts.append(f"  best {s.best:.6f}")
            if s.best_vs_baseline is not None:
                gained = (s.best_vs_baseline < 0) == s.lower_is_better and s.best_vs_baseline != 0
                parts.append(f" ({s.best_vs_baseline:+.6f})", style="green" if gained else "")
            if s.confidence is not None:
                parts.append(f" {s.confidence:.1f}x", style="dim")
        if s.noise is not None and width >= 90:
            parts.append(f"  noise ±{s.noise:.4f}", style="dim")
        if width >= 100 and s.agent:
            parts.append(f"  {s.agent}", style="dim")
        if width >= 100 or s.cost:
            parts.append(f"  ${s.cost:.2f}", style="dim")
        if s.flags:
            parts.append(f"  {s.flags}", style="italic")
        parts.truncate(width, overflow="ellipsis")
        return parts
