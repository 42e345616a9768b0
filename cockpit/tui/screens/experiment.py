"""One experiment in full (Enter on the timeline), or two compared (c): the whole diff,
the verdict, and its run log, on a screen of their own; escape closes it."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Static

from cockpit.tui.widgets.diff_view import DiffView, VerdictLine
from cockpit.tui.widgets.run_log import RunLog
from cockpit.tui.widgets.search_bar import SearchBar


class ExperimentScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "close", "Close"),
                Binding("slash", "search", "Find"),
                Binding("tab", "app.focus_next", show=False)]

    def __init__(self, title: str, hypothesis: str, diff: str, note: str = "",
                 verdict: VerdictLine | None = None, log: str | None = None) -> None:
        super().__init__()
        self.title_text, self.hypothesis, self.diff = title, hypothesis, diff
        self.note, self.verdict = note, verdict
        self.log_text = log  # not `log`: a Textual node's `log` is its logger

    def compose(self) -> ComposeResult:
        yield Static(f" {self.title_text}   escape closes · / finds · tab switches pane",
                     id="experiment-title", markup=False)
        with Horizontal(id="experiment-panes"):
            yield DiffView(id="experiment-diff")
            if self.log_text is not None:
                yield RunLog(id="experiment-log")
        yield SearchBar(id="experiment-search")

    def on_mount(self) -> None:
        diff = self.query_one(DiffView)
        diff.border_title = "change"
        diff.show(self.title_text, self.hypothesis, self.diff, self.note, verdict=self.verdict)
        if self.log_text is not None:
            log = self.query_one(RunLog)
            log.border_title = "run log (whole)"
            log.reset(self.log_text)
        diff.focus()

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

    def action_close(self) -> None:
        self.dismiss(None)
