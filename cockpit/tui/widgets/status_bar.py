"""The status line: state, experiment, budget progress, best metric, the noise floor, the
session's pace, agent and cost.

It is built from parts ranked by importance; a narrow terminal drops the least important
ones first (the progress bar, the confidence, the agent, the pace, the cost ...) and
keeps the state, the experiment, the flags (why a session ended among them), the best and
its gain over the baseline.
"""
from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

STATE_STYLE = {"training": "bold green", "re-running": "bold green",
               "awaiting approval": "bold reverse yellow",
               "paused": "bold yellow", "proposing": "bold cyan", "judging": "bold cyan",
               "finished": "bold", "not running": "bold reverse red", "stopping": "bold yellow"}
GAP = "  "


@dataclass(frozen=True)
class Status:
    state: str = "starting"
    percent: float | None = None  # the run's own progress, from its \r lines
    n: int | None = None
    doing: str = ""  # a re-run in flight, named by what it repeats: "#1 noise re-run"
    elapsed: float | None = None  # seconds into the current run
    budget: float = 0.0
    best: float | None = None  # the best commit's score: the mean of its runs
    best_runs: int = 0  # how many runs that mean rests on
    best_vs_baseline: float | None = None
    bar: float | None = None  # the value the next result must beat to be kept
    bar_young: bool = False  # the noise floor is so young that the bar is out of reach
    gained: bool = False  # the best beats the baseline (drawn green)
    noise: float | None = None  # the metric's measured noise spread (std of re-runs)
    noise_runs: int = 0  # how many runs that spread rests on
    confidence: float | None = None  # the best's last gain, in units of that noise
    metric: str = "val_bpb"
    agent: str = ""
    cost: float = 0.0
    flags: str = ""  # auto-approve, pause pending, read-only, why the session ended ...
    lower: bool = True  # the metric is better lower
    # the session's pace (cockpit.stats.Pace has these very names)
    per_hour: float | None = None  # finished runs per hour
    keep_rate: float | None = None  # keeps / judged runs
    since_keep: float | None = None  # seconds since the last keep
    eta: float | None = None  # seconds until the current run's training ends
    session_eta: float | None = None  # seconds until the asked-for experiments are done


def clock(seconds: float) -> str:
    """m:ss under an hour, else 1h05m."""
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}:{seconds % 60:02d}"


def noise_label(spread: float | None, runs: int = 0) -> str:
    """`noise ±0.0103 (5 runs)`, or `no noise floor`."""
    if spread is None or spread <= 0:
        return "no noise floor"
    return f"noise ±{spread:.4f}" + (f" ({runs} runs)" if runs else "")


Part = tuple[int, Text, Text | None]  # rank (0 matters most), text, a shorter form


def status_parts(s: Status, width: int) -> list[Part]:
    """Every part of the line, in display order."""
    parts: list[Part] = []

    def add(rank: int, text: str | Text, style: str = "", short: str | None = None) -> None:
        text = text if isinstance(text, Text) else Text(text, style=style)
        parts.append((rank, text, None if short is None else Text(short, style=style)))

    state = s.state
    if state in ("training", "re-running") and s.percent is not None:
        state = f"{state} {s.percent:.0f}%"
    add(0, f" {state} ", STATE_STYLE.get(s.state, "bold"))
    if s.doing:
        add(1, s.doing)
    elif s.n is not None:
        add(1, f"#{s.n}")
    if s.elapsed is not None and s.budget:
        bar = max(6, min(16, width // 10))
        filled = int(bar * min(1.0, s.elapsed / s.budget))
        text = Text()
        text.append("━" * filled, style="green")
        text.append("━" * (bar - filled), style="dim")
        add(11, text)
        add(4, f"{clock(s.elapsed)}/{clock(s.budget)}")
    if s.eta is not None:
        add(6, f"eta {clock(s.eta)}", "dim")
    if s.best is not None:
        runs = f" ({s.best_runs} runs)" if s.best_runs > 1 else ""
        add(2, f"best {s.best:.6f}{runs}", short=f"best {s.best:.6f}")
        if s.best_vs_baseline is not None:
            add(3, f"{s.best_vs_baseline:+.6f} vs baseline",
                "green" if s.gained else "", short=f"({s.best_vs_baseline:+.6f})")
        if s.confidence is not None:
            add(10, f"{s.confidence:.1f}x the noise", "dim")
    if s.bar_young and s.bar is not None:
        add(4, f"bar {s.bar:.4f}: more baseline runs needed", "bold yellow",
            short="bar out of reach")
    elif s.bar is not None:
        add(6, f"to keep: < {s.bar:.6f}" if s.lower else f"to keep: > {s.bar:.6f}", "dim")
    noise = noise_label(s.noise, s.noise_runs)
    add(5, noise, "dim", short=noise.split(" (")[0])
    if s.session_eta is not None:
        add(7, f"done in {clock(s.session_eta)}", "dim")
    if s.per_hour is not None:
        add(8, f"{s.per_hour:.1f} exp/h", "dim")
    if s.keep_rate is not None:
        add(8, f"keep {s.keep_rate:.0%}", "dim")
    if s.since_keep is not None:
        add(9, f"kept {clock(s.since_keep)} ago", "dim")
    if s.agent:
        add(9, s.agent, "dim")
    add(7 if s.cost else 12, f"${s.cost:.2f}", "dim")
    if s.flags:
        add(1, s.flags, "italic")
    return parts


def fit_parts(parts: list[Part], width: int) -> Text:
    """The most important parts that fit in `width` cells (each in its full form, else
    its short one), in display order."""
    chosen: dict[int, Text] = {}
    used = 0
    for index in sorted(range(len(parts)), key=lambda i: parts[i][0]):
        _, text, short = parts[index]
        for form in (text, short):
            if form is None:
                continue
            cost = form.cell_len + (len(GAP) if chosen else 0)
            if used + cost <= width:
                chosen[index] = form
                used += cost
                break
    line = Text(no_wrap=True, overflow="ellipsis")
    for index in range(len(parts)):
        if index in chosen:
            if line:
                line.append(GAP)
            line.append_text(chosen[index])
    if not chosen and parts:  # not even the state fits: show what does
        line.append_text(parts[0][1])
        line.truncate(width, overflow="ellipsis")
    return line


class StatusBar(Static):
    """One line, rendered from a Status: the App calls `show(status)`, the bar draws it."""

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
        width = self.size.width or 120
        return fit_parts(status_parts(self.status, width), width)
