"""A modal question with a few answers, each on a key (no mouse needed).

A question about the session (stop #74? quit while #3 runs?) follows it: the app calls
`follow` whenever the session changes, and the dialog asks again from what is true now,
so it never offers to stop a run that has already ended.
"""
from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

Answers = list[tuple[str, str]]  # (key, label); pressing the key answers
Question = tuple[str, Answers]


class ConfirmScreen(ModalScreen[str | None]):
    """Dismisses with the chosen answer's key, or None on escape."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, question: str, answers: Answers,
                 ask: Callable[[], Question] | None = None) -> None:
        super().__init__()
        self.question = question
        self.answers = answers
        self.ask = ask  # asks the question again from the session as it is now

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-question", markup=False)
            with Vertical(classes="dialog-buttons"):
                yield from self._buttons()

    def _buttons(self) -> list[Button]:
        return [Button(f"\\[{key}] {label}", name=key, compact=True)
                for key, label in self.answers]

    def follow(self) -> None:
        """The session changed: ask again, and show the new question if it differs."""
        if self.ask is None or not self.is_attached:
            return
        question, answers = self.ask()
        if (question, answers) == (self.question, self.answers):
            return
        self.question, self.answers = question, answers
        self.query_one(".dialog-question", Static).update(question)
        buttons = self.query_one(".dialog-buttons", Vertical)
        buttons.remove_children()
        buttons.mount_all(self._buttons())

    def on_key(self, event) -> None:
        for key, _ in self.answers:
            if event.key == key:
                event.stop()
                self.dismiss(key)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.name)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
