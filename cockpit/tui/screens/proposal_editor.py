"""Change a proposal before approving it (e on a pending proposal): the proposed file in an
editor, its cursor on the first line the proposal changes; ctrl+s approves the edited
version (the session checks it as it checks an agent's answer, and records it as edited by
the human), escape leaves it as it was."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from cockpit.domain.diffs import first_changed_line


class ProposalEditor(ModalScreen[str | None]):
    """Dismisses with the edited text, or None (escape: nothing changes)."""

    BINDINGS = [Binding("ctrl+s", "approve", "Approve as edited", priority=True),
                Binding("escape", "cancel", "Cancel", priority=True)]

    def __init__(self, n: int, name: str, source: str, diff: str = "") -> None:
        super().__init__()
        self.n, self.source = n, source
        self.file_name = name  # not `name`: a Textual node's name is read-only
        self.diff = diff  # the proposal's change: the cursor starts at its first line

    def compose(self) -> ComposeResult:
        with Vertical(id="proposal-editor"):
            yield Static(f" #{self.n}: {self.file_name} as proposed. ctrl+s approves your version, "
                         "escape leaves it as it was", id="proposal-editor-title", markup=False)
            yield TextArea(self.source, language=_language(self.file_name), soft_wrap=False,
                           show_line_numbers=True, id="proposal-text")

    def on_mount(self) -> None:
        text = self.query_one(TextArea)
        text.focus()
        line = min(first_changed_line(self.diff), text.document.line_count - 1)
        text.move_cursor((max(0, line), 0))
        # centred once laid out: before, the editor has no height to centre in
        self.call_after_refresh(text.scroll_cursor_visible, center=True)

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
