"""The journal's events, typed: each kind is a record with its fields and their types,
declared once. The session writes them (a field it does not declare is a bug, raised at the
call); readers get them back as dicts decoded from journal lines or the wire, checked
against the same declarations: a torn, hand-mangled or hostile line (a field missing, or
of another type, an event out of order) is skipped and said.

A run that ends without a result of its own says why in its `cause` (domain.causes).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar


# -- the events ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """One journal line: `event` is the kind, `time` is set when it is written."""

    KIND: ClassVar[str] = ""

    def record(self) -> dict[str, Any]:
        return {"event": self.KIND, **dataclasses.asdict(self)}


_E = TypeVar("_E", bound=Event)


def _kind(name: str) -> Callable[[type[_E]], type[_E]]:
    def register(cls: type[_E]) -> type[_E]:
        cls.KIND = name
        KINDS[name] = cls
        return cls
    return register


KINDS: dict[str, type[Event]] = {}


@_kind("session")
@dataclass(frozen=True)
class Session(Event):
    tag: str
    branch: str
    base: str
    agent: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    metric: str | None = None  # None: as the session said when it began
    direction: str | None = None
    resumed: bool = False
    auto_approve: bool | None = None  # how this start approves proposals (None: not said)


@_kind("measuring")
@dataclass(frozen=True)
class MeasuringDecided(Event):
    trust: str  # "measured": only cockpit's measurements; "reported": train.py's too
    seeds: bool  # re-runs vary COCKPIT_SEED (train.py honours it)
    why: str = ""  # how results are measured, in words
    evaluator: str = ""


@_kind("workers")
@dataclass(frozen=True)
class Workers(Event):
    kind: str
    workers: int


@_kind("proposal")
@dataclass(frozen=True)
class Proposed(Event):
    n: int
    description: str = ""
    hypothesis: str = ""
    diff: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    move: dict[str, Any] | None = None
    source_sha: str = ""
    source_blob: str = ""
    repair_of: int | None = None
    attempts: int = 1
    usage: dict[str, Any] = field(default_factory=dict)
    base: str = ""
    made: str = ""  # a commit the human made on the session's branch, run as it is
    line: int = 0  # the line of the search tree it builds on (journals before lines: 0)


@_kind("branch")
@dataclass(frozen=True)
class Branched(Event):
    """A new line of the search tree, from experiment `from_n`'s commit, on its own branch
    (autoresearch/<tag>-<line>); a line number the session has already reopens that line."""

    line: int
    from_n: int
    commit: str
    why: str = ""  # "human", or "plateau: ..." when the session branched on its own
    left: int | None = None  # the line the session left on a plateau (no new proposals)


@_kind("commit")
@dataclass(frozen=True)
class Committed(Event):
    n: int
    commit: str


@_kind("rebase")
@dataclass(frozen=True)
class Rebased(Event):
    n: int
    onto: str
    was: str
    clean: bool


@_kind("run_start")
@dataclass(frozen=True)
class RunStarted(Event):
    n: int
    commit: str
    log: str
    worker: int = 0
    run_id: str = ""


@_kind("run_pid")
@dataclass(frozen=True)
class RunPid(Event):
    n: int
    pid: int


@_kind("measure_start")
@dataclass(frozen=True)
class MeasureStarted(Event):
    k: int
    commit: str
    purpose: str = ""
    worker: int = 0
    log: str = ""
    run_id: str = ""


@_kind("measure_pid")
@dataclass(frozen=True)
class MeasurePid(Event):
    k: int
    pid: int


@_kind("prepare_start")
@dataclass(frozen=True)
class PrepareStarted(Event):
    k: int
    command: str
    run_id: str


@_kind("prepare_pid")
@dataclass(frozen=True)
class PreparePid(Event):
    k: int
    pid: int


@_kind("result")
@dataclass(frozen=True)
class Result(Event):
    n: int
    status: str
    commit: str | None = None
    metric: float | None = None
    cause: str = ""
    reason: str = ""
    verdict: str = ""
    worker: int = 0
    confidence: float | None = None
    threshold: float | None = None
    bar: float | None = None
    bar_runs: int = 0
    runs: int = 1
    memory_gb: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    delta_best: float | None = None
    delta_baseline: float | None = None
    data_fingerprint: str | None = None
    sandboxed: bool = False
    ended: float = 0.0
    early_stop: dict[str, Any] | None = None
    measured: str = ""  # "cockpit" or "train.py" (MEASURED_BY_COCKPIT, REPORTED_BY_TRAIN)
    disturbed: str = ""  # its run's value is the busy machine's, left out of the bars: why
    stalled: float | None = None  # share of its run's time tasks waited for a CPU
    others: float | None = None  # cores other processes used meanwhile
    pooled_with: list[int] = field(default_factory=list)  # a pooled keep: the others' n
    pooled_gain: float | None = None  # a pooled keep: the gain of every measurement together


@_kind("second_look")
@dataclass(frozen=True)
class SecondLook(Event):
    n: int
    result: dict[str, Any]
    k: int = 0
    commit: str = ""
    why: str = ""


@_kind("measure")
@dataclass(frozen=True)
class Measured(Event):
    commit: str
    k: int | None = None
    purpose: str = ""
    metric: float | None = None
    cause: str = ""
    reason: str = ""
    seconds: float = 0.0
    worker: int = 0
    log: str | None = None
    ended: float = 0.0
    measured: str = ""  # "cockpit" or "train.py"
    seed: int | None = None  # the COCKPIT_SEED it ran at (None: train.py's own)
    disturbed: str = ""  # its value is the busy machine's: left out, and run again: why
    stalled: float | None = None  # share of its time tasks waited for a CPU
    others: float | None = None  # cores other processes used meanwhile


@_kind("noise")
@dataclass(frozen=True)
class NoiseMeasured(Event):
    commit: str
    values: list[float]
    mean: float = 0.0
    std: float = 0.0
    mad: float = 0.0
    spread: float = 0.0
    at: int = 0
    floor: str = ""


@_kind("flagged")
@dataclass(frozen=True)
class Flagged(Event):
    n: int
    why: str = ""


@_kind("early_stop")
@dataclass(frozen=True)
class EarlyStopped(Event):
    n: int
    shadow: bool = False
    progress: float = 0.0
    loss: float = 0.0
    best_loss: float = 0.0
    sigmas: float = 0.0
    since: float | None = None
    why: str = ""


@_kind("attempt")
@dataclass(frozen=True)
class Attempt(Event):
    """One answer of an agent (a model's, a command's): what it cost and whether it held."""

    n: int | None = None
    kind: str = "propose"
    attempt: int = 1
    accepted: bool = False
    abandoned: bool = False
    problem: str = ""
    description: str = ""
    format: str = ""
    reverted: list[str] = field(default_factory=list)
    prompt_estimate: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    seconds: float = 0.0
    answer: str = ""
    output: str = ""
    returncode: int | None = None
    prompt_file: str = ""


@_kind("retry")
@dataclass(frozen=True)
class Retry(Event):
    n: int | None = None
    kind: str = ""
    attempt: int = 1
    reason: str = ""
    retry: int = 0
    wait: float = 0.0


@_kind("proposal_failed")
@dataclass(frozen=True)
class ProposalFailed(Event):
    reason: str


@_kind("abandoned")
@dataclass(frozen=True)
class Abandoned(Event):
    n: int
    reason: str = ""


@_kind("program")
@dataclass(frozen=True)
class Program(Event):
    sha: str
    text: str


@_kind("note")
@dataclass(frozen=True)
class Note(Event):
    text: str
    id: int = 0


@_kind("note_dropped")
@dataclass(frozen=True)
class NoteDropped(Event):
    id: int


@_kind("edited")
@dataclass(frozen=True)
class Edited(Event):
    """The human changed proposal n before approving it: from now on it is this change
    (what runs, and what every record says), no longer the agent's."""

    n: int
    diff: str = ""
    source_sha: str = ""
    source_blob: str = ""
    description: str = ""  # what the edited change does ("" in journals from before)


@_kind("approved")
@dataclass(frozen=True)
class Approved(Event):
    n: int
    edited: bool = False


@_kind("auto_approve")
@dataclass(frozen=True)
class AutoApprove(Event):
    on: bool


@_kind("paused")
@dataclass(frozen=True)
class Paused(Event):
    reason: str = ""
    kind: str = "human"


@_kind("resumed")
@dataclass(frozen=True)
class Resumed(Event):
    pass


@_kind("stopping")
@dataclass(frozen=True)
class Stopping(Event):
    now: bool = False
    runs: list[int] | None = None
    by: str = ""  # "signal": SIGTERM or Ctrl-C (the handler said so on the terminal at once)


@_kind("session_end")
@dataclass(frozen=True)
class SessionEnded(Event):
    why: str = ""
    code: int = 0


@_kind("tampered")
@dataclass(frozen=True)
class Tampered(Event):
    keys: list[str]
    path: str = ".git/config"
    kept: str = ""
    by: str = ""


@_kind("fixed_changed")
@dataclass(frozen=True)
class FixedChanged(Event):
    files: list[str]
    by: int | None = None
    kind: str = "experiment"


@_kind("refs_changed")
@dataclass(frozen=True)
class RefsChanged(Event):
    by: str = ""
    created: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)


@_kind("leftover_killed")
@dataclass(frozen=True)
class LeftoverKilled(Event):
    pid: int
    n: int | None = None
    k: int | None = None


@_kind("locks_cleared")
@dataclass(frozen=True)
class LocksCleared(Event):
    paths: list[str]


@_kind("journal_damaged")
@dataclass(frozen=True)
class JournalDamaged(Event):
    lines: int = 0
    first: list[str] = field(default_factory=list)


@_kind("sandbox_off")
@dataclass(frozen=True)
class SandboxOff(Event):
    why: str = ""


@_kind("notify_failed")
@dataclass(frozen=True)
class NotifyFailed(Event):
    service: str
    error: str = ""


@_kind("notify_recovered")
@dataclass(frozen=True)
class NotifyRecovered(Event):
    service: str


@_kind("client_refused")
@dataclass(frozen=True)
class ClientRefused(Event):
    who: str


@_kind("not_ours")
@dataclass(frozen=True)
class NotOurs(Event):
    path: str
    why: str = ""


@_kind("row")
@dataclass(frozen=True)
class RowWritten(Event):
    n: int


def make(kind: str, /, **fields: Any) -> Event:
    """The event of a kind with these fields (a field it does not declare raises TypeError:
    the session's own bug, never a line of the journal)."""
    return KINDS[kind](**fields)
