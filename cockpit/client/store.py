"""What a client reads of a session straight from disk, never writing any of it: the
journal (a session that ended, a replay), a run's log, and the editable file at a commit
(a diff between two experiments, a proposal to edit). The session process is the one
writer of all of it; a client asks the session for everything else.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from cockpit.domain.diffs import unified_diff
from cockpit.workspace.history import History
from cockpit.workspace.journal import Journal
from cockpit.workspace.lock import SessionInfo, read_session
from cockpit.workspace.logs import read_tail
from cockpit.workspace.paths import PROGRAM_NAME, eval_log, journal_path

LOG_TAIL = 200_000  # bytes of a log a view starts from


class SessionStore:
    def __init__(self, workspace: Path, tag: str) -> None:
        self.workspace = workspace
        self.tag = tag
        self.program = workspace / PROGRAM_NAME  # the human's file, edited in the cockpit

    def events(self) -> list[dict]:
        """The whole journal, as recorded so far."""
        return Journal(journal_path(self.workspace, self.tag)).read()

    def follow(self) -> JournalTail:
        """The journal's events as they are appended (a replay of a live session)."""
        return JournalTail(journal_path(self.workspace, self.tag))

    def session(self) -> SessionInfo | None:
        """What the workspace's lock says of the session process (alive or not)."""
        return read_session(self.workspace)

    def log(self, relative: str, max_bytes: int = LOG_TAIL) -> str:
        """The end of a run's log (`relative` as the journal names it), saying where the
        rest is when it is cut."""
        path = self.workspace / relative
        text = read_tail(path, max_bytes)
        try:
            size = os.stat(path).st_size
        except OSError:
            return text
        if size > max_bytes:
            text = f"... (the first {size - len(text.encode())} bytes are in {path})\n" + text
        return text

    def evaluation(self, relative: str, max_bytes: int = LOG_TAIL) -> str:
        """What cockpit's evaluator said of a run (`relative`: the run's log), or ""."""
        return read_tail(eval_log(self.workspace / relative), max_bytes)

    def blob(self, sha: str) -> str:
        """A file as the journal recorded it by its blob (a proposal's source)."""
        with History(self.workspace) as history:
            return history.git("cat-file", "blob", sha)

    def diff(self, older: str, newer: str, name: str) -> str:
        """`name` as changed from commit `older` to commit `newer`."""
        with History(self.workspace) as history:
            return unified_diff(history.file_at(older, name), history.file_at(newer, name),
                                name)


class JournalTail:
    """Reads a JSONL journal incrementally; a torn last line waits for its end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._rest = b""

    def poll(self) -> list[dict]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self.offset:  # replaced: start over
            self.offset, self._rest = 0, b""
        if size == self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(size - self.offset)
        self.offset = size
        lines = (self._rest + data).split(b"\n")
        self._rest = lines.pop()
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue  # torn by a kill mid-write, as Journal.read skips it
        return events
