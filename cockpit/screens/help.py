"""`?`: every key, by section, generated from the keymap so it never drifts."""
from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from cockpit.keymap import help_rows


class HelpScreen(ModalScreen[None]):
    """The keys, in sections. By default the rows come from `cockpit.keymap` with the
    user's `keymap` applied; `rows` replaces them ((key, description) pairs, or
    (section, key, description) triples) for a screen with keys of its own."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, rows: list[tuple[str, ...]] | None = None, intro: str = "",
                 keymap: Mapping[str, str] | None = None) -> None:
        super().__init__()
        rows = help_rows(keymap) if rows is None else rows
        self.rows = [row if len(row) == 3 else ("", *row) for row in rows]
        self.intro = intro

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        section = None
        for name, key, description in self.rows:
            if name != section:
                section = name
                if name:
                    table.add_row(Text(name, style="bold underline"), "")
            table.add_row(key, description)
        with VerticalScroll(classes="dialog", id="help-dialog"):
            yield Static("Keys", classes="dialog-question")
            if self.intro:
                yield Static(self.intro, classes="dialog-hint")
            yield Static(table, id="help-table")
            yield Static("escape: close", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
