"""`?`: every key, by section, generated from the keymap so it never drifts."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import groupby

from rich.cells import cell_len
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from cockpit.tui.keymap import help_rows


class HelpScreen(ModalScreen[None]):
    """The keys, in sections. By default the rows come from `cockpit.keymap` with the
    user's `keymap` applied; `rows` replaces them ((key, description) pairs, or
    (section, key, description) triples) for a screen with keys of its own."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, rows: Sequence[tuple[str, ...]] | None = None, intro: str = "",
                 keymap: Mapping[str, str] | None = None) -> None:
        super().__init__()
        given: Sequence[tuple[str, ...]] = help_rows(keymap) if rows is None else rows
        self.rows = [row if len(row) == 3 else ("", *row) for row in given]
        self.intro = intro

    def compose(self) -> ComposeResult:
        key_width = max((cell_len(key) for _, key, _ in self.rows), default=1)
        sections: list = []
        for name, rows in groupby(self.rows, key=lambda row: row[0]):
            if name:
                sections.append(Text(name, style="bold underline"))
            table = Table.grid(padding=(0, 2))
            table.add_column(style="bold", no_wrap=True, width=key_width)
            table.add_column()
            for _, key, description in rows:
                table.add_row(key, description)
            sections.append(table)
        with VerticalScroll(classes="dialog", id="help-dialog"):
            yield Static("Keys", classes="dialog-question")
            if self.intro:
                yield Static(self.intro, classes="dialog-hint")
            yield Static(Group(*sections), id="help-table")
            yield Static("escape: close", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
