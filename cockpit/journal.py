"""The session journal: an append-only JSONL event log, the single source of truth.

Every view (headless output, the TUI, replay, experiments.md, results.tsv recovery)
is rebuilt from it by SessionState.from_events. Each append is flushed and fsynced, so a
cockpit killed at any moment loses at most the event it was writing. A torn last line is
skipped on read and closed with a newline before the next append, so it never swallows
the next event; a line that is not an event (a hand edit, `42`, `{}`), or an event that
lacks a field its readers need or has one of the wrong type (`{"event": "proposal"}`), is
skipped too, and the reader is told which (`Journal.damaged`).
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

STATE_DIR = ".cockpit"


def session_dir(workspace: Path, tag: str) -> Path:
    return workspace / STATE_DIR / tag


class Journal:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._checked_end = False
        self.damaged: list[str] = []  # the lines the last read() skipped, and why

    def append(self, event: str, **fields) -> dict:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock, open(self.path, "a+b") as f:
            if not self._checked_end:  # a line torn by a kill must not swallow this one
                self._checked_end = True
                if f.seek(0, os.SEEK_END) > 0:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        f.write(b"\n")
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        return record

    def read(self) -> list[dict]:
        """The journal's events; the lines skipped as damaged are in `damaged` after."""
        self.damaged: list[str] = []
        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            return parse_lines(f.read().split(b"\n"), self.damaged)

    @property
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0


def parse_lines(lines: list[bytes], damaged: list[str] | None = None) -> list[dict]:
    """The events among journal lines: a torn, hand-mangled or malformed line is skipped
    (and said in `damaged`: "line 12: a proposal without n")."""
    events = []
    proposed: set[int] = set()
    judged: set[int] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:  # torn by a kill mid-write, or not JSON at all
            if damaged is not None:
                damaged.append(f"line {number}: not JSON (torn by a kill, or edited)")
            continue
        problem = event_problem(record) or _out_of_order(record, proposed, judged)
        if problem:
            if damaged is not None:
                damaged.append(f"line {number}: {problem}")
            continue
        events.append(record)
    return events


def _out_of_order(record: dict, proposed: set[int], judged: set[int]) -> str:
    """Why an event cannot be where it is: an experiment is proposed once, then judged once."""
    kind, n = record["event"], record.get("n")
    if kind == "proposal":
        if n in proposed:
            return f"a second proposal #{n}"
        proposed.add(n)
    elif kind == "result":
        if n not in proposed:
            return f"a result for #{n}, which was never proposed"
        if n in judged:
            return f"a second result for #{n}"
        judged.add(n)
    return ""


# -- what an event must hold ---------------------------------------------------------------
# The readers of the journal (the fold below, the coordinator's recovery, the clients, the
# reports) index these fields and compute with them: an event that lacks one, or holds one
# of another type, is not an event of that kind (a damaged or hostile line).
_NUMBER = (int, float)
_MAYBE = type(None)
REQUIRED: dict[str, dict[str, tuple]] = {
    "session": {"tag": (str,), "branch": (str,), "base": (str,)},
    "proposal": {"n": (int,)},
    "commit": {"n": (int,), "commit": (str,)},
    "run_start": {"n": (int,), "commit": (str,), "log": (str,)},
    "run_pid": {"n": (int,), "pid": (int,)},
    "result": {"n": (int,), "status": (str,)},
    "second_look": {"n": (int,), "result": (dict,)},
    "flagged": {"n": (int,)},
    "row": {"n": (int,)},
    "early_stop": {"n": (int,)},
    "measure_start": {"k": (int,), "commit": (str,)},
    "measure_pid": {"k": (int,), "pid": (int,)},
    "measure": {"commit": (str,)},
    "prepare_pid": {"pid": (int,)},
    "noise": {"commit": (str,), "values": (list,)},
    "note": {"text": (str,)},
    "workers": {"workers": (int,)},
    "tampered": {"keys": (list,)},
    "fixed_changed": {"files": (list,)},
    "locks_cleared": {"paths": (list,)},
}
# Fields that may be absent, but are of this type when present (whatever the event).
TYPED: dict[str, tuple] = {
    "time": _NUMBER, "n": (int, _MAYBE), "k": (int, _MAYBE), "pid": (int,), "worker": (int,),
    "id": (int,), "commit": (str, _MAYBE), "metric": (*_NUMBER, _MAYBE),
    "memory_gb": _NUMBER, "seconds": _NUMBER, "delta_best": (*_NUMBER, _MAYBE),
    "delta_baseline": (*_NUMBER, _MAYBE), "confidence": (*_NUMBER, _MAYBE),
    "threshold": (*_NUMBER, _MAYBE), "bar": (*_NUMBER, _MAYBE), "bar_runs": (int,),
    "runs": (int,), "cost_usd": (*_NUMBER, _MAYBE), "description": (str,),
    "hypothesis": (str,), "diff": (str,), "reason": (str,), "verdict": (str,),
    "why": (str,), "text": (str,), "purpose": (str,), "log": (str, _MAYBE),
    "run_id": (str, _MAYBE), "base": (str,), "source_blob": (str,), "source_sha": (str,),
    "params": (dict,), "move": (dict, _MAYBE), "summary": (dict,), "config": (dict,),
    "early_stop": (dict, _MAYBE), "repair_of": (int, _MAYBE),
    "data_fingerprint": (str, _MAYBE), "status": (str,), "values": (list,), "made": (str,),
    "std": _NUMBER, "mad": _NUMBER, "spread": _NUMBER, "code": (int,),
}
# Where a kind of event uses a name in a sense of its own.
KIND_TYPED: dict[str, dict[str, tuple]] = {
    "session": {"metric": (str,), "direction": (str,)},
}
STATUSES = ("keep", "discard", "crash", "rejected")
MAX_TIME = 1e11  # seconds since 1970: an event's time lies before the year 5000
MAX_NUMBER = 1e15  # no figure cockpit records comes near (metrics are at most 1e12)


def event_problem(record) -> str:
    """Why a decoded journal line is not an event its readers can use ("" when it is)."""
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        return "not an event"
    kind = record["event"]
    for name, types in REQUIRED.get(kind, {}).items():
        if name not in record:
            return f"a {kind} event without {name}"
    for name, value in record.items():
        types = REQUIRED.get(kind, {}).get(name) or KIND_TYPED.get(kind, {}).get(name) \
            or TYPED.get(name)
        if types is None or kind == "early_stop" and name != "n":
            continue  # early_stop's own fields are the decision's
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            return f"a {kind} event whose {name} is {type(value).__name__}"
        if isinstance(value, _NUMBER) and not isinstance(value, bool) \
                and not abs(value) <= MAX_NUMBER:  # NaN, infinite, or absurd
            return f"a {kind} event whose {name} is {value}"
    for name in ("n", "k"):
        if isinstance(record.get(name), int) and record[name] < 1:
            return f"a {kind} event whose {name} is {record[name]}"
    params = record.get("params")
    if isinstance(params, dict) and not all(
            isinstance(v, (int, float, str)) and not isinstance(v, bool)
            for v in params.values()):
        return f"a {kind} event whose params are not constants"
    if not 0 <= record.get("time", 0) < MAX_TIME:
        return f"a {kind} event whose time is {record['time']}"
    if kind == "result" and record["status"] not in STATUSES:
        return f"a result whose status is {record['status']!r}"
    if kind == "result" and record["status"] == "keep" and record.get("metric") is None:
        return "a keep without a metric"  # the best: everything measures against it
    if kind == "noise" and len(record["values"]) < 2:
        return "a noise event with fewer than two values"
    if kind == "noise" and not all(isinstance(v, _NUMBER) and not isinstance(v, bool)
                                   and abs(v) <= MAX_NUMBER for v in record["values"]):
        return "a noise event whose values are not numbers"
    if kind == "second_look":
        inner = event_problem({**record["result"], "event": "result"})
        if inner:
            return f"a second_look whose result is {inner}"
    return ""


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


def earlier_sessions(workspace: Path, tag: str) -> list[Experiment]:
    """The finished experiments of every other session in the workspace, oldest session
    first, each with its `session` set (what the agents remember)."""
    found = []
    journals = sorted((workspace / STATE_DIR).glob("*/journal.jsonl"),
                      key=lambda p: p.stat().st_mtime)
    for path in journals:
        if path.parent.name == tag:
            continue
        state = SessionState.from_events(Journal(path).read())
        for exp in state.finished:
            exp.session = path.parent.name
            found.append(exp)
    return found
