"""`M`: every message the cockpit showed this time, newest first."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from cockpit.tui.widgets.message_line import Notice


class MessagesScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,M", "close", "Close")]

    def __init__(self, notices: list[Notice]) -> None:
        super().__init__()
        self.notices = notices

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="messages-dialog"):
            yield Static(f"Messages ({len(self.notices)}, newest first)",
                         classes="dialog-question")
            if self.notices:
                yield OptionList(*[Option(n.line()) for n in reversed(self.notices)],
                                 id="messages-list")
            else:
                yield Static("No messages yet.", classes="dialog-hint")
            yield Static("escape closes", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
