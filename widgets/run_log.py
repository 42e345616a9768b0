"""The live run log: streamed training output with `\\r` progress shown as one updating line.

Completed lines go to a `Log` (bounded by max_lines); the line being rewritten by `\\r`
shows in a one-line strip under it. Auto-scroll follows the end until the user scrolls
up (Log.write_lines only scrolls when the view is already at the end).
"""
from __future__ import annotations

import time
from collections import deque

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Log, Static

MAX_LINES = 2000
PROGRESS_INTERVAL = 0.5  # seconds between redraws of the progress strip
MAX_PARTIAL = 4096  # a "line" that never ends (no \n for minutes) stays bounded


class LineAssembler:
    """Turns output chunks into finished lines, resolving `\\r` rewrites.

    A line rewritten with `\\r` many times finishes as its last non-empty version, as a
    terminal would show it."""

    def __init__(self) -> None:
        self.partial = ""

    def feed(self, text: str) -> list[str]:
        pieces = (self.partial + text).split("\n")
        tail = pieces.pop()
        done = [_visible(p) for p in pieces]
        if "\r" in tail:
            visible = _visible(tail)
            # keep a trailing \r so the next text starts a fresh rewrite of the line
            tail = visible + "\r" if tail.endswith("\r") else visible
        self.partial = tail[-MAX_PARTIAL:]
        return done

    @property
    def current(self) -> str:
        """What the unfinished line shows now."""
        return _visible(self.partial)


def _visible(line: str) -> str:
    if "\r" not in line:
        return line
    for segment in reversed(line.split("\r")):
        if segment:
            return segment
    return ""


class FollowLog(Log):
    """A Log that keeps to its end until the user scrolls up, and again once they scroll
    back down. (Log's own check, "at the end before this write", is lost in a flood when
    the view lags a write behind.)"""

    following = True

    def action_scroll_up(self) -> None:
        self.following = False
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self.following = False
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self.following = False
        super().action_scroll_home()

    def _on_mouse_scroll_up(self, event) -> None:
        self.following = False
        super()._on_mouse_scroll_up(event)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value >= self.max_scroll_y:
            self.following = True

    def append(self, lines: list[str]) -> None:
        self.write_lines(lines, scroll_end=False)
        if self.following:
            # after the refresh, when the new virtual size is known
            self.scroll_end(animate=False, immediate=False, x_axis=False)


class RunLog(Vertical):
    """A bounded, streaming log with a progress strip. Hidden, it queues (bounded) and
    catches up when shown, so a collapsed pane costs no rendering."""

    DEFAULT_CLASSES = "pane"

    def __init__(self, max_lines: int = MAX_LINES, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_lines = max_lines
        self.assembler = LineAssembler()
        self._pending: deque[str] = deque(maxlen=max_lines)
        self.skipped = 0  # lines dropped before they could be shown (a flood)
        self._shown_progress = ""
        self._progress_at = 0.0

    def compose(self) -> ComposeResult:
        yield FollowLog(max_lines=self.max_lines, id="run-log-lines")
        yield Static("", id="run-log-progress", markup=False)

    @property
    def log_widget(self) -> FollowLog:
        return self.query_one("#run-log-lines", FollowLog)

    def feed(self, text: str, skipped: int = 0) -> None:
        """Take a batch of raw output (as printed, with \\r and \\n)."""
        lines = self.assembler.feed(text)
        overflow = len(self._pending) + len(lines) - self.max_lines
        if skipped or overflow > 0:
            self.skipped += skipped + max(overflow, 0)
        self._pending.extend(lines[-self.max_lines:])
        self.flush()

    def flush(self) -> None:
        if not self.display or not self.is_mounted:
            return
        log = self.log_widget
        if self.skipped:
            log.append([f"... {self.skipped} lines not shown (see run.log)"])
            self.skipped = 0
        if self._pending:
            log.append(list(self._pending))
            self._pending.clear()
        current = self.assembler.current
        now = time.monotonic()
        # a progress line rewritten many times a second is shown at most twice a second
        if current != self._shown_progress and (now - self._progress_at >= PROGRESS_INTERVAL
                                                or not current):
            self._shown_progress, self._progress_at = current, now
            self.query_one("#run-log-progress", Static).update(current)

    def reset(self, text: str = "") -> None:
        """Start over (a new run, or a finished run's log loaded for review)."""
        self.assembler = LineAssembler()
        self._pending.clear()
        self.skipped = 0
        if self.is_mounted:
            self.log_widget.clear()
            self.query_one("#run-log-progress", Static).update("")
        self._shown_progress = ""
        if text:
            self.feed(text)

    @property
    def last_line(self) -> str:
        """The newest text on screen (the progress strip, else the last finished line)."""
        if self.assembler.current:
            return self.assembler.current
        if self._pending:
            return self._pending[-1]
        lines = self.log_widget.lines if self.is_mounted else []
        return lines[-1] if lines else ""
