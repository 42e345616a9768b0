"""`cockpit replay`: the replay screen as an App of its own (no session, nothing written)."""
from __future__ import annotations

from pathlib import Path

from textual.app import App

from cockpit.client.store import SessionStore
from cockpit.tui.screens.panes import CSS_FILE, relayout
from cockpit.tui.screens.replay import ReplayScreen


class ReplayApp(App):
    """`cockpit replay`: the replay screen on its own (no session, nothing written)."""

    CSS_PATH = CSS_FILE
    TITLE = "cockpit replay"

    def __init__(self, workspace: Path, tag: str) -> None:
        super().__init__()
        self.store = SessionStore(workspace, tag)

    def on_resize(self) -> None:
        relayout(self)

    def on_mount(self) -> None:
        self.theme = "textual-dark"
        self.push_screen(ReplayScreen(self.store, standalone=True))
