"""The cockpit's messages: one line of its own, above the footer, covering nothing.

Every notice (an answer from the session, a saved file, a search with no match) is
written here instead of a toast that would float over the status line, a pane or a
dialog; the newest shows, fading to dim after a while, and `M` lists them all.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

HISTORY = 500  # messages kept for `M`
FRESH = 8.0  # seconds a message stays bright before it dims
SEVERITY_STYLE = {"information": "", "warning": "bold yellow", "error": "bold reverse red"}
SEVERITY_MARK = {"information": "·", "warning": "!", "error": "✗"}


@dataclass(frozen=True)
class Notice:
    at: float  # wall clock
    text: str
    severity: str = "information"

    def line(self, fresh: bool = True, when: bool = True) -> Text:
        """The message on one line (`when`: after its time of day, as the history shows)."""
        style = SEVERITY_STYLE.get(self.severity, "") if fresh else "dim"
        text = Text(no_wrap=True, overflow="ellipsis")
        if when:
            text.append(time.strftime(" %H:%M:%S ", time.localtime(self.at)), style="dim")
        else:
            text.append(" ")
        text.append(f"{SEVERITY_MARK.get(self.severity, '·')} {self.text}", style=style)
        return text


class Notices:
    """The app's messages, newest last (bounded)."""

    def __init__(self) -> None:
        self.items: deque[Notice] = deque(maxlen=HISTORY)

    def add(self, text: str, severity: str = "information") -> Notice:
        notice = Notice(time.time(), " ".join(text.split()), severity)
        self.items.append(notice)
        return notice

    @property
    def latest(self) -> Notice | None:
        return self.items[-1] if self.items else None


class MessageLine(Static):
    """One line: the newest message (bright while fresh), with a hint to the history."""

    DEFAULT_CSS = "MessageLine { height: 1; dock: bottom; margin-bottom: 1; }"

    def __init__(self, **kwargs) -> None:
        super().__init__("", markup=False, **kwargs)
        self.notice: Notice | None = None

    def on_mount(self) -> None:
        self.set_interval(1.0, self._fade)

    def show(self, notice: Notice | None) -> None:
        self.notice = notice
        self.refresh()

    def _fade(self) -> None:
        if self.notice is not None and time.time() - self.notice.at < FRESH + 1.5:
            self.refresh()

    def render(self) -> Text:
        if self.notice is None:
            return Text(" no messages yet", style="dim")
        return self.notice.line(fresh=time.time() - self.notice.at < FRESH, when=False)
