"""The diff viewer: a proposal's hypothesis and description above its colored unified diff."""
from __future__ import annotations

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static


class DiffView(VerticalScroll):
    DEFAULT_CLASSES = "pane"

    def compose(self) -> ComposeResult:
        yield Static("", id="diff-header")
        yield Static("", id="diff-body")

    def show(self, title: str, hypothesis: str = "", diff: str = "", note: str = "") -> None:
        """Show one change. `note` is a line under the title (a result, a crash reason)."""
        header = Text()
        header.append(title, style="bold")
        if note:
            header.append("\n" + note, style="italic")
        if hypothesis:
            header.append("\nwhy: ", style="dim")
            header.append(hypothesis)
        self.query_one("#diff-header", Static).update(header)
        body = self.query_one("#diff-body", Static)
        if diff.strip():
            # theme "ansi_dark" keeps to the 16 terminal colours: right over SSH and in 256
            body.update(Syntax(diff.rstrip("\n"), "diff", theme="ansi_dark",
                               background_color="default", word_wrap=False))
        else:
            body.update(Text("(no change: the unmodified starting point)" if title else "",
                             style="dim"))
        self.scroll_home(animate=False)

    def clear(self) -> None:
        self.show("")
