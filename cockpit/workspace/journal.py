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
from pathlib import Path

from cockpit.domain.reading import parse_lines
from cockpit.domain.state import Experiment, SessionState
from cockpit.workspace.paths import all_journals


class Journal:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._checked_end = False
        self.damaged: list[str] = []  # the lines the last read() skipped, and why

    def append(self, event: dict) -> dict:
        """Write one event (its kind in "event") with the time it is written; the record."""
        record = {"event": event["event"], "time": round(time.time(), 3),
                  **{k: v for k, v in event.items() if k != "event"}}
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
        self.damaged = []
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


def earlier_sessions(workspace: Path, tag: str) -> list[Experiment]:
    """The finished experiments of every other session in the workspace, oldest session
    first, each with its `session` set (what the agents remember)."""
    found = []
    journals = sorted(all_journals(workspace),
                      key=lambda p: p.stat().st_mtime)
    for path in journals:
        if path.parent.name == tag:
            continue
        state = SessionState.from_events(Journal(path).read())
        for exp in state.finished:
            exp.session = path.parent.name
            found.append(exp)
    return found
