"""Change a proposal before approving it (e on a pending proposal): the proposed file in an
editor; ctrl+s approves the edited version (the session checks it as it checks an agent's
answer, and records it as edited by the human), escape leaves it as it was."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea


class ProposalEditor(ModalScreen[str | None]):
    """Dismisses with the edited text, or None (escape: nothing changes)."""

    BINDINGS = [Binding("ctrl+s", "approve", "Approve as edited", priority=True),
                Binding("escape", "cancel", "Cancel", priority=True)]

    def __init__(self, n: int, name: str, source: str) -> None:
        super().__init__()
        self.n, self.source = n, source
        self.file_name = name  # not `name`: a Textual node's name is read-only

    def compose(self) -> ComposeResult:
        with Vertical(id="proposal-editor"):
            yield Static(f" #{self.n}: {self.file_name} as proposed. ctrl+s approves your version, "
                         "escape leaves it as it was", id="proposal-editor-title", markup=False)
            yield TextArea(self.source, language=_language(self.file_name), soft_wrap=False,
                           show_line_numbers=True, id="proposal-text")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_approve(self) -> None:
        self.dismiss(self.query_one(TextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _language(name: str) -> str | None:
    if not name.endswith(".py"):
        return None
    try:
        import tree_sitter_python  # noqa: F401
    except ImportError:
        return None
    return "python"
