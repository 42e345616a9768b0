"""The search prompt (`/`): one line where the human types what to find in a pane.

It finds nothing itself: enter (or down) posts `Find(text, forward=True)`, up posts
`Find(text, forward=False)`, escape hides it and posts `Closed`. The screen sends each
Find to the pane that was focused when the search opened (`Timeline.find`,
`RunLog.find`, `DiffView.find`) and says when nothing matched.
"""
from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class SearchBar(Input):
    BINDINGS = [
        Binding("escape", "close", "Close the search", show=False),
        Binding("down", "find(True)", "Next match", show=False),
        Binding("up", "find(False)", "Previous match", show=False),
    ]

    class Find(Message):
        def __init__(self, text: str, forward: bool = True) -> None:
            super().__init__()
            self.text = text
            self.forward = forward

    class Closed(Message):
        """The search was closed (escape): focus can go back where it was."""

    def __init__(self, **kwargs) -> None:
        super().__init__(placeholder="find", **kwargs)
        self.target = ""  # what is searched, named in the placeholder

    def on_mount(self) -> None:
        self.display = False

    def open(self, target: str = "") -> None:
        """Show the prompt (keeping the last text, selected) and take the focus."""
        self.target = target
        self.placeholder = f"find in {target}   (enter/↓ next, ↑ previous, esc close)" \
            if target else "find"
        self.display = True
        self.focus()
        self.select_all()

    def action_find(self, forward: bool) -> None:
        if self.value.strip():
            self.post_message(self.Find(self.value, forward))

    def action_close(self) -> None:
        self.display = False
        self.post_message(self.Closed())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_find(True)
