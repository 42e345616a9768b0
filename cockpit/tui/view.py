"""What the screen knows of a session: folded from journal events (live or replayed) and
from the session's live state (what runs where, what waits for the human, pauses).

No widget code here: the App turns this into widget rows, points and a status line.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from cockpit.domain.earlystop import Curve, describe_stop
from cockpit.domain.state import Experiment, SessionState
from cockpit.domain.judge import KeepPolicy, NoiseFloor, gain_of
from cockpit.domain.progress import parse_progress
from cockpit.domain.stats import Pace, RunProgress, pace
from cockpit.tui.widgets.diff_view import VerdictLine
from cockpit.tui.widgets.metric_chart import Point
from cockpit.tui.widgets.status_bar import Status
from cockpit.tui.widgets.timeline import Row

LOSS_GRID = 2.0  # percent of progress between two points of the loss sparkline


@dataclass
class SessionView:
    state: SessionState = field(default_factory=SessionState)
    budget: float = 0.0
    agent: str = ""
    model: str = ""
    cost: float = 0.0
    live: dict = field(default_factory=dict)  # the session's live state (empty: replay)
    live_at: float = 0.0  # when it arrived (elapsed times count from there)
    ended: str = ""  # why the session ended ("" while it runs)
    percent: float | None = None  # the shown run's progress
    curve: Curve = field(default_factory=Curve)  # the shown run's loss over its progress
    noise: float | None = None  # the session's measured noise spread
    noise_runs: int = 0
    version: int = 0  # bumped whenever the experiment list changed
    workers: int = 1  # parallel workers of the session (its `workers` event)
    # worker -> its latest run: {"key": (worker, kind, n), "log", "time", "done", "title"}
    runs: dict = field(default_factory=dict)
    measured: dict = field(default_factory=dict)  # commit -> every value measured of it
    finished_at: dict = field(default_factory=dict)  # n -> when its result was recorded
    config: dict = field(default_factory=dict)  # the session's settings (its session event)
    last_event: float = 0.0  # when the newest journal event was written

    def apply(self, event: dict) -> None:
        """Fold one journal event (the journal is the source of truth)."""
        self.state.apply(event)
        self.last_event = max(self.last_event, float(event.get("time") or 0.0))
        kind = event.get("event")
        if kind == "session":
            config = event.get("config") or {}
            self.budget = float((config.get("experiment") or {}).get("time_budget", self.budget))
            self.agent = event.get("agent", self.agent)
            self.model = (config.get("agent") or {}).get("model", "") or self.model
            self.config = config or self.config
            self.ended = ""
        elif kind == "attempt":  # each model answer carries its cost
            self.cost += float(event.get("cost_usd") or 0.0)
        elif kind == "noise":
            self.noise = float(event.get("spread") or 0.0)
            self.noise_runs = len(event.get("values") or ())
        elif kind == "workers":
            self.workers = max(1, int(event.get("workers") or 1))
        elif kind == "session_end":
            self.ended = event.get("why", "ended")
        elif kind in ("run_start", "measure_start"):
            worker = event.get("worker", 0)
            experiment = kind == "run_start"
            n = event["n"] if experiment else event["k"]
            title = f"#{n}" if experiment else f"{event.get('purpose', '')} re-run"
            self.runs[worker] = {"key": (worker, "experiment" if experiment else "measure", n),
                                 "log": event.get("log", ""), "time": event.get("time", 0.0),
                                 "done": False, "title": title}
        if kind in ("result", "measure") and event.get("metric") is not None \
                and event.get("commit"):
            self.measured.setdefault(event["commit"], []).append(event["metric"])
        if kind == "result" and "n" in event:
            self.finished_at[event["n"]] = float(event.get("time", 0.0))
        if kind in ("result", "measure"):
            for run in self.runs.values():
                kind_n = ("experiment", event.get("n")) if kind == "result" else \
                    ("measure", event.get("k"))
                if run["key"][1:] == kind_n:
                    run["done"] = True
        if kind in ("proposal", "commit", "run_start", "result", "edited"):
            self.version += 1

    def apply_live(self, live: dict) -> None:
        self.live = live
        self.live_at = time.time()
        self.version += 1  # what waits and what runs shows in the timeline

    def on_progress_line(self, line: str) -> None:
        progress = parse_progress(line)
        if progress is None:
            return
        self.percent = progress.percent
        if progress.loss is not None:
            self.curve.add(progress.percent, progress.loss)

    def new_run_shown(self, text: str = "") -> None:
        """A run comes on screen: its curve so far from `text` (its log), else empty."""
        self.curve = Curve.from_log(text) if text else Curve()
        self.percent = self.curve.end if self.curve.points else None

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

    def floor(self) -> NoiseFloor | None:
        """The pooled noise floor, once the session measured its noise."""
        return NoiseFloor.from_groups(self.measured) if self.noise is not None else None

    def bar(self) -> tuple[float | None, float | None]:
        """The bar the next result must beat (the best's mean) and the gain a keep needs."""
        best = self.state.best
        values = self.measured.get(best.commit, []) if best is not None else []
        if not values:
            return None, None
        judge = self.config.get("judge") or {}
        policy = KeepPolicy(self.state.direction, judge.get("min_delta", "auto"),
                            judge.get("noise_multiple", 2.0))
        return sum(values) / len(values), policy.threshold(self.floor(), len(values))

    def mean_of(self, e: Experiment) -> float:
        """What a commit scores: the mean of every run of it (one lucky run is not the
        best's value, as it is not the bar)."""
        values = self.measured.get(e.commit) or [e.metric]
        return sum(values) / len(values)

    def verdict(self, e: Experiment) -> VerdictLine | None:
        """How a finished experiment was judged, for the change pane."""
        if e.status is None or e.status == "rejected":
            return None
        gain = gain_of(e.delta_best, self.state.direction)
        against = ("the best's mean of {} runs".format(e.bar_runs) if e.bar_runs > 1 else
                   "the best's single run" if e.bar_runs == 1 else "")
        return VerdictLine(e.status, gain, e.threshold, e.confidence, against, e.runs)

    def pace(self, now: float | None = None) -> Pace:
        if self.ended or not self.live:  # over (or not attached): its pace when it stopped
            now = self.last_event
        now = now or time.time()
        run = self.running[0] if self.running else None
        progress = None
        if run is not None:
            progress = RunProgress(elapsed=run["elapsed"] + (now - self.live_at),
                                   budget=self.budget, percent=self.percent)
        return pace(self.state, self.finished_at, now, progress)

    def rows(self) -> list[Row]:
        awaiting = set(self.awaiting)
        return [experiment_row(e, "awaiting" if e.n in awaiting else "2nd look"
                               if e.second_look else ("running" if e.log else "queued"))
                for e in self.state.experiments]

    def points(self) -> list[Point]:
        return [Point(e.n, e.metric, e.status, e.worker) for e in self.state.ran]

    def running_on(self, worker: int) -> Experiment | None:
        """The experiment a worker runs now, else the last one it ran."""
        mine = [e for e in self.state.experiments if e.worker == worker and e.log]
        live = [e for e in mine if not e.finished]
        return (live or mine or [None])[-1]

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
        agent = self.agent + (f" · {self.model}" if self.model else "")
        phase = self.phase
        floor = self.floor()
        return Status(
            state=phase, percent=self.percent if run is not None else None, n=n,
            elapsed=elapsed, budget=self.budget,
            best=self.mean_of(best) if best else None,
            best_vs_baseline=(self.mean_of(best) - self.mean_of(baseline))
            if best and baseline else None,
            lower_is_better=state.direction == "lower",
            noise=floor.std if floor else None, noise_runs=floor.runs if floor else 0,
            confidence=best.confidence if best else None,
            metric=state.metric, agent=agent,
            cost=float(self.live.get("cost_usd", self.cost) or 0.0), flags=flags,
            **asdict(self.pace(now)),
        )


def experiment_row(e: Experiment, live: str = "running") -> Row:
    """A timeline row; `live` says what an unfinished one is doing (running, awaiting, queued)."""
    return Row(n=e.n, commit=e.commit or "", metric=e.first_run if e.metric is None
               else e.metric, delta=e.delta_best,
               status=e.status, memory_gb=e.memory_gb or 0.0, description=e.description,
               worker=e.worker, live_status=live, confidence=e.confidence, reason=e.reason,
               stopped_at=(e.early_stop or {}).get("progress"))


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
    return f"{e.status}: {metric} {e.metric:.6f}{delta}"
