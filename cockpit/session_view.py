"""What the screen knows of a session, folded from journal events (live, attached or
replayed alike) and from the loop's transient events (proposing, judging, paused).

No widget code here: the App turns this into widget rows, points and a status line.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from cockpit.journal import Experiment, SessionState
from cockpit.widgets.metric_chart import Point
from cockpit.widgets.status_bar import Status
from cockpit.widgets.timeline import Row

PROGRESS = re.compile(r"\((\d+(?:\.\d+)?)%\).*?loss:\s*([-+0-9.eE]+|nan|inf)")
MAX_LOSSES = 200


def parse_progress(line: str) -> tuple[float | None, float | None]:
    """(percent, loss) from a reference-style progress line, else (None, None)."""
    match = PROGRESS.search(line)
    if not match:
        return None, None
    try:
        return float(match.group(1)), float(match.group(2))
    except ValueError:
        return float(match.group(1)), None


@dataclass
class SessionView:
    state: SessionState = field(default_factory=SessionState)
    budget: float = 0.0
    agent: str = ""
    model: str = ""
    cost: float = 0.0
    phase: str = "starting"  # proposing | awaiting approval | training | judging | ...
    run_started: float | None = None  # wall-clock time of the current run's start
    paused: bool = False
    percent: float | None = None
    losses: list[float] = field(default_factory=list)
    noise: float | None = None  # the session's measured noise spread
    version: int = 0  # bumped whenever the experiment list changed
    workers: int = 1  # parallel workers of the session (its `workers` event)

    def apply(self, event: dict) -> None:
        """Fold one journal event (the journal is the source of truth)."""
        self.state.apply(event)
        kind = event.get("event")
        if kind == "session":
            config = event.get("config") or {}
            self.budget = float((config.get("experiment") or {}).get("time_budget", self.budget))
            self.agent = event.get("agent", self.agent)
            self.model = (config.get("agent") or {}).get("model", "") or self.model
            self.phase = "starting"
        elif kind == "attempt":  # each model answer carries its cost
            self.cost += float(event.get("cost_usd") or 0.0)
        elif kind == "proposal":
            self.phase = "proposed"
        elif kind == "noise":
            self.noise = float(event.get("spread") or 0.0)
        elif kind == "measure":
            self.phase = "between runs"
            self.run_started = None
        elif kind == "run_start":
            self.phase = "training"
            self.run_started = event.get("time", time.time())
            self.percent, self.losses = None, []
        elif kind == "workers":
            self.workers = max(1, int(event.get("workers") or 1))
        elif kind == "result":
            self.phase = "between runs"
            self.run_started = None
            self.percent = None
        if kind in ("proposal", "commit", "run_start", "result"):
            self.version += 1

    def on_loop_event(self, kind: str) -> None:
        """A transient state from the loop thread (not in the journal)."""
        if kind in ("proposing", "judging", "preparing"):
            self.phase = {"preparing": "preparing data"}.get(kind, kind)
        elif kind == "measuring":  # a commit re-run for the noise floor or a keep's mean
            self.phase = "re-running"
            self.run_started = time.time()
            self.percent, self.losses = None, []
        elif kind == "awaiting_approval":
            self.phase = "awaiting approval"
        elif kind == "paused":
            self.paused = True
        elif kind == "resumed":
            self.paused = False

    def on_progress_line(self, line: str) -> None:
        percent, loss = parse_progress(line)
        if percent is not None:
            self.percent = percent
        if loss is not None:
            self.losses.append(loss)
            del self.losses[:-MAX_LOSSES]

    # -- derived -------------------------------------------------------------------
    def rows(self) -> list[Row]:
        live = "awaiting" if self.phase == "awaiting approval" else "running"
        return [experiment_row(e, live) for e in self.state.experiments]

    def points(self) -> list[Point]:
        return [Point(e.n, e.metric, e.status, e.worker) for e in self.state.ran]

    def running_on(self, worker: int) -> Experiment | None:
        """The experiment a worker runs now, else the last one it ran."""
        mine = [e for e in self.state.experiments if e.worker == worker and e.log]
        live = [e for e in mine if not e.finished]
        return (live or mine or [None])[-1]

    def status(self, flags: str = "", finished: str = "", now: float | None = None) -> Status:
        state = self.state
        best, baseline = state.best, state.baseline
        in_flight = state.in_flight
        phase = finished or self.phase
        if self.paused and not in_flight and not finished:
            phase = "paused"
        elapsed = None
        running = in_flight is not None or self.phase == "re-running"
        if self.run_started is not None and running and not finished:
            elapsed = (now or time.time()) - self.run_started
        agent = self.agent + (f" · {self.model}" if self.model else "")
        return Status(
            state=phase, percent=self.percent,
            n=in_flight.n if in_flight else (state.experiments[-1].n if state.experiments else None),
            elapsed=elapsed, budget=self.budget,
            best=best.metric if best else None,
            best_vs_baseline=(best.metric - baseline.metric) if best and baseline else None,
            lower_is_better=state.direction == "lower",
            noise=self.noise, confidence=best.confidence if best else None,
            metric=state.metric, agent=agent, cost=self.cost, flags=flags,
        )


def experiment_row(e: Experiment, live: str = "running") -> Row:
    return Row(n=e.n, commit=e.commit or "", metric=e.metric, delta=e.delta_best,
               status=e.status, memory_gb=e.memory_gb or 0.0, description=e.description,
               worker=e.worker,
               live_status="running" if e.commit else ("awaiting" if live == "awaiting" else "proposed"))


def describe(e: Experiment, metric: str) -> str:
    """The line under an experiment's title in the diff view."""
    if e.status is None:
        return "running" if e.commit else "proposed"
    if e.status in ("crash", "rejected"):
        return f"{e.status}: {e.reason}"
    delta = "" if e.delta_best is None else f" ({e.delta_best:+.6f} vs best)"
    return f"{e.status}: {metric} {e.metric:.6f}{delta}"
