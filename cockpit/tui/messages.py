"""Messages from the session's feed to the App (posted from the feed's thread)."""
from __future__ import annotations

from textual.message import Message


class JournalArrived(Message):
    """Journal events, numbered from `start` (the index of the first one)."""

    def __init__(self, start: int, events: list[dict]) -> None:
        super().__init__()
        self.start = start
        self.events = events


class LiveChanged(Message):
    """The session's live state: what runs where, what waits, pauses."""

    def __init__(self, live: dict) -> None:
        super().__init__()
        self.live = live


class SessionGone(Message):
    """The feed closed: the session ended or died, or refused this client (`refused`)."""

    def __init__(self, refused: str = "") -> None:
        super().__init__()
        self.refused = refused


class Answered(Message):
    """The session's answer to a command this client sent."""

    def __init__(self, op: str, answer: dict) -> None:
        super().__init__()
        self.op = op
        self.answer = answer
