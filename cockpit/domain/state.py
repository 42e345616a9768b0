"""The fold of a session's journal into state: the one place that turns events into what
they mean. Its experiments, the baseline and the best, every measured value of each commit,
the noise, the notes, the re-runs, the cost, the pids of runs, how the session ended.

Everyone reads the session through a SessionState: the loop and its judge (the session's
own, fed by its recorder), the headless printer, the cockpit, replay, the notifier, the
reports and the agents (each fed the same events). It is updated one event at a time,
never rescanned.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cockpit.domain.causes import NOT_THE_IDEAS_FAULT, legacy_cause
from cockpit.domain.diffs import edited_description
from cockpit.domain.judge import KeepPolicy, NoiseFloor
from cockpit.domain.lines import Line, Tree
from cockpit.domain.measured import disturbed
from cockpit.domain.metric import Metric


@dataclass
class Experiment:
    n: int
    description: str = ""
    hypothesis: str = ""
    diff: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    move: dict[str, Any] | None = None
    source_sha: str = ""
    commit: str | None = None
    log: str | None = None
    pid: int | None = None  # the training process while it runs
    run_id: str = ""  # the marker every process of its run carries
    # keep | discard | crash | rejected; None while proposed, awaiting approval or running
    status: str | None = None
    metric: float | None = None
    memory_gb: float = 0.0
    reason: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    delta_best: float | None = None
    delta_baseline: float | None = None
    confidence: float | None = None  # the gain over the best in units of the noise spread
    verdict: str = ""  # the keep policy's decision, in words
    threshold: float | None = None  # the gain a keep needed when it was judged
    bar: float | None = None  # what its delta is measured against (the best's mean)
    bar_runs: int = 0  # how many runs of the best that mean rests on
    runs: int = 1  # how many runs of its own its verdict rests on (2 after a second look)
    repair_of: int | None = None  # the crashed experiment this one tries to fix
    worker: int = 0  # which parallel worker ran it (journals without the field: worker 0)
    # A run stopped early because its loss curve fell behind the best's beyond the noise:
    # {"progress": %, "loss": ..., "best_loss": ..., "sigmas": ...}; its status is "discard".
    early_stop: dict[str, Any] | None = None
    session: str = ""  # the session it belongs to (set for experiments of earlier sessions)
    base: str = ""  # the best commit its change was made on
    source_blob: str = ""  # the proposed file as a git blob (a restarted session re-offers it)
    edited: bool = False  # the human changed the proposal before approving it
    proposed: str = ""  # the agent's description, once a human edited its change
    data_fingerprint: str = ""  # the data it was measured on (its run prints it)
    flagged: str = ""  # a keep the noise floor measured since no longer backs: why
    second_look: str = ""  # measured once, close to its bar: why it runs once more
    first_run: float | None = None  # a second look's first run, shown until it is judged
    made: str = ""  # a commit the human made on the session's branch, run as it is
    cause: str = ""  # why a run has no result of its own (causes.CAUSES), else ""
    measured: str = ""  # "cockpit" (its evaluator measured it), "train.py" (as printed)
    line: int = 0  # the line of the search tree it builds on (see domain.lines)
    disturbed: str = ""  # its run's value is the busy machine's (left out of the bars): why
    # a near-miss kept on every measurement of its edit: the others' n and the pooled gain
    pooled_with: list[int] = field(default_factory=list)
    pooled_gain: float | None = None
    carried_onto: str = ""  # the later best its change was carried onto, when the best moved

    @property
    def built_on(self) -> str:
        """The commit its run's change sits on: the best it was carried onto, else its
        base."""
        return self.carried_onto or self.base

    @property
    def finished(self) -> bool:
        return self.status is not None

    @property
    def the_ideas_fault(self) -> bool:
        """A crash of the idea itself (not a stop, a kill of cockpit, a lost machine)."""
        return self.status == "crash" and self.cause not in NOT_THE_IDEAS_FAULT

    @property
    def is_baseline(self) -> bool:
        return self.description == "baseline" and not self.diff

    def near_miss(self, direction: str) -> bool:
        """Discarded, yet measured better than its bar (within the noise); not one stopped
        early, which was behind."""
        gain = Metric(direction=direction).gain_of(self.delta_best)
        return (self.status == "discard" and self.early_stop is None
                and self.metric is not None and gain is not None and gain > 0)

@dataclass
class Measure:
    """A re-run of a commit, unchanged (noise, keep, second-look, confirm), once it ended."""

    k: int | None
    commit: str
    purpose: str
    metric: float | None
    cause: str = ""
    reason: str = ""
    log: str | None = None
    worker: int = 0
    seconds: float = 0.0
    disturbed: str = ""  # its value is the busy machine's (left out of the bars): why


# Fields of these events that describe their experiment.
RUN_FIELDS = ("commit", "log", "pid", "run_id", "worker", "status", "metric", "memory_gb",
              "reason", "summary", "seconds", "delta_best", "delta_baseline", "confidence",
              "verdict", "early_stop", "threshold", "bar", "bar_runs", "runs",
              "data_fingerprint", "cause", "measured", "disturbed", "pooled_with", "pooled_gain")


@dataclass
class SessionState:
    tag: str = ""
    branch: str = ""
    base: str = ""  # the commit the session started from
    metric: str = "val_bpb"
    direction: str = "lower"
    agent: str = ""
    config: dict[str, Any] = field(default_factory=dict)  # the settings its latest start recorded
    workers: int = 1
    experiments: list[Experiment] = field(default_factory=list)
    measures: list[Measure] = field(default_factory=list)
    # commit -> every value measured of it: its experiments' results and its re-runs
    measured: dict[str, list[float]] = field(default_factory=dict)
    noise: dict[str, Any] | None = None  # the latest noise measurement (its event)
    busy_streak: int = 0  # the last runs with a reading, in a row, on a busy machine
    noise_rounds: dict[str, int] = field(default_factory=dict)  # commit -> noise re-runs in
    noise_recorded: set[tuple[str, int]] = field(default_factory=set)  # (commit, at)
    notes: dict[int, str] = field(default_factory=dict)  # steering notes still in force
    # n -> a second look's first result
    looks: dict[int, dict[str, Any]] = field(default_factory=dict)
    abandoned: set[int] = field(default_factory=set)  # crashed ideas given up
    cost_usd: float = 0.0  # the model's cost so far
    rows: set[int] = field(default_factory=set)  # experiments whose results.tsv row is written
    program_sha: str = ""  # the program.md the last proposal read
    run_ids: dict[tuple[str, int], str] = field(default_factory=dict)  # (n|k, key) -> run id
    pids: list[tuple[str, int, int]] = field(default_factory=list)  # (n|k, key, pid)
    fingerprint: str | None = None  # the data the session's first measured run read
    finished_at: dict[int, float] = field(default_factory=dict)  # n -> when it was judged
    auto_approve: bool | None = None  # as the last start or toggle set it (None: not said)
    sandbox_off: str = ""  # why runs are not isolated, as last said
    trust: str = ""  # "measured" | "reported", as the latest start decided ("" before)
    seeds: bool | None = None  # re-runs vary COCKPIT_SEED (None: not said)
    measuring: str = ""  # how results are measured, in words
    # commit -> the wall seconds of its runs that measured (cockpit's clock)
    run_seconds: dict[str, list[float]] = field(default_factory=dict)
    ended: str = ""  # why the session ended ("" while it runs)
    first_time: float = 0.0  # when the first event was written
    last_time: float = 0.0  # when the newest event was written
    events: int = 0  # how many were folded
    max_k: int = 0  # the highest re-run number so far
    legacy_measures: int = 0  # re-runs journaled without a number (older journals)
    tree: Tree = field(default_factory=Tree)  # the lines research goes on along
    _by_n: dict[int, Experiment] = field(default_factory=dict, repr=False)
    _baseline: Experiment | None = field(default=None, repr=False)
    _first_measured: Experiment | None = field(default=None, repr=False)

    @classmethod
    def from_events(cls, events: list[dict[str, Any]]) -> SessionState:
        state = cls()
        for e in events:
            state.apply(e)
        return state

    def apply(self, e: dict[str, Any]) -> None:
        """Fold one journal event into the state (events arrive in journal order)."""
        kind = e.get("event")
        self.events += 1
        when = float(e.get("time") or 0.0)
        self.first_time = min(self.first_time, when) if self.first_time else when
        self.last_time = max(self.last_time, when)
        handler = _FOLDS.get(kind) if kind is not None else None
        if handler is not None:
            handler(self, e)

    # -- one fold per kind of event ---------------------------------------------------------
    def _session(self, e: dict[str, Any]) -> None:
        self.tag, self.branch = e["tag"], e["branch"]
        self.base = self.base or e["base"]
        self.metric = e.get("metric") or self.metric
        self.direction = e.get("direction") or self.direction
        self.agent = e.get("agent") or self.agent
        self.config = e.get("config") or self.config
        if e.get("auto_approve") is not None:
            self.auto_approve = e["auto_approve"]
        self.ended = ""

    def _measuring(self, e: dict[str, Any]) -> None:
        self.trust, self.seeds, self.measuring = e["trust"], e["seeds"], e.get("why", "")

    def _proposal(self, e: dict[str, Any]) -> None:
        exp = Experiment(n=e["n"], description=e.get("description", ""),
                         hypothesis=e.get("hypothesis", ""), diff=e.get("diff", ""),
                         params=e.get("params") or {}, move=e.get("move"),
                         source_sha=e.get("source_sha", ""), repair_of=e.get("repair_of"),
                         worker=e.get("worker", 0), base=e.get("base", ""),
                         source_blob=e.get("source_blob", ""), edited=e.get("edited", False),
                         made=e.get("made", ""), line=e.get("line", 0))
        self._by_n[exp.n] = exp
        self.experiments.append(exp)
        self.tree.proposed(exp)

    def _rebase(self, e: dict[str, Any]) -> None:
        exp = self.get(e["n"])
        if exp is not None:  # an unclean carry runs the change on the base it was made on
            exp.carried_onto = e["onto"] if e.get("clean") else ""

    def _edited(self, e: dict[str, Any]) -> None:
        """The human's version replaces the agent's change, before it ran: its diff, its
        file, its description; the agent's move and constants no longer say what runs."""
        exp = self.get(e["n"])
        if exp is None or exp.commit or exp.finished:
            return  # an edit after its commit changes nothing that ran
        if not exp.edited:
            exp.proposed = exp.description
        exp.edited = True
        exp.diff = e.get("diff", "")
        exp.description = e.get("description") or edited_description(exp.diff)
        exp.source_sha = e.get("source_sha", "")
        exp.source_blob = e.get("source_blob", "")  # none: a resume cannot offer it again
        exp.params, exp.move = {}, None

    def _run_event(self, e: dict[str, Any]) -> None:
        exp = self.get(e.get("n"))
        if exp is None:
            return
        if exp.finished and e["event"] != "result":
            return  # a run's start after its result is out of order: it changes nothing
        for key in RUN_FIELDS:
            if key in e:
                setattr(exp, key, e[key])
        if e["event"] == "run_start" and e.get("run_id"):
            self.run_ids[("n", exp.n)] = e["run_id"]
        elif e["event"] == "run_pid":
            self.pids.append(("n", exp.n, e["pid"]))
        elif e["event"] == "result":
            self._result(exp, e)

    def _result(self, exp: Experiment, e: dict[str, Any]) -> None:
        exp.cause = e.get("cause") or legacy_cause(exp.status, exp.reason)
        self._read_busy(e)
        self.finished_at[exp.n] = float(e.get("time") or 0.0)
        if exp.metric is not None:
            if exp.commit and not exp.disturbed:
                self.measured.setdefault(exp.commit, []).append(exp.metric)
                self.run_seconds.setdefault(exp.commit, []).append(exp.seconds)
            if self._first_measured is None:
                self._first_measured = exp
            if self._baseline is None and exp.is_baseline:
                self._baseline = exp
            if self.fingerprint is None and e.get("data_fingerprint"):
                self.fingerprint = e["data_fingerprint"]
        self.tree.judged(exp)

    def _measure(self, e: dict[str, Any]) -> None:
        measure = Measure(e.get("k"), e["commit"], e.get("purpose", ""), e.get("metric"),
                          e.get("cause", ""), e.get("reason", ""), e.get("log"),
                          e.get("worker", 0), e.get("seconds", 0.0), e.get("disturbed", ""))
        self.measures.append(measure)
        self._read_busy(e)
        if measure.metric is not None and not measure.disturbed:
            self.measured.setdefault(measure.commit, []).append(measure.metric)
            self.run_seconds.setdefault(measure.commit, []).append(measure.seconds)
        if measure.purpose == "noise":
            self.noise_rounds[measure.commit] = self.noise_rounds.get(measure.commit, 0) + 1
        if measure.k is None:
            self.legacy_measures += 1
        self.max_k = max(self.max_k, measure.k or 0)

    def _read_busy(self, e: dict[str, Any]) -> None:
        if e.get("stalled") is not None:  # a run the machine's counters say something of
            self.busy_streak = self.busy_streak + 1 if self.busy(e) else 0

    def _measure_start(self, e: dict[str, Any]) -> None:
        self.max_k = max(self.max_k, e["k"])
        if e.get("run_id"):
            self.run_ids[("k", e["k"])] = e["run_id"]

    def _prepare_start(self, e: dict[str, Any]) -> None:
        self.run_ids[("k", e["k"])] = e["run_id"]

    def _pid(self, e: dict[str, Any]) -> None:
        self.pids.append(("k", e["k"], e["pid"]))

    def _noise(self, e: dict[str, Any]) -> None:
        self.noise = e
        self.noise_recorded.add((e.get("commit", ""), e.get("at", 0)))

    def _flagged(self, e: dict[str, Any]) -> None:
        if e["n"] in self._by_n:
            self._by_n[e["n"]].flagged = e.get("why", "")

    def _second_look(self, e: dict[str, Any]) -> None:
        self.looks[e["n"]] = e["result"]
        if e["n"] in self._by_n:
            self._by_n[e["n"]].second_look = e.get("why", "")
            self._by_n[e["n"]].first_run = e["result"].get("metric")

    def _note(self, e: dict[str, Any]) -> None:
        self.notes[e.get("id", len(self.notes))] = e["text"]

    def _note_dropped(self, e: dict[str, Any]) -> None:
        self.notes.pop(e["id"], None)

    def _attempt(self, e: dict[str, Any]) -> None:
        self.cost_usd += e.get("cost_usd") or 0.0

    def _workers(self, e: dict[str, Any]) -> None:
        self.workers = max(1, e["workers"])

    def _session_end(self, e: dict[str, Any]) -> None:
        self.ended = e.get("why") or "ended"

    def _branch(self, e: dict[str, Any]) -> None:
        origin = self.get(e["from_n"])
        if origin is None or origin.metric is None or origin.commit != e["commit"]:
            return  # a line must start on a measured commit of this session
        self.tree.branched(e["line"], origin, e.get("why", ""), e.get("left"))

    # -- what the state says ------------------------------------------------------------------
    @property
    def finished(self) -> list[Experiment]:
        return [e for e in self.experiments if e.finished]

    @property
    def ran(self) -> list[Experiment]:
        """Finished experiments that trained (not proposals the human rejected)."""
        return [e for e in self.experiments if e.status in ("keep", "discard", "crash")]

    @property
    def running(self) -> list[Experiment]:
        """Experiments whose run started and has no result yet (one per busy worker)."""
        return [e for e in self.experiments if not e.finished and e.log]

    @property
    def pending(self) -> list[Experiment]:
        """Proposals not yet run: awaiting approval, or approved and waiting for a worker."""
        return [e for e in self.experiments if not e.finished and not e.log]

    def get(self, n: int | None) -> Experiment | None:
        return self._by_n.get(n) if n is not None else None

    @property
    def baseline(self) -> Experiment | None:
        """The unmodified starting point's run (normally experiment 1; a later one when the
        first was lost with its worker), else the first experiment that produced a metric."""
        return self._baseline or self._first_measured

    @property
    def best(self) -> Experiment | None:
        """The session's best: its last kept experiment, the commit its branch stands on
        (with several lines, the best of their kept bests). A keep beat the best before it
        by the keep policy (which honours the metric's direction), so the judge, the chart,
        the report and the prompt all mean this one."""
        return self.tree.session_best(self)

    @property
    def lines(self) -> dict[int, Line]:
        return self.tree.lines

    def line_best(self, k: int) -> Experiment | None:
        """What a result on line k is judged against: the line's last keep, or its origin
        until its first keep."""
        return self.tree.line(k).best

    @property
    def next_n(self) -> int:
        return max(self._by_n, default=0) + 1

    @property
    def next_k(self) -> int:
        return 1 + max(self.max_k, self.legacy_measures)

    def values_of(self, commit: str | None) -> list[float]:
        """Every measured value of a commit: its experiments' and its re-runs'."""
        return list(self.measured.get(commit or "", ()))

    def mean_of(self, exp: Experiment) -> float:
        """What a commit scores: the mean of every run of it, so one lucky run of the best
        does not set the bar."""
        values = self.measured.get(exp.commit or "")
        if not values:
            assert exp.metric is not None  # only a measured experiment is scored
            values = [exp.metric]
        return sum(values) / len(values)

    def floor(self) -> NoiseFloor | None:
        """The session's noise floor, pooled from every commit run more than once (None
        until the session measured its noise)."""
        if self.noise is None:
            return None
        return NoiseFloor.from_groups(self.measured)

    @property
    def judged_by(self) -> Metric:
        """The metric as this session's start recorded it: its name and direction."""
        return Metric(self.metric, self.direction)

    def keep_policy(self) -> KeepPolicy:
        """How this session keeps a result, as its start recorded ([judge] and the metric's
        direction)."""
        judge = self.config.get("judge") or {}
        return KeepPolicy(self.direction, judge.get("min_delta", "auto"),
                          judge.get("noise_multiple", 2.0))

    def bar(self) -> tuple[float | None, float | None]:
        """The bar the next result must beat (the best's mean) and the gain a keep needs
        over it (None, None before a best)."""
        values = self.values_of(self.best.commit) if self.best is not None else []
        if not values:
            return None, None
        return sum(values) / len(values), self.keep_policy().threshold(self.floor(),
                                                                       len(values))

    def second_values(self, commit: str) -> list[float]:
        """The second-look runs of a commit that measured something."""
        return [m.metric for m in self.measures if m.purpose == "second-look"
                and m.commit == commit and m.metric is not None and not m.disturbed]

    def busy(self, run: dict[str, Any]) -> bool:
        """Whether a run's event says the machine was busy with other work while it
        trained, by the session's [judge] disturbed (left out or not)."""
        share = (self.config.get("judge") or {}).get("disturbed", 0.0)
        return bool(disturbed(run.get("stalled"), run.get("others"), share))

    def disturbed_runs(self, commit: str) -> int:
        """How many runs of a commit were left out as the busy machine's."""
        return (sum(1 for m in self.measures if m.commit == commit and m.disturbed)
                + sum(1 for e in self.experiments if e.commit == commit and e.disturbed))

    def runs_with_logs(self) -> list[tuple[str, str]]:
        """(log, commit) of every finished run that measured its commit, but those the busy
        machine slowed: their curves are the machine's (early stop calibrates on these)."""
        runs = [(e.log, e.commit) for e in self.experiments
                if e.log and e.commit and e.metric is not None and not e.disturbed]
        runs += [(m.log, m.commit) for m in self.measures
                 if m.metric is not None and m.log and not m.disturbed]
        return runs


_FOLDS: dict[str, Callable[[SessionState, dict[str, Any]], None]] = {
    "session": SessionState._session, "proposal": SessionState._proposal,
    "edited": SessionState._edited, "rebase": SessionState._rebase,
    "measuring": SessionState._measuring,
    "commit": SessionState._run_event, "run_start": SessionState._run_event,
    "run_pid": SessionState._run_event, "result": SessionState._run_event,
    "measure": SessionState._measure, "measure_start": SessionState._measure_start,
    "measure_pid": SessionState._pid, "prepare_start": SessionState._prepare_start,
    "prepare_pid": SessionState._pid, "noise": SessionState._noise,
    "flagged": SessionState._flagged, "second_look": SessionState._second_look,
    "note": SessionState._note, "note_dropped": SessionState._note_dropped,
    "attempt": SessionState._attempt, "workers": SessionState._workers,
    "session_end": SessionState._session_end, "branch": SessionState._branch,
    "abandoned": lambda state, e: state.abandoned.add(e["n"]),
    "row": lambda state, e: state.rows.add(e["n"]),
    "program": lambda state, e: setattr(state, "program_sha", e["sha"]),
    "auto_approve": lambda state, e: setattr(state, "auto_approve", bool(e["on"])),
    "sandbox_off": lambda state, e: setattr(state, "sandbox_off", e.get("why", "")),
}


def best_of(experiments: Sequence[Experiment]) -> Experiment | None:
    """The last kept experiment of a list (earlier sessions' experiments, for the agents)."""
    return next((e for e in reversed(experiments) if e.status == "keep"), None)
