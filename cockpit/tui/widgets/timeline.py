"""The timeline: one row per experiment, newest first, updated in place as results land.

The columns fit the pane: the description keeps at least DESCRIPTION_MIN characters
when the pane has room for them, a one-character status mark stands in for the status
word, and delta, commit and memory join only where there is room to spare. The verdict
column says the judgement where the result is: `+2.3x` (a keep, in units of the noise),
`noise` (better, but within it), `-1.1x`, `stop@40%` (stopped early), or the start of a
crash's reason. Rows can be marked for a comparison, and `find` searches them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from rich.text import Text
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable

from cockpit.tui.widgets.row_order import RowOrder

STATUS_STYLE = {"keep": "green", "discard": "yellow", "crash": "red", "rejected": "magenta",
                None: "cyan"}
# The chart's markers, so a row and its point read alike.
STATUS_MARK: dict[str | None, str] = {"keep": "●", "discard": "○", "crash": "x", "rejected": "-"}
LIVE_MARK = {"running": "▶", "awaiting": "?", "proposed": "·", "2nd look": "↻", "queued": "·",
             "stopped": "■"}  # stopped: unfinished, and no session runs it any more
STOPPED_MARK = "◇"  # stopped early: as the chart draws it
MARK = "◆"  # a row marked for comparison
REPORTED_MARK = "ʳ"  # after a value train.py reported (cockpit did not measure it)
DESCRIPTION_MIN = 28  # characters of description kept whenever the pane allows it
# optional columns (delta, then commit, memory) join only while the description keeps this
# many: at 120x40, the delta; from about 140 columns, the commit and memory as well
DESCRIPTION_ROOMY = 28
VERDICT_WIDTH = 10
EXIT_CODE = re.compile(r"^exit code -?\d+:\s*")
EXCEPTION_NAME = re.compile(r"^[A-Za-z_.]*(Error|Exception):\s*(?=\S)")


@dataclass(frozen=True)
class Row:
    """What the timeline shows of one experiment (no dependency on the journal's types)."""
    n: int
    commit: str
    metric: float | None
    delta: float | None
    status: str | None  # None while it is proposed or running
    memory_gb: float
    description: str
    live_status: str = "running"  # what to print while status is None
    worker: int = 0  # the parallel worker that ran it
    confidence: float | None = None  # the gain over the bar in units of the noise
    reason: str = ""  # why it crashed or was rejected
    stopped_at: float | None = None  # percent of the budget where it was stopped early
    reported: bool = False  # its value is what train.py printed, not cockpit's measurement
    runs: int = 1  # the runs its value is the mean of (its commit's, as the judge scores it)
    gain: float | None = None  # its improvement over the best before it (> 0: better)
    seconds: float = 0.0  # how long its run took
    line: int = 0  # the line of the search tree it builds on (0: the session's own)

    @property
    def verdict(self) -> str:
        """The judgement in a few characters."""
        if self.status is None:
            return self.live_status
        if self.status == "crash":
            return short_reason(self.reason) or "crash"
        if self.status == "rejected":
            return "rejected"
        if self.stopped_at is not None:
            return f"stop@{self.stopped_at:.0f}%"
        c = self.confidence
        if c is None:
            return self.status
        if self.status == "discard" and c > 0:
            return "noise"
        return f"{c:+.0f}x" if abs(c) >= 100 else f"{c:+.1f}x"

    def verdict_style(self) -> str:
        if self.status is None or self.status in ("crash", "rejected"):
            return STATUS_STYLE.get(self.status, "")
        if self.status == "keep":
            return "green"
        return "yellow" if self.verdict == "noise" else "dim"

    def cells(self, columns: list[Column], marked: bool = False) -> list[Text]:
        """The row's cells for `columns`, each exactly its column's width."""
        return [_fit(self._value(c.key, marked), c) for c in columns]

    def _value(self, key: str, marked: bool) -> Text:
        if key == "n":
            return Text(str(self.n))
        if key == "gpu":
            return Text(str(self.worker))
        if key == "mark":  # a row marked for a comparison says so here: nothing shifts
            if marked:
                return Text(MARK, style="bold magenta")
            mark = STATUS_MARK.get(self.status) or LIVE_MARK.get(self.live_status, "▶")
            if self.stopped_at is not None:
                mark = STOPPED_MARK
            return Text(mark, style=STATUS_STYLE.get(self.status, ""))
        if key == "status":
            return Text(self.status or self.live_status, style=STATUS_STYLE.get(self.status, ""))
        if key == "metric":
            if self.metric is None:
                return Text("")
            # a value train.py printed (no artifact measured) is marked, dim: not cockpit's;
            # a mean of several runs carries their count
            mark = REPORTED_MARK if self.reported else runs_mark(self.runs)
            return Text.assemble((f"{self.metric:.6f}", "dim" if self.reported else ""),
                                 (mark, "dim"))
        if key == "verdict":
            return Text(self.verdict, style=self.verdict_style())
        if key == "delta":
            style = "" if self.delta is None else "green" if self.delta < 0 else "red"
            return Text("" if self.delta is None else f"{self.delta:+.6f}", style=style)
        if key == "commit":
            return Text(self.commit[:7])
        if key == "mem":
            return Text("" if not self.memory_gb else f"{self.memory_gb:.1f}")
        description = Text(" ".join(self.description.split()))
        if self.line:  # a row off the session's own line says which: └2
            description = Text.assemble((f"└{self.line} ", "bold cyan"), description)
        return description

    def matches(self, needle: str) -> bool:
        """Whether `needle` (lower case) is in the row's n, description, status or verdict."""
        haystack = f"#{self.n} {'└' + str(self.line) + ' ' if self.line else ''}" \
                   f"{self.description} {self.status or self.live_status} " \
                   f"{self.verdict} {self.commit[:7]}"
        return needle in haystack.lower()


def runs_mark(runs: int) -> str:
    """A value's run count, as one superscript cell (" " for a single run)."""
    if runs <= 1:
        return " "
    return "²³⁴⁵⁶⁷⁸⁹"[runs - 2] if runs <= 9 else "⁺"


def short_reason(reason: str) -> str:
    """A crash reason's telling start: "exit code 1: RuntimeError: CUDA out of memory"
    -> "CUDA out of memory" (the whole reason is in the diff view's note)."""
    return EXCEPTION_NAME.sub("", EXIT_CODE.sub("", reason.strip()))


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int  # content width; a one-space gap follows every column but the last
    right: bool = False  # right-justified (numbers)


def _fit(text: Text, column: Column) -> Text:
    """`text` cut (with an ellipsis) or padded to the column's width, plus the gap."""
    text = text.copy()
    text.truncate(column.width, overflow="ellipsis", pad=False)
    pad = column.width - text.cell_len
    if column.right:
        text = Text.assemble(" " * pad, text)
    else:
        text.append(" " * pad)
    if column.key != "description":
        text.append(" ")
    return text


def layout_columns(width: int, metric: str, n_width: int, show_worker: bool) -> list[Column]:
    """The columns that fit `width` cells: the essential ones, then (while the
    description keeps DESCRIPTION_ROOMY characters) delta, commit and memory. The
    description takes the rest, at least DESCRIPTION_MIN where possible."""
    columns = [Column("n", "n", n_width, right=True)]
    if show_worker:
        columns.append(Column("gpu", "gpu", 3, right=True))
    columns += [Column("mark", "", 1), Column("metric", metric, 9, right=True),
                Column("verdict", "verdict", VERDICT_WIDTH)]
    # (the status word would repeat the mark and the verdict: the delta matters more)
    extras = [(None, Column("delta", "delta", 9, True)), (None, Column("commit", "commit", 7)),
              (None, Column("mem", "mem", 4, True))]

    def used(cols: list[Column]) -> int:
        return sum(c.width + 1 for c in cols)

    for replaces, column in extras:
        trial = [c for c in columns if c.key != replaces]
        trial.insert(len(trial) if replaces is None else columns.index(
            next(c for c in columns if c.key == replaces)), column)
        if width - used(trial) >= DESCRIPTION_ROOMY:
            columns = trial
    room = max(width - used(columns), min(DESCRIPTION_MIN, 12))
    return columns + [Column("description", "description", room)]


FIRST_ROWS = 100  # rows added before the first paint (more than a screen shows)
MORE_ROWS = 400  # rows added after each paint until a long session is all in


class Timeline(DataTable):
    """The experiments, newest first. Methods called down: `set_rows`, `select`,
    `toggle_mark`, `find`. Messages up: `Selected(n)` as the cursor moves, `Opened(n)`
    on enter, `MarksChanged(marked)`."""

    DEFAULT_CLASSES = "pane"

    class Selected(Message):
        """The cursor moved to experiment n (the user, or a follow of the newest one)."""

        def __init__(self, n: int) -> None:
            super().__init__()
            self.n = n

    class Opened(Message):
        """Enter on experiment n: show it whole (its full log and diff)."""

        def __init__(self, n: int) -> None:
            super().__init__()
            self.n = n

    class MarksChanged(Message):
        def __init__(self, marked: list[int]) -> None:
            super().__init__()
            self.marked = marked

    def __init__(self, metric: str = "val_bpb", **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, cell_padding=0, **kwargs)
        self.metric = metric
        self._rows: dict[int, Row] = {}
        self._marked: list[int] = []
        self.show_workers = False  # a worker column, once a second worker shows up
        self.column_layout: list[Column] = []
        self._unshown: list[int] = []  # older rows still to add, newest first (a long session)
        self.row_order = RowOrder()  # sorted or filtered by the human (o, f, F)

    def set_metric(self, name: str) -> None:
        """The metric column's heading (the session's metric, once the journal names it)."""
        if name != self.metric:
            self.metric = name
            self._relayout()

    @property
    def columns_shown(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.column_layout)

    @property
    def marked(self) -> list[int]:
        """Experiments marked for comparison, oldest first."""
        return sorted(self._marked)

    def on_mount(self) -> None:
        self._relayout()

    def on_resize(self) -> None:
        self._relayout()

    def _fit_width(self) -> int:
        # the vertical scrollbar's room is kept either way, so rows never jiggle
        return max(20, self.size.width - self.styles.scrollbar_size_vertical)

    def _relayout(self, rebuild: bool = False) -> None:
        if not self.size.width:  # not laid out yet: the first resize builds it
            return
        n_width = max(2, len(str(max(self._rows, default=0))))
        layout = layout_columns(self._fit_width(), self.metric, n_width, self.show_workers)
        if layout == self.column_layout and not rebuild:
            return
        selected = self.selected_n
        self.column_layout = layout
        self.clear(columns=True)
        for column in layout:
            self.add_column(column.label, key=column.key,
                            width=column.width + (0 if column.key == "description" else 1))
        self._unshown = self.row_order.shown(self._rows.values())
        self._add_unshown(FIRST_ROWS)
        if selected is not None:
            self.select(selected)

    def reorder(self, row_order: RowOrder) -> None:
        """Sort or filter the rows (the cursor stays on its experiment while it is shown)."""
        if row_order != self.row_order:
            self.row_order = row_order
            self._relayout(rebuild=True)

    def _add_unshown(self, count: int) -> None:
        """Add the next `count` older rows; the rest follow after the next paint, so a long
        session's newest rows are on screen at once."""
        chunk, self._unshown = self._unshown[:count], self._unshown[count:]
        for n in chunk:
            if str(n) not in self.rows:
                self.add_row(*self._cells(self._rows[n]), key=str(n))
        if self._unshown:
            self.call_after_refresh(self._add_unshown, MORE_ROWS)

    def _cells(self, row: Row) -> list[Text]:
        return row.cells(self.column_layout, row.n in self._marked)

    def set_rows(self, rows: list[Row]) -> None:
        """Bring the table to `rows` (any order): changed rows update in place, new ones
        go on top. The cursor stays on its experiment, or follows the newest when it was
        on the newest."""
        selected = self.selected_n
        following = selected is None or selected == max(self._rows, default=None)
        widest = len(str(max(self._rows, default=0)))
        if not self.show_workers and any(row.worker for row in rows):
            self.show_workers = True
        new = {row.n for row in rows if row.n not in self._rows}
        for row in rows:
            self._rows.setdefault(row.n, row)
        if ((self.show_workers and "gpu" not in self.columns_shown)
                or len(str(max(self._rows, default=0))) != widest):
            self._relayout()  # rebuilt with the new column widths
        if not self.column_layout:
            for row in rows:
                self._rows[row.n] = row
            return  # not laid out yet: the first resize shows them
        if not self.row_order.plain:  # sorted or filtered: a changed row may move or hide
            changed = [row for row in rows if row.n in new or self._rows[row.n] != row]
            for row in changed:
                self._rows[row.n] = row
            if changed:
                self._relayout(rebuild=True)
            return
        added = False
        unshown = set(self._unshown)
        for row in rows:
            key = str(row.n)
            if key in self.rows and self._rows[row.n] == row:
                continue
            self._rows[row.n] = row
            if row.n in unshown:
                continue  # its turn comes with the rest of the older rows
            if key not in self.rows:
                self.add_row(*self._cells(row), key=key)
                added = True
            else:
                self._update_row(row)
        if added:
            self.sort("n", key=lambda cell: -_number(cell))
        if not self._rows:
            return
        self.select(max(self._rows) if following or selected is None else selected)

    def _update_row(self, row: Row) -> None:
        for column, value in zip(self.column_layout, self._cells(row)):
            self.update_cell(str(row.n), column.key, value)

    def select(self, n: int) -> None:
        if n in self._rows and str(n) in self.rows:
            index = self.get_row_index(str(n))
            if index != self.cursor_row:
                self.move_cursor(row=index, animate=False)
            else:  # rows moved under a still cursor (a sort): say what it is on now
                self.post_message(self.Selected(n))

    @property
    def selected_n(self) -> int | None:
        if not self._rows or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        return self._n_at(self.cursor_row)

    def _n_at(self, row: int) -> int:
        """The experiment number of the row at this index."""
        key = self.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value
        assert key is not None  # every row is added with its n as its key
        return int(key)

    @property
    def shown_numbers(self) -> list[int]:
        """The experiments the sort and filter show, in display order."""
        return self.row_order.shown(self._rows.values())

    @property
    def numbers(self) -> list[int]:
        """Experiment numbers, oldest first."""
        return sorted(self._rows)

    def toggle_mark(self, n: int | None = None) -> bool:
        """Mark experiment n (default: the selected one) for a comparison, or unmark it.
        Returns whether it is marked now."""
        n = self.selected_n if n is None else n
        if n is None or n not in self._rows:
            return False
        if n in self._marked:
            self._marked.remove(n)
        else:
            self._marked.append(n)
        if str(n) in self.rows:
            self._update_row(self._rows[n])
        self.post_message(self.MarksChanged(self.marked))
        return n in self._marked

    def clear_marks(self) -> None:
        marked, self._marked = self._marked, []
        for n in marked:
            if str(n) in self.rows:
                self._update_row(self._rows[n])
        if marked:
            self.post_message(self.MarksChanged([]))

    def find(self, text: str, forward: bool = True) -> int | None:
        """Select the next row (down the table, older; `forward=False`: up) after the
        cursor whose n, description, status or verdict contains `text` (any case),
        wrapping around. Returns its experiment number, or None when none matches."""
        needle = text.strip().lower()
        if not needle or not self._rows:
            return None
        order = [self._n_at(i) for i in range(self.row_count)]
        start = self.cursor_row if 0 <= self.cursor_row < len(order) else -1
        step = 1 if forward else -1
        for offset in range(1, len(order) + 1):
            n = order[(start + step * offset) % len(order)]
            if self._rows[n].matches(needle):
                self.select(n)
                return n
        return None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        key = event.row_key.value if event.row_key is not None else None
        # a highlight queued before a sort names a row the cursor is no longer on
        if key is not None and int(key) == self.selected_n:
            self.post_message(self.Selected(int(key)))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key is not None and event.row_key.value is not None:
            self.post_message(self.Opened(int(event.row_key.value)))


def _number(cell: Text) -> int:
    return int("".join(ch for ch in cell.plain if ch.isdigit()) or 0)
