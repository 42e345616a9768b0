"""The cockpit's main screen: status line, five panes, a search bar, the footer. Keys
(declared once, in cockpit.keymap) call the App's actions."""
from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical

from cockpit.tui.keymap import bindings, narrow_footer_ids
from cockpit.tui.screens.panes import PaneScreen
from cockpit.tui.widgets.diff_view import DiffView
from cockpit.tui.widgets.key_footer import KeyFooter
from cockpit.tui.widgets.message_line import MessageLine
from cockpit.tui.widgets.metric_chart import MetricChart
from cockpit.tui.widgets.program_editor import ProgramEditor
from cockpit.tui.widgets.run_log import RunLog
from cockpit.tui.widgets.search_bar import SearchBar
from cockpit.tui.widgets.status_bar import StatusBar
from cockpit.tui.widgets.timeline import Timeline


class MainScreen(PaneScreen):
    PANES = [("timeline", "Timeline"), ("diff", "Diff"), ("run-log", "Log"),
             ("chart", "Chart"), ("program", "Program")]
    BINDINGS = [*bindings(), Binding("escape", "leave_editor", "Leave editor", show=False)]

    def __init__(self, program: Path, watch_program: bool = True) -> None:
        super().__init__(id="main")
        self.program = program
        self.metric = "val_bpb"  # until the journal names the session's
        self.watch_program = watch_program

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield self.make_tabs()
        with Horizontal(id="panes"):
            with Vertical(id="left", classes="column"):
                yield Timeline(self.metric, id="timeline")
                yield DiffView(id="diff")
            with Vertical(id="right", classes="column"):
                yield MetricChart(self.metric, id="chart")
                yield RunLog(id="run-log")
                yield ProgramEditor(self.program, watch=self.watch_program, id="program")
        yield MessageLine(id="messages")
        yield SearchBar(id="search-bar")
        yield KeyFooter(narrow_footer_ids())

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#timeline").border_title = "timeline"
        self.query_one("#diff").border_title = "change"
        self.query_one("#run-log").border_title = "run log"
        self.query_one("#chart").border_title = self.metric
        self.query_one("#timeline").focus()

    def show_metric(self, name: str) -> None:
        """The metric the journal names (once it does): the chart's and the timeline's."""
        if name == self.metric:
            return
        self.metric = name
        self.query_one(Timeline).set_metric(name)
        self.query_one(MetricChart).set_metric(name)
        self.query_one("#chart").border_title = name

    def panes_shown(self) -> None:
        self.query_one(RunLog).flush()
        self.query_one(MetricChart).redraw()

    def action_leave_editor(self) -> None:
        editor = self.query_one(ProgramEditor)
        if editor.editing:
            editor.stop_editing()
        if self.focused is not None and self.focused.id == "program-text":
            self.query_one("#timeline").focus()
