"""`?`: every key of the screen below, generated from its bindings so it never drifts."""
from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, bindings: list[tuple[str, str]], intro: str = "") -> None:
        super().__init__()
        self.bindings_list = bindings  # (key display, description)
        self.intro = intro

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for key, description in self.bindings_list:
            table.add_row(key, description)
        with VerticalScroll(classes="dialog", id="help-dialog"):
            yield Static("Keys", classes="dialog-question")
            if self.intro:
                yield Static(self.intro, classes="dialog-hint")
            yield Static(table)
            yield Static("ctrl+p: command palette   escape: close", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
