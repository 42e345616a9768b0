"""The fold of a session's journal into state: its experiments, the baseline, the best.

Every view (headless output, the TUI, replay, experiments.md, results.tsv recovery) is
rebuilt from the journal by SessionState.from_events, one event at a time."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Experiment:
    n: int
    description: str = ""
    hypothesis: str = ""
    diff: str = ""
    params: dict = field(default_factory=dict)
    move: dict | None = None
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
    summary: dict = field(default_factory=dict)
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
    early_stop: dict | None = None
    session: str = ""  # the session it belongs to (set for experiments of earlier sessions)
    base: str = ""  # the best commit its change was made on
    source_blob: str = ""  # the proposed file as a git blob (a restarted session re-offers it)
    edited: bool = False  # the human changed the proposal before approving it
    data_fingerprint: str = ""  # the data it was measured on (its run prints it)
    flagged: str = ""  # a keep the noise floor measured since no longer backs: why
    second_look: str = ""  # measured once, close to its bar: why it runs once more
    first_run: float | None = None  # a second look's first run, shown until it is judged
    made: str = ""  # a commit the human made on the session's branch, run as it is

    @property
    def finished(self) -> bool:
        return self.status is not None

@dataclass
class SessionState:
    tag: str = ""
    branch: str = ""
    base: str = ""  # the commit the session started from
    metric: str = "val_bpb"
    direction: str = "lower"
    experiments: list[Experiment] = field(default_factory=list)
    _by_n: dict[int, Experiment] = field(default_factory=dict, repr=False)

    @classmethod
    def from_events(cls, events: list[dict]) -> "SessionState":
        state = cls()
        for e in events:
            state.apply(e)
        return state

    def apply(self, e: dict) -> None:
        """Fold one journal event into the state (events arrive in journal order)."""
        kind = e.get("event")
        if kind == "session":
            self.tag, self.branch = e["tag"], e["branch"]
            self.base = self.base or e["base"]
            self.metric = e.get("metric", self.metric)
            self.direction = e.get("direction", self.direction)
        elif kind == "proposal":
            exp = Experiment(
                n=e["n"],
                description=e.get("description", ""),
                hypothesis=e.get("hypothesis", ""),
                diff=e.get("diff", ""),
                params=e.get("params", {}),
                move=e.get("move"),
                source_sha=e.get("source_sha", ""),
                repair_of=e.get("repair_of"),
                worker=e.get("worker", 0),
                base=e.get("base", ""),
                source_blob=e.get("source_blob", ""),
                edited=e.get("edited", False),
                made=e.get("made", ""),
            )
            self._by_n[exp.n] = exp
            self.experiments.append(exp)
        elif kind == "flagged" and e.get("n") in self._by_n:
            self._by_n[e["n"]].flagged = e.get("why", "")
        elif kind == "second_look" and e.get("n") in self._by_n:
            self._by_n[e["n"]].second_look = e.get("why", "")
            self._by_n[e["n"]].first_run = (e.get("result") or {}).get("metric")
        elif kind in ("commit", "run_start", "run_pid", "result") and e.get("n") in self._by_n:
            exp = self._by_n[e["n"]]
            for key in ("commit", "log", "pid", "run_id", "worker", "status", "metric",
                        "memory_gb", "reason", "summary", "seconds", "delta_best",
                        "delta_baseline", "confidence", "verdict", "early_stop", "threshold",
                        "bar", "bar_runs", "runs", "data_fingerprint"):
                if key in e:
                    setattr(exp, key, e[key])

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

    def get(self, n: int) -> Experiment | None:
        return self._by_n.get(n)

    @property
    def baseline(self) -> Experiment | None:
        """The unmodified starting point's run (normally experiment 1; a later one when the
        first was lost with its worker), else the first experiment that produced a metric."""
        measured = [e for e in self.experiments if e.metric is not None]
        return next((e for e in measured if e.description == "baseline" and not e.diff),
                    measured[0] if measured else None)

    @property
    def best(self) -> Experiment | None:
        """The session's best (see best_of)."""
        return best_of(self.experiments)

    @property
    def next_n(self) -> int:
        return max(self._by_n, default=0) + 1

def best_of(experiments) -> Experiment | None:
    """The best of a session: its last kept experiment, the commit its branch stands on.
    A keep beat the best before it by the keep policy (which honours the metric's
    direction), so the judge, the chart, the report and the prompt all mean this one."""
    return next((e for e in reversed(experiments) if e.status == "keep"), None)
