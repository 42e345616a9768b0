"""One experiment in full (Enter on the timeline), or two compared (c): the whole diff,
the verdict, and its run log, on a screen of their own; escape closes it.

On one experiment: `d` shows its diff against its parent, the best or the baseline;
`[` / `]` step to the previous / next experiment; `w` wraps long lines; `y` copies a
`git show` line for its commit.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Static

from cockpit.tui.widgets.diff_view import DiffView, VerdictLine
from cockpit.tui.widgets.message_line import MessageLine
from cockpit.tui.widgets.run_log import RunLog
from cockpit.tui.widgets.search_bar import SearchBar


@dataclass
class Around:
    """What one experiment's screen can reach beyond itself."""

    commit: str = ""  # its commit ("" before it has one)
    # what its diff is taken against, in `d` order: "its parent" first (the change itself)
    against: dict[str, Callable[[], str]] = field(default_factory=dict)
    step: Callable[[int], None] | None = None  # open the previous (-1) / next (+1) one


class ExperimentScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "close", "Close"),
                Binding("slash", "search", "Find"),
                Binding("tab", "app.focus_next", show=False),
                Binding("left_square_bracket", "step(-1)", "Previous"),
                Binding("right_square_bracket", "step(1)", "Next"),
                Binding("d", "against", "Diff against"),
                Binding("w", "wrap", "Wrap"),
                Binding("y", "copy", "Copy git show")]

    def __init__(self, title: str, hypothesis: str, diff: str, note: str = "",
                 verdict: VerdictLine | None = None, log: str | None = None,
                 around: Around | None = None) -> None:
        super().__init__()
        self.title_text, self.hypothesis, self.diff = title, hypothesis, diff
        self.note, self.verdict = note, verdict
        self.log_text = log  # not `log`: a Textual node's `log` is its logger
        self.around = around or Around()
        self.against = next(iter(self.around.against), "")  # what the diff is against now

    def compose(self) -> ComposeResult:
        keys = "escape closes · / finds · tab switches pane"
        if self.around.step is not None:
            keys += " · [ ] step · d against · w wrap · y copy"
        yield Static(f" {self.title_text}   {keys}", id="experiment-title", markup=False)
        with Horizontal(id="experiment-panes"):
            yield DiffView(id="experiment-diff")
            if self.log_text is not None:
                yield RunLog(id="experiment-log")
        yield MessageLine(id="experiment-messages")
        yield SearchBar(id="experiment-search")

    def on_mount(self) -> None:
        self._show_diff(self.diff)
        if self.log_text is not None:
            log = self.query_one(RunLog)
            log.border_title = "run log (whole)"
            log.reset(self.log_text)
        self.query_one(DiffView).focus()

    def _show_diff(self, diff: str) -> None:
        view = self.query_one(DiffView)
        view.border_title = f"change · against {self.against}" if self.against else "change"
        view.show(self.title_text, self.hypothesis, diff, self.note, verdict=self.verdict)

    def action_search(self) -> None:
        focused = self.focused
        in_log = self.log_text is not None and focused is not None and (
            self.query_one(RunLog) in focused.ancestors_with_self)  # the log or inside it
        self._searched = self.query_one(RunLog) if in_log else self.query_one(DiffView)
        self.query_one(SearchBar).open("the run log" if in_log else "the change")

    def on_search_bar_find(self, message: SearchBar.Find) -> None:
        target = getattr(self, "_searched", None) or self.query_one(DiffView)
        if target.find(message.text, message.forward) is None:
            self.notify(f"{message.text!r} not found")

    def action_step(self, by: int) -> None:
        if self.around.step is not None:
            self.around.step(by)

    def action_against(self) -> None:
        """The diff against the next of: its parent, the best, the baseline."""
        choices = list(self.around.against)
        if len(choices) < 2:
            self.notify("no other commit to compare it with yet")
            return
        self.against = choices[(choices.index(self.against) + 1) % len(choices)]
        try:
            diff = self.around.against[self.against]()
        except Exception as exc:  # a commit git no longer has: say so, keep the screen
            self.notify(f"no diff against {self.against}: {exc}", severity="warning")
            return
        self._show_diff(diff)
        self.notify(f"the diff against {self.against}")

    def action_wrap(self) -> None:
        view = self.query_one(DiffView)
        view.wrap = not view.wrap
        view.rerender()
        self.notify("long lines wrap" if view.wrap else "long lines scroll sideways")

    def action_copy(self) -> None:
        if not self.around.commit:
            self.notify("no commit yet: it has not run")
            return
        line = f"git show {self.around.commit}"
        self.app.copy_to_clipboard(line)
        self.notify(f"copied: {line}")

    def action_close(self) -> None:
        self.dismiss(None)
