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
# a keep needing a gain above this share of the best's value is out of reach: the noise
# floor rests on too few runs
YOUNG_BAR = 0.05
# what a re-run is for, in the words of the status line and the run log's title
RERUN_WORDS = {"noise": "noise re-run", "second-look": "2nd look", "keep": "keep re-run",
               "confirm": "confirm re-run"}


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
    lost: str = ""  # why no session process runs it any more ("" while one does)

    def apply(self, event: dict) -> None:
        """Fold one journal event (the journal is the source of truth)."""
        self.state.apply(event)
        kind = event.get("event")
        if kind in ("run_start", "measure_start"):
            worker = event.get("worker", 0)
            experiment = kind == "run_start"
            n = event["n"] if experiment else event["k"]
            title = f"#{n}" if experiment else self.rerun_of(event.get("commit", ""),
                                                               event.get("purpose", ""))
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
        self.lost = ""
        self.version += 1  # what waits and what runs shows in the timeline

    def lose(self, why: str) -> None:
        """No process runs the session any more (it died, or ended): nothing on screen may
        look live, so what was live is dropped and unfinished runs say they stopped."""
        self.live, self.lost = {}, why
        self.percent = self.remaining = None
        self.curve = Curve()
        for run in self.runs.values():
            run["done"] = True
        self.version += 1

    def rerun_of(self, commit: str, purpose: str) -> str:
        """`#1 noise re-run`: what a re-run measures, named by the experiment it repeats."""
        what = RERUN_WORDS.get(purpose, f"{purpose} re-run".strip())
        owner = next((e for e in self.state.experiments if e.commit == commit), None)
        return f"#{owner.n} {what}" if owner is not None else f"{what} of {commit[:7]}"

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
        if e.pooled_with and e.pooled_gain is not None:
            gain = e.pooled_gain  # what its bar was set for: every run of its edit
        against = (f"the best's mean of {e.bar_runs} runs" if e.bar_runs > 1 else
                   "the best's single run" if e.bar_runs == 1 else "")
        return VerdictLine(e.status, gain, e.threshold, e.confidence, against, e.runs,
                           tuple(e.pooled_with))

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

    def session_eta(self, per_hour: float | None) -> float | None:
        """Seconds until the experiments asked for (`--experiments N`) are done, at the
        session's pace (None: no limit, or no pace yet)."""
        limit = self.live.get("limit")
        if not limit or not per_hour or self.ended:
            return None
        left = limit - len(self.state.finished)
        return left * 3600.0 / per_hour if left > 0 else None

    def rows(self) -> list[Row]:
        awaiting = set(self.awaiting)
        return [experiment_row(e, "stopped" if self.lost or self.ended else "awaiting"
                               if e.n in awaiting else "2nd look" if e.second_look else
                               ("running" if e.log else "queued"), self.scored(e),
                               self.state.direction)
                for e in self.state.experiments]

    def scored(self, e: Experiment) -> tuple[float | None, int]:
        """What a finished experiment's commit scores, as the judge scores it: the mean of
        its runs, and how many (its own value, and 1, when it is the only run)."""
        values = self.state.values_of(e.commit) if e.metric is not None else []
        if len(values) < 2:
            return (e.first_run if e.metric is None else e.metric), 1
        return sum(values) / len(values), len(values)

    def points(self) -> list[Point]:
        return [Point(e.n, e.metric, e.status, e.worker) for e in self.state.ran
                if e.status is not None]  # always: ran ones are keep, discard or crash

    def status(self, flags: str = "", shown_worker: int = 0, now: float | None = None) -> Status:
        state = self.state
        best, baseline = state.best, state.baseline
        run = self.run_of(shown_worker) or (self.running[0] if self.running else None)
        elapsed = None  # training time against the budget: startup and compile do not count
        if run is not None and not self.ended and self.percent is not None and self.budget:
            elapsed = self.budget * min(self.percent, 100.0) / 100.0
        n = run["n"] if run is not None and run["kind"] == "experiment" else (
            self.awaiting[0] if self.awaiting and run is None else
            (state.experiments[-1].n if state.experiments and run is None else None))
        doing = ""
        if run is not None and run["kind"] != "experiment":  # a re-run: of which experiment
            doing = self.rerun_of(run.get("commit", ""), run.get("purpose", ""))
        phase = "not running" if self.lost and not self.ended else self.phase
        floor = state.floor()
        mean, need = state.bar()
        lower = state.direction != "higher"
        bar = None if mean is None or need is None else mean - need if lower else mean + need
        pace_now = self.pace(now)
        return Status(
            state=phase, percent=self.percent if run is not None else None, n=n, doing=doing,
            elapsed=elapsed, budget=self.budget,
            best=state.mean_of(best) if best else None,
            best_runs=len(state.values_of(best.commit)) if best else 0,
            bar=bar, bar_young=bool(mean and need and need > YOUNG_BAR * abs(mean)),
            lower=lower, session_eta=self.session_eta(pace_now.per_hour),
            best_vs_baseline=(state.mean_of(best) - state.mean_of(baseline))
            if best and baseline else None,
            gained=bool(best and baseline and state.judged_by.better(state.mean_of(best),
                                                                      state.mean_of(baseline))),
            noise=floor.std if floor else None, noise_runs=floor.runs if floor else 0,
            confidence=best.confidence if best else None,
            metric=state.metric, agent=self.agent,
            cost=float(self.live.get("cost_usd", state.cost_usd) or 0.0), flags=flags,
            **asdict(pace_now),
        )


def experiment_row(e: Experiment, live: str = "running",
                   scored: tuple[float | None, int] | None = None,
                   direction: str = "lower") -> Row:
    """A timeline row; `live` says what an unfinished one is doing (running, awaiting,
    queued); `scored` is its commit's (mean, runs) when it ran more than once."""
    metric, runs = scored or (e.first_run if e.metric is None else e.metric, 1)
    return Row(n=e.n, commit=e.commit or "", metric=metric, runs=runs, delta=e.delta_best,
               gain=gain_of(e.delta_best, direction), seconds=e.seconds,
               status=e.status, memory_gb=e.memory_gb or 0.0, description=e.description,
               worker=e.worker, live_status=live, confidence=e.confidence, reason=e.reason,
               stopped_at=(e.early_stop or {}).get("progress"),
               reported=e.measured == REPORTED_BY_TRAIN, line=e.line)


def describe(e: Experiment, metric: str, awaiting: bool = False, stopped: bool = False) -> str:
    """The line under an experiment's title in the diff view; `stopped`: no session runs
    it any more (it died or ended with this one unfinished)."""
    if e.status is None:
        if stopped:
            return ("stopped unfinished: no session runs it (R resumes a session that died)"
                    if e.log else "stopped before it ran: no session runs it")
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
    return (f"{e.status}: {metric} {e.metric:.6f}{delta}" + (f", {how}" if how else "")
            + (f"; {e.disturbed}" if e.disturbed else ""))
