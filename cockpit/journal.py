"""The session journal: an append-only JSONL event log, the single source of truth.

Every view (headless output, the TUI, replay, experiments.md, results.tsv recovery)
is rebuilt from it by SessionState.from_events. Each append is flushed and fsynced, so a
cockpit killed at any moment loses at most the event it was writing; a torn last line
is skipped on read.
"""
from __future__ import annotations

import json
import os
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

    def append(self, event: str, **fields) -> dict:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        return record

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        events = []
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line torn by a kill mid-write
        return events


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
    status: str | None = None  # keep | discard | crash | rejected; None while in flight
    metric: float | None = None
    memory_gb: float = 0.0
    reason: str = ""
    summary: dict = field(default_factory=dict)
    seconds: float = 0.0
    delta_best: float | None = None
    delta_baseline: float | None = None
    confidence: float | None = None  # the gain over the best in units of the noise spread
    verdict: str = ""  # the keep policy's decision, in words
    repair_of: int | None = None  # the crashed experiment this one tries to fix
    worker: int = 0  # which parallel worker ran it (journals without the field: worker 0)
    # A run stopped early because its loss curve fell behind the best's beyond the noise:
    # {"progress": %, "loss": ..., "best_loss": ..., "sigmas": ...}; its status is "discard".
    early_stop: dict | None = None
    session: str = ""  # the session it belongs to (set for experiments of earlier sessions)

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
            )
            self._by_n[exp.n] = exp
            self.experiments.append(exp)
        elif kind in ("commit", "run_start", "run_pid", "result") and e.get("n") in self._by_n:
            exp = self._by_n[e["n"]]
            for key in ("commit", "log", "pid", "run_id", "status", "metric", "memory_gb",
                        "reason", "summary", "seconds", "delta_best", "delta_baseline",
                        "confidence", "verdict", "early_stop"):
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
    def in_flight(self) -> Experiment | None:
        last = self.experiments[-1] if self.experiments else None
        return last if last is not None and not last.finished else None

    @property
    def running(self) -> list[Experiment]:
        """Every unfinished experiment (several when parallel workers run at once)."""
        return [e for e in self.experiments if not e.finished]

    @property
    def baseline(self) -> Experiment | None:
        """The first experiment that produced a metric (normally experiment 1)."""
        return next((e for e in self.experiments if e.metric is not None), None)

    @property
    def best(self) -> Experiment | None:
        """The last kept experiment: the commit the branch stands on."""
        kept = [e for e in self.experiments if e.status == "keep"]
        return kept[-1] if kept else None

    @property
    def next_n(self) -> int:
        return self.experiments[-1].n + 1 if self.experiments else 1
