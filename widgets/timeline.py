"""The timeline: one row per experiment, newest first, updated in place as results land."""
from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

COLUMNS = ("n", "commit", "metric", "delta", "status", "mem", "description")
WORKER_COLUMNS = ("n", "gpu") + COLUMNS[1:]  # a session with parallel workers
STATUS_STYLE = {"keep": "green", "discard": "yellow", "crash": "red", "rejected": "magenta",
                None: "cyan"}


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

    def cells(self, show_worker: bool = False) -> tuple:
        metric = "" if self.metric is None else f"{self.metric:.6f}"
        delta = "" if self.delta is None else f"{self.delta:+.6f}"
        status = self.status or self.live_status
        worker = (Text(str(self.worker), justify="right"),) if show_worker else ()
        return (
            Text(str(self.n), justify="right"), *worker, self.commit[:7],
            Text(metric, justify="right"),
            Text(delta, justify="right",
                 style="green" if (self.delta or 0) < 0 else "" if self.delta is None else "red"),
            Text(status, style=STATUS_STYLE.get(self.status, "")),
            Text("" if not self.memory_gb else f"{self.memory_gb:.1f}", justify="right"),
            " ".join(self.description.split()),
        )


class Timeline(DataTable):
    DEFAULT_CLASSES = "pane"

    class Selected(Message):
        """The cursor moved to experiment n (the user, or a follow of the newest one)."""

        def __init__(self, n: int) -> None:
            super().__init__()
            self.n = n

    def __init__(self, metric: str = "val_bpb", **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.metric = metric
        self._rows: dict[int, Row] = {}
        self.show_workers = False  # a worker column, once a second worker shows up

    @property
    def columns_shown(self) -> tuple[str, ...]:
        return WORKER_COLUMNS if self.show_workers else COLUMNS

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for name in self.columns_shown:
            label = self.metric if name == "metric" else name
            self.add_column(label, key=name)

    def set_rows(self, rows: list[Row]) -> None:
        """Bring the table to `rows` (any order): changed rows update in place, new ones
        go on top. The cursor stays on its experiment, or follows the newest when it was
        on the newest."""
        selected = self.selected_n
        following = selected is None or selected == max(self._rows, default=None)
        if not self.show_workers and any(row.worker for row in rows):
            self.show_workers = True  # rebuilt once, with the worker column after n
            self.clear(columns=True)
            self._rows = {}
            self._add_columns()
        added = False
        for row in rows:
            old = self._rows.get(row.n)
            if old == row:
                continue
            if old is None:
                self.add_row(*row.cells(self.show_workers), key=str(row.n))
                added = True
            else:
                for column, value in zip(self.columns_shown, row.cells(self.show_workers)):
                    self.update_cell(str(row.n), column, value, update_width=True)
            self._rows[row.n] = row
        if added:
            self.sort("n", key=lambda cell: -int(cell.plain))
        if not self._rows:
            return
        target = max(self._rows) if following else selected
        self.select(target)

    def select(self, n: int) -> None:
        if n in self._rows:
            index = self.get_row_index(str(n))
            if index != self.cursor_row:
                self.move_cursor(row=index, animate=False)
            else:  # rows moved under a still cursor (a sort): say what it is on now
                self.post_message(self.Selected(n))

    @property
    def selected_n(self) -> int | None:
        if not self._rows or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        key = self.coordinate_to_cell_key((self.cursor_row, 0)).row_key
        return int(key.value)

    @property
    def numbers(self) -> list[int]:
        """Experiment numbers, oldest first."""
        return sorted(self._rows)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        key = event.row_key.value if event.row_key is not None else None
        # a highlight queued before a sort names a row the cursor is no longer on
        if key is not None and int(key) == self.selected_n:
            self.post_message(self.Selected(int(key)))
