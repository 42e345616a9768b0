"""The live run log: streamed training output with `\\r` progress shown as one updating line.

Completed lines go to a `Log` (bounded by max_lines); the line being rewritten by `\\r`
shows in a strip right under the last line, wrapped between its ` | ` fields so every
field (through `remaining:`) is on screen in a narrow pane. A finished line wider than the
pane is wrapped the same way when it is shown (a progress line between its fields, any
other at the edge, its rest indented), so nothing is cut at the pane's edge and no
scrollbar runs across the middle of the pane. Auto-scroll follows the end
until the user scrolls up (Log.write_lines only scrolls when the view is already at the
end). `find` scrolls to the next line holding a text and highlights every match.
"""
from __future__ import annotations

import re
import time
from collections import deque

from rich.highlighter import Highlighter
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Log, Static

MAX_LINES = 2000
PROGRESS_INTERVAL = 0.5  # seconds between redraws of the progress strip
MAX_PARTIAL = 4096  # a "line" that never ends (no \n for minutes) stays bounded
FIELD_SEPARATOR = " | "  # between the fields of a reference-style progress line
STRIP_MAX_ROWS = 4  # a partial line that is not a progress line (no fields) is cut there
MATCH_STYLE = "bold reverse"
LOG_NAME = "run.log"  # where a run's whole output is, for the notice of lines not shown


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


def wrap_fields(line: str, width: int) -> list[str]:
    """A progress line cut into rows of at most `width` cells, between its ` | ` fields
    (a field wider than the row is cut by the row's own wrapping)."""
    if width <= 0 or len(line) <= width or FIELD_SEPARATOR not in line:
        return [line]
    rows: list[str] = []
    for field in line.split(FIELD_SEPARATOR):
        if rows and len(rows[-1]) + len(FIELD_SEPARATOR) + len(field) <= width:
            rows[-1] += FIELD_SEPARATOR + field
        else:
            rows.append(field)
    return rows


def wrap_line(line: str, width: int) -> list[str]:
    """A finished line as rows of at most `width` cells: a progress line between its
    fields, anything else at the edge; rows after the first are indented."""
    if width <= 2 or len(line) <= width:
        return [line]
    rows: list[str] = []
    for piece in wrap_fields(line, width - 2):
        while piece:  # a piece wider than its row is cut at the edge
            room = width - 2 if rows else width
            rows.append(("  " if rows else "") + piece[:room])
            piece = piece[room:]
    return rows


class MatchHighlighter(Highlighter):
    """Highlights every occurrence of a search text, in any case."""

    def __init__(self, text: str) -> None:
        self.pattern = re.compile(re.escape(text), re.IGNORECASE)

    def highlight(self, text: Text) -> None:
        text.highlight_regex(self.pattern, MATCH_STYLE)


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

    def watch_show_horizontal_scrollbar(self, shown: bool) -> None:
        # a long line brought a scrollbar in and the view lost a row: stay at the end
        if self.following:
            self.scroll_end(animate=False, immediate=False, x_axis=False)

    def append(self, lines: list[str]) -> None:
        self.write_lines(lines, scroll_end=False)
        if self.following:
            # after the refresh, when the new virtual size is known
            self.scroll_end(animate=False, immediate=False, x_axis=False)

    def show_line(self, index: int) -> None:
        """Scroll so line `index` sits a third of the way down, and stop following."""
        self.following = False
        self.scroll_to(y=max(0, index - self.size.height // 3), animate=False,
                       immediate=True)

    def set_match(self, text: str) -> None:
        """Highlight `text` wherever it occurs ("" clears it)."""
        self.highlight = bool(text)
        if text:
            self.highlighter = MatchHighlighter(text)
        self.refresh_lines(0, len(self.lines))


class RunLog(Vertical):
    """A bounded, streaming log with a progress strip. Hidden, it queues (bounded) and
    catches up when shown, so a collapsed pane costs no rendering.

    Methods called down: `feed(text)`, `reset(text)`, `flush()`, `find(text)`."""

    DEFAULT_CLASSES = "pane"

    def __init__(self, max_lines: int = MAX_LINES, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_lines = max_lines
        self.assembler = LineAssembler()
        self._pending: deque[str] = deque(maxlen=max_lines)
        self.skipped = 0  # lines dropped before they could be shown (a flood)
        self._shown_progress = ""
        self._progress_at = 0.0
        self._strip_rows = 0
        self._progress_timer: Timer | None = None  # a held-back progress update, due soon
        self._found: int | None = None  # the line the last find landed on
        self._query = ""

    def compose(self) -> ComposeResult:
        yield FollowLog(max_lines=self.max_lines, id="run-log-lines")
        yield Static("", id="run-log-progress", markup=False)

    @property
    def log_widget(self) -> FollowLog:
        return self.query_one("#run-log-lines", FollowLog)

    def on_resize(self) -> None:
        self._show_progress(self._shown_progress)
        self._fit()

    def on_show(self) -> None:
        self.flush()  # shown again (a tab, a layout): catch up on what was queued

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
        if self._pending and log.scrollable_content_region.width <= 2:
            self.call_after_refresh(self.flush)  # not laid out yet: lines wrap to its width
            return
        width = log.scrollable_content_region.width
        rows = [row for line in self._pending for row in wrap_line(line, width)]
        self._pending.clear()
        if self.skipped:  # the notice is within the max_lines kept, so it is never pruned
            notice = f"... {{}} lines not shown (see {LOG_NAME})"
            room = self.max_lines - len(wrap_line(notice.format(self.skipped), width))
            cut = max(0, len(rows) - room)
            rows = wrap_line(notice.format(self.skipped + cut), width) + rows[cut:]
            self.skipped = 0
        if rows:
            log.append(rows)
        self._update_progress()

    def _update_progress(self) -> None:
        # a progress line rewritten many times a second is shown at most twice a second;
        # one held back is shown when its time comes, even if no output follows it
        current = self.assembler.current
        if current == self._shown_progress or not self.display:
            return
        wait = self._progress_at + PROGRESS_INTERVAL - time.monotonic()
        if wait <= 0 or not current:
            self._progress_at = time.monotonic()
            self._show_progress(current)
        elif self._progress_timer is None:
            self._progress_timer = self.set_timer(wait, self._progress_due)

    def _progress_due(self) -> None:
        self._progress_timer = None
        self._update_progress()

    def _show_progress(self, line: str) -> None:
        self._shown_progress = line
        if not self.is_mounted:
            return
        width = self.content_size.width
        rows = wrap_fields(line, width) if line else []
        if width > 0:  # a row wider than the pane wraps: count what it takes
            rows = [row[i:i + width] for row in rows for i in range(0, max(1, len(row)), width)]
        rows = rows[:STRIP_MAX_ROWS]
        self.query_one("#run-log-progress", Static).update("\n".join(rows))
        if len(rows) != self._strip_rows:
            self._strip_rows = len(rows)
            self._fit()

    def _fit(self) -> None:
        """The log grows with its lines (height: auto) up to the room the strip leaves:
        the strip sits right under the last line, never under a tall blank gap."""
        if not self.is_mounted:
            return
        room = max(1, self.content_size.height - self._strip_rows)
        log = self.log_widget
        if log.styles.max_height is None or log.styles.max_height.value != room:
            log.styles.max_height = room

    def reset(self, text: str = "") -> None:
        """Start over (a new run, or a finished run's log loaded for review)."""
        self.assembler = LineAssembler()
        self._pending.clear()
        self.skipped = 0
        self._found, self._query = None, ""
        if self.is_mounted:
            self.log_widget.clear()
            self.log_widget.set_match("")
            self.log_widget.following = True
            self._show_progress("")
            self._fit()
        self._shown_progress = ""
        if text:
            self.feed(text)

    def find(self, text: str, forward: bool = True) -> int | None:
        """Scroll to the next line (after the last match; `forward=False`: before it)
        that contains `text`, in any case, wrapping around; every match is highlighted
        and the log stops following the end. Returns the line's index, or None."""
        self.flush()
        needle = text.strip().lower()
        log = self.log_widget if self.is_mounted else None
        if log is None or not needle:
            if log is not None:
                log.set_match("")
            self._query = ""
            return None
        if needle != self._query:
            self._query, self._found = needle, None
            log.set_match(text.strip())
        lines = log.lines
        count = len(lines)
        if not count:
            return None
        if self._found is not None and self._found < count:
            start = self._found
        elif forward:  # a new search starts at the top of the view (as `less` does)
            start = log.scroll_offset.y - 1
        else:
            start = min(count, log.scroll_offset.y + log.size.height)
        step = 1 if forward else -1
        for offset in range(1, count + 1):
            index = (start + step * offset) % count
            if needle in lines[index].lower():
                self._found = index
                log.show_line(index)
                return index
        return None
