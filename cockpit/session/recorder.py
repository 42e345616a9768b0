"""The one writer of a session's journal.

Every thread that has something to journal (the loop, the agents on their threads, the
server) asks the recorder: an event is checked against its kind's declaration (a field it
does not declare is a bug, raised at the call), appended to the journal (flushed, fsynced),
folded into the session's state, and handed to every observer (the headless printer, the
server's feed of the clients), in journal order, numbered. An observer that raises is
dropped, its traceback on stderr (the session log): no observer can stop the session.
"""
from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from cockpit import protocol
from cockpit.domain import events
from cockpit.domain.state import SessionState
from cockpit.workspace.journal import Journal

Observer = Callable[[dict[str, Any]], None]


class Recorder:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.events: list[dict[str, Any]] = []
        self.state = SessionState()
        self.observers: list[Observer] = []
        # held while an event is written and handed out: a subscriber that takes the
        # backlog under it misses no event and sees none twice
        self.lock = threading.RLock()

    def load(self) -> list[str]:
        """Read the journal as it is (a resumed session's); the lines skipped as damaged."""
        with self.lock:
            self.events = self.journal.read()
            self.state = SessionState.from_events(self.events)
            return list(self.journal.damaged)

    def record(self, kind: str, /, **fields: Any) -> dict[str, Any]:
        """Journal one event of `kind` (see domain.events); the record written."""
        event = events.make(kind, **fields)
        with self.lock:
            record = self.journal.append(event.record())
            self.events.append(record)
            self.state.apply(record)
            self.emit({"type": protocol.JOURNAL, "start": len(self.events) - 1, "events": [record]})
        return record

    def record_quietly(self, kind: str, /, **fields: Any) -> None:
        """Journal what must still be said however the session ends (a full disk included):
        a record that cannot be written is said on stderr instead."""
        try:
            self.record(kind, **fields)
        except Exception as exc:
            print(f"cockpit: could not journal {kind} ({exc})", file=sys.stderr, flush=True)

    def emit(self, message: dict[str, Any]) -> None:
        """Hand a message (journal events, the live state, a run's output) to every observer;
        one that raises is said once and dropped."""
        for observer in list(self.observers):
            try:
                observer(message)
            except Exception:
                self._drop(observer)

    def _drop(self, observer: Observer) -> None:
        if observer in self.observers:
            self.observers.remove(observer)
        name = getattr(observer, "__qualname__", type(observer).__name__)
        print(f"cockpit: {name} failed and no longer sees the session (the research goes "
              f"on):\n{traceback.format_exc()}", file=sys.stderr, flush=True)
