"""The steering notes the agent reads (N): each with its id; `d` drops the selected one."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option


class NotesScreen(ModalScreen[int | None]):
    """Dismisses with the id of the note to drop, or None."""

    BINDINGS = [Binding("escape,q", "close", "Close"), Binding("d,delete", "drop", "Drop")]

    def __init__(self, notes: list[dict]) -> None:
        super().__init__()
        self.notes = notes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Steering notes (the agent reads them before each proposal)",
                         classes="dialog-question")
            if self.notes:
                yield OptionList(*[Option(f"{note['id']:>3}  {note['text']}", id=str(note["id"]))
                                   for note in self.notes], id="notes-list")
            else:
                yield Static("No notes yet: n adds one.", classes="dialog-hint")
            yield Static("d drops the selected note · escape closes", classes="dialog-hint")

    def action_drop(self) -> None:
        if not self.notes:
            return
        options = self.query_one(OptionList)
        index = options.highlighted
        note_id = options.get_option_at_index(index).id if index is not None else None
        if note_id is not None:  # every option carries its note's id
            self.dismiss(int(note_id))

    def action_close(self) -> None:
        self.dismiss(None)
