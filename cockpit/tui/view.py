"""What the screen knows of a session: folded from journal events (live or replayed) and
from the session's live state (what runs where, what waits for the human, pauses).

No widget code here: the App turns this into widget rows, points and a status line.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from cockpit.domain.earlystop import Curve, describe_stop
from cockpit.domain.judge import gain_of
from cockpit.domain.measured import REPORTED_BY_TRAIN, measured_label
from cockpit.domain.progress import parse_progress
from cockpit.domain.state import Experiment, SessionState
from cockpit.domain.stats import Pace, RunProgress, pace
from cockpit.tui.widgets.diff_view import VerdictLine
from cockpit.tui.widgets.metric_chart import Point
from cockpit.tui.widgets.status_bar import Status
from cockpit.tui.widgets.timeline import Row

LOSS_GRID = 2.0  # percent of progress between two points of the loss sparkline


@dataclass
class SessionView:
    """The session's state (the one fold of the journal, as the session has it) and what
    only a screen needs: the live state, the shown run's progress and loss, each worker's
    latest run."""

    state: SessionState = field(default_factory=SessionState)
    live: dict = field(default_factory=dict)  # the session's live state (empty: replay)
    live_at: float = 0.0  # when it arrived (elapsed times count from there)
    percent: float | None = None  # the shown run's progress
    remaining: float | None = None  # the seconds it says are left, when it says
    curve: Curve = field(default_factory=Curve)  # the shown run's loss over its progress
    version: int = 0  # bumped whenever the experiment list changed
    # worker -> its latest run: {"key": (worker, kind, n), "log", "time", "done", "title"}
    runs: dict = field(default_factory=dict)

    def apply(self, event: dict) -> None:
        """Fold one journal event (the journal is the source of truth)."""
        self.state.apply(event)
        kind = event.get("event")
        if kind in ("run_start", "measure_start"):
            worker = event.get("worker", 0)
            experiment = kind == "run_start"
            n = event["n"] if experiment else event["k"]
            title = f"#{n}" if experiment else f"{event.get('purpose', '')} re-run"
            self.runs[worker] = {"key": (worker, "experiment" if experiment else "measure", n),
                                 "log": event.get("log", ""), "time": event.get("time", 0.0),
                                 "done": False, "title": title}
        elif kind in ("result", "measure"):
            done = ("experiment", event.get("n")) if kind == "result" else \
                ("measure", event.get("k"))
            for run in self.runs.values():
                if run["key"][1:] == done:
                    run["done"] = True
        if kind in ("proposal", "commit", "run_start", "result", "edited"):
            self.version += 1

    # -- what the journal says, as the screen asks it -------------------------------------
    @property
    def ended(self) -> str:
        return self.state.ended

    @property
    def workers(self) -> int:
        return self.state.workers

    @property
    def config(self) -> dict:
        return self.state.config

    @property
    def budget(self) -> float:
        return float((self.config.get("experiment") or {}).get("time_budget", 0.0))

    @property
    def agent(self) -> str:
        model = (self.config.get("agent") or {}).get("model", "")
        return self.state.agent + (f" · {model}" if model else "")

    def apply_live(self, live: dict) -> None:
        self.live = live
        self.live_at = time.time()
        self.version += 1  # what waits and what runs shows in the timeline

    def on_progress_line(self, line: str) -> None:
        progress = parse_progress(line)
        if progress is None:
            return
        self.percent = progress.percent
        self.remaining = progress.remaining
        if progress.loss is not None and progress.percent is not None:
            self.curve.add(progress.percent, progress.loss)

    def new_run_shown(self, text: str = "") -> None:
        """A run comes on screen: its curve so far from `text` (its log), else empty."""
        self.curve = Curve.from_log(text) if text else Curve()
        self.percent = self.curve.end if self.curve.points else None
        self.remaining = None

    def losses(self, best: Curve | None = None) -> tuple[list[float], list[float] | None]:
        """The shown run's loss and the best run's, on one grid of progress (the best's
        runs to the end, so a run stopped early shows against the whole)."""
        grid = [LOSS_GRID * k for k in range(1, int(100 / LOSS_GRID) + 1)]
        end = self.curve.end if self.curve.points else 0.0
        current = [v for v in (self.curve.loss_at(p) for p in grid if p <= end) if v is not None]
        reference = None
        if best is not None and best.points:
            reference = [v for v in (best.loss_at(p) for p in grid) if v is not None]
        return current, reference

    # -- derived -------------------------------------------------------------------
    @property
    def awaiting(self) -> list[int]:
        return list(self.live.get("awaiting") or [])

    @property
    def paused(self) -> bool:
        return bool(self.live.get("paused"))

    @property
    def running(self) -> list[dict]:
        return list(self.live.get("running") or [])

    def run_of(self, worker: int) -> dict | None:
        return next((r for r in self.running if r["worker"] == worker), None)

    @property
    def phase(self) -> str:
        if self.ended:
            return "finished"
        live = self.live
        if not live:
            return "starting"
        if live.get("stopping"):
            return "stopping"
        runs = self.running
        if runs:
            return "training" if any(r["kind"] == "experiment" for r in runs) else "re-running"
        if live.get("paused"):
            return "paused"
        if live.get("awaiting"):
            return "awaiting approval"
        if live.get("proposing"):
            return "proposing"
        return "between runs"

    def bar(self) -> tuple[float | None, float | None]:
        """The bar the next result must beat (the best's mean) and the gain a keep needs."""
        return self.state.bar()

    def verdict(self, e: Experiment) -> VerdictLine | None:
        """How a finished experiment was judged, for the change pane."""
        if e.status is None or e.status == "rejected":
            return None
        gain = gain_of(e.delta_best, self.state.direction)
        against = (f"the best's mean of {e.bar_runs} runs" if e.bar_runs > 1 else
                   "the best's single run" if e.bar_runs == 1 else "")
        return VerdictLine(e.status, gain, e.threshold, e.confidence, against, e.runs)

    def pace(self, now: float | None = None) -> Pace:
        if self.ended or not self.live:  # over (or not attached): its pace when it stopped
            now = self.state.last_time
        now = now or time.time()
        run = self.running[0] if self.running else None
        progress = None
        if run is not None:
            progress = RunProgress(elapsed=run["elapsed"] + (now - self.live_at),
                                   budget=self.budget, percent=self.percent,
                                   remaining=self.remaining)
        return pace(self.state, now, progress)

    def rows(self) -> list[Row]:
        awaiting = set(self.awaiting)
        return [experiment_row(e, "awaiting" if e.n in awaiting else "2nd look"
                               if e.second_look else ("running" if e.log else "queued"))
                for e in self.state.experiments]

    def points(self) -> list[Point]:
        return [Point(e.n, e.metric, e.status, e.worker) for e in self.state.ran
                if e.status is not None]  # always: ran ones are keep, discard or crash

    def status(self, flags: str = "", shown_worker: int = 0, now: float | None = None) -> Status:
        state = self.state
        best, baseline = state.best, state.baseline
        run = self.run_of(shown_worker) or (self.running[0] if self.running else None)
        elapsed = None
        if run is not None and not self.ended:
            elapsed = run["elapsed"] + ((now or time.time()) - self.live_at)
        n = run["n"] if run is not None and run["kind"] == "experiment" else (
            self.awaiting[0] if self.awaiting else
            (state.experiments[-1].n if state.experiments else None))
        phase = self.phase
        floor = state.floor()
        return Status(
            state=phase, percent=self.percent if run is not None else None, n=n,
            elapsed=elapsed, budget=self.budget,
            best=state.mean_of(best) if best else None,
            best_vs_baseline=(state.mean_of(best) - state.mean_of(baseline))
            if best and baseline else None,
            gained=bool(best and baseline and state.judged_by.better(state.mean_of(best),
                                                                      state.mean_of(baseline))),
            noise=floor.std if floor else None, noise_runs=floor.runs if floor else 0,
            confidence=best.confidence if best else None,
            metric=state.metric, agent=self.agent,
            cost=float(self.live.get("cost_usd", state.cost_usd) or 0.0), flags=flags,
            **asdict(self.pace(now)),
        )


def experiment_row(e: Experiment, live: str = "running") -> Row:
    """A timeline row; `live` says what an unfinished one is doing (running, awaiting, queued)."""
    return Row(n=e.n, commit=e.commit or "", metric=e.first_run if e.metric is None
               else e.metric, delta=e.delta_best,
               status=e.status, memory_gb=e.memory_gb or 0.0, description=e.description,
               worker=e.worker, live_status=live, confidence=e.confidence, reason=e.reason,
               stopped_at=(e.early_stop or {}).get("progress"),
               reported=e.measured == REPORTED_BY_TRAIN)


def describe(e: Experiment, metric: str, awaiting: bool = False) -> str:
    """The line under an experiment's title in the diff view."""
    if e.status is None:
        if awaiting:
            return "awaits your approval: a approves, r rejects"
        if e.second_look:
            return f"second look: {e.second_look}"
        return "running" if e.log else "approved, waiting for a worker"
    if e.status in ("crash", "rejected"):
        return f"{e.status}: {e.reason}"
    if e.early_stop is not None:
        return f"{e.status}: {describe_stop(e.early_stop)}"
    if e.metric is None:  # ended without a metric for another reason: say which
        return f"{e.status}: {e.reason or e.verdict or f'no {metric} measured'}"
    delta = "" if e.delta_best is None else f" ({e.delta_best:+.6f} vs best)"
    how = measured_label(e.measured)
    return f"{e.status}: {metric} {e.metric:.6f}{delta}" + (f", {how}" if how else "")
