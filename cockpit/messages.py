"""Messages from the loop thread to the App (posted, never a direct widget call)."""
from __future__ import annotations

from textual.message import Message


class LoopEvent(Message):
    """A state change from the loop: on_event(kind, data)."""

    def __init__(self, kind: str, data: dict) -> None:
        super().__init__()
        self.kind = kind
        self.data = data


class ApprovalRequested(Message):
    """The loop waits for the human's decision on proposal n."""

    def __init__(self, n: int, description: str, hypothesis: str, diff: str) -> None:
        super().__init__()
        self.n = n
        self.description = description
        self.hypothesis = hypothesis
        self.diff = diff


class LoopFinished(Message):
    """The loop thread ended: why (one line), and whether it was an error."""

    def __init__(self, why: str, error: bool = False) -> None:
        super().__init__()
        self.why = why
        self.error = error
