"""A modal question with a few answers, each on a key (no mouse needed)."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[str | None]):
    """Dismisses with the chosen answer's key, or None on escape."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, question: str, answers: list[tuple[str, str]]) -> None:
        super().__init__()
        self.question = question
        self.answers = answers  # (key, label); pressing the key answers

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-question")
            with Vertical(classes="dialog-buttons"):
                for key, label in self.answers:
                    yield Button(f"\\[{key}] {label}", id=f"answer-{key}", compact=True)

    def on_key(self, event) -> None:
        for key, _ in self.answers:
            if event.key == key:
                event.stop()
                self.dismiss(key)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        answer = event.button.id or ""  # every button here is an answer-<key>
        self.dismiss(answer.removeprefix("answer-"))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
