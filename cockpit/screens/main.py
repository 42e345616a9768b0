"""The cockpit's main screen: status line, six panes, footer. Keys call the App's actions."""
from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer

from cockpit.screens.panes import PaneScreen
from cockpit.widgets.diff_view import DiffView
from cockpit.widgets.metric_chart import MetricChart
from cockpit.widgets.program_editor import ProgramEditor
from cockpit.widgets.run_log import RunLog
from cockpit.widgets.status_bar import StatusBar
from cockpit.widgets.timeline import Timeline

# (key, action, footer label, shown in footer). Single letters are ignored while the
# program editor has focus (the TextArea takes them first), which is what we want.
KEYS = [
    ("a", "approve", "Approve", True),
    ("r", "reject", "Reject", True),
    ("A", "toggle_auto_approve", "Auto-approve", True),
    ("p", "pause_resume", "Pause/Resume", True),
    ("s", "stop_run", "Stop run", True),
    ("n", "steer", "Steer", True),
    ("e", "edit_program", "Edit program", True),
    ("t", "replay", "Replay", True),
    ("question_mark", "help", "Help", True),
    ("q", "quit", "Quit", True),
    ("1", "pane('timeline')", "Timeline", False),
    ("2", "pane('diff')", "Diff", False),
    ("3", "pane('run-log')", "Log", False),
    ("4", "pane('chart')", "Chart", False),
    ("5", "pane('program')", "Program", False),
    ("w", "next_worker", "Worker log (parallel workers)", False),
    ("R", "resume_session", "Resume the session (after it died)", False),
    ("ctrl+t", "toggle_theme", "Light/dark theme", False),
]


class MainScreen(PaneScreen):
    PANES = [("timeline", "Timeline"), ("diff", "Diff"), ("run-log", "Log"),
             ("chart", "Chart"), ("program", "Program")]
    BINDINGS = [Binding(key, f"app.{action}", label, show=show) for key, action, label, show in KEYS] + [
        Binding("escape", "leave_editor", "Leave editor", show=False),
    ]

    def __init__(self, program: Path, metric: str, lower_is_better: bool, read_only: bool,
                 watch_program: bool = True) -> None:
        super().__init__(id="main")
        self.program = program
        self.metric = metric
        self.lower_is_better = lower_is_better
        self.read_only = read_only
        self.watch_program = watch_program

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield self.make_tabs()
        with Horizontal(id="panes"):
            with Vertical(id="left", classes="column"):
                yield Timeline(self.metric, id="timeline")
                yield DiffView(id="diff")
            with Vertical(id="right", classes="column"):
                yield MetricChart(self.metric, self.lower_is_better, id="chart")
                yield RunLog(id="run-log")
                yield ProgramEditor(self.program, watch=self.watch_program,
                                    read_only=self.read_only, id="program")
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#timeline").border_title = "timeline"
        self.query_one("#diff").border_title = "change"
        self.query_one("#run-log").border_title = "run log"
        self.query_one("#chart").border_title = self.metric
        self.query_one("#program").border_title = "program.md" + (" (read-only)" if self.read_only else "")
        self.query_one("#timeline").focus()

    def panes_shown(self) -> None:
        self.query_one(RunLog).flush()
        self.query_one(MetricChart).redraw()

    def action_leave_editor(self) -> None:
        if self.focused is not None and self.focused.id == "program-text":
            self.query_one("#timeline").focus()
