"""Replay: walk a session's timeline, live or finished, experiment by experiment.

The journal feeds the list (1000 experiments open at once); an experiment's diff comes
from its journal event and its log is read from disk only when it is selected. Arrow keys
step; space plays it back at the chosen speed; the chart's cursor follows.
"""
from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Footer, Static

from cockpit.client.store import SessionStore
from cockpit.tui.screens.panes import PaneScreen
from cockpit.tui.view import SessionView, describe
from cockpit.tui.widgets.diff_view import DiffView
from cockpit.tui.widgets.metric_chart import MetricChart
from cockpit.tui.widgets.run_log import RunLog
from cockpit.tui.widgets.timeline import Timeline

SPEEDS = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]  # experiments per second
POLL_SECONDS = 1.0  # a live session grows while it is replayed


class ReplayScreen(PaneScreen):
    PANES = [("replay-timeline", "Timeline"), ("replay-diff", "Diff"),
             ("replay-log", "Log"), ("replay-chart", "Chart")]
    BINDINGS = [
        # priority: the focused timeline would take left/right for its own cursor
        Binding("left", "step(-1)", "Older", priority=True),
        Binding("right", "step(1)", "Newer", priority=True),
        Binding("space", "play", "Play/Pause"),
        Binding("plus,equals_sign", "speed(1)", "Faster"),
        Binding("minus", "speed(-1)", "Slower"),
        Binding("home", "jump('first')", "First", show=False, priority=True),
        Binding("end", "jump('last')", "Last", show=False, priority=True),
        Binding("1", "pane('replay-timeline')", show=False),
        Binding("2", "pane('replay-diff')", show=False),
        Binding("3", "pane('replay-log')", show=False),
        Binding("4", "pane('replay-chart')", show=False),
        Binding("escape,q", "close", "Close"),
    ]

    class LogLoaded(Message):
        def __init__(self, n: int, text: str) -> None:
            super().__init__()
            self.n = n
            self.text = text

    def __init__(self, store: SessionStore, standalone: bool = False) -> None:
        super().__init__(id="replay")
        self.store = store
        self.tag = store.tag
        self.standalone = standalone  # `cockpit replay`: closing it quits
        self.view = SessionView()
        self.tail = store.follow()
        self.speed_index = 1
        self.playing = False
        self.current: int | None = None
        self._player: Timer | None = None
        self._shown_version = -1

    def compose(self) -> ComposeResult:
        yield Static("", id="replay-status", markup=False)
        yield self.make_tabs()
        with Horizontal(id="replay-panes"):
            with Vertical(classes="column", id="replay-left"):
                yield Timeline(id="replay-timeline")
                yield DiffView(id="replay-diff")
            with Vertical(classes="column", id="replay-right"):
                yield MetricChart(id="replay-chart")
                yield RunLog(id="replay-log")
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#replay-timeline").border_title = f"replay: {self.tag}"
        self.query_one("#replay-diff").border_title = "change"
        self.query_one("#replay-log").border_title = "run log"
        self.query_one("#replay-chart", MetricChart).query_one("#loss-sparkline").display = False
        self.refresh_from_journal()
        timeline = self.query_one(Timeline)
        timeline.focus()
        numbers = timeline.numbers
        if numbers:
            self.select(numbers[-1])
        self.set_interval(POLL_SECONDS, self.refresh_from_journal)

    def refresh_from_journal(self) -> None:
        for event in self.tail.poll():
            self.view.apply(event)
        metric = self.view.state.metric
        if self.query_one("#replay-chart").border_title != metric:
            self.query_one("#replay-chart").border_title = metric
            self.query_one(Timeline).set_metric(metric)
            self.query_one(MetricChart).set_metric(metric)
        if self.view.version != self._shown_version:
            self._shown_version = self.view.version
            self.query_one(Timeline).set_rows(self.view.rows())
            self.query_one(MetricChart).set_points(self.view.points(), self.current)
        self.show_status()

    def show_status(self) -> None:
        numbers = self.query_one(Timeline).numbers
        position = numbers.index(self.current) + 1 if self.current in numbers else 0
        speed = SPEEDS[self.speed_index]
        text = Text()
        text.append(" replay ", style="bold reverse")
        text.append(f" {self.tag}  {position}/{len(numbers)}  ")
        text.append("▶ playing" if self.playing else "❚❚ paused", style="bold")
        text.append(f" at {speed:g}/s  ←/→ step · space play · +/- speed · esc close")
        self.query_one("#replay-status", Static).update(text)

    # -- selection -----------------------------------------------------------------
    def on_timeline_selected(self, message: Timeline.Selected) -> None:
        message.stop()
        self.show_experiment(message.n)

    def select(self, n: int) -> None:
        self.query_one(Timeline).select(n)
        self.show_experiment(n)

    def show_experiment(self, n: int) -> None:
        if n == self.current:
            return
        exp = next((e for e in self.view.state.experiments if e.n == n), None)
        if exp is None:
            return
        self.current = n
        self.query_one(DiffView).show(f"#{exp.n} {exp.description}", exp.hypothesis, exp.diff,
                                      describe(exp, self.view.state.metric))
        self.query_one(MetricChart).set_cursor(n)
        self.query_one(RunLog).reset()
        if exp.log:
            self.load_log(n, exp.log)
        self.show_status()

    @work(thread=True, exclusive=True, exit_on_error=False, group="replay-log")
    def load_log(self, n: int, log: str) -> None:
        self.post_message(self.LogLoaded(n, self.store.log(log)))

    def on_replay_screen_log_loaded(self, message: LogLoaded) -> None:
        if message.n == self.current:
            self.query_one(RunLog).reset(message.text)

    def panes_shown(self) -> None:
        self.query_one(RunLog).flush()
        self.query_one(MetricChart).redraw()

    # -- actions -------------------------------------------------------------------
    def action_step(self, by: int) -> bool:
        numbers = self.query_one(Timeline).numbers
        if not numbers:
            return False
        index = numbers.index(self.current) if self.current in numbers else len(numbers) - 1
        target = index + by
        if not 0 <= target < len(numbers):
            return False
        self.select(numbers[target])
        return True

    def action_jump(self, where: str) -> None:
        numbers = self.query_one(Timeline).numbers
        if numbers:
            self.select(numbers[0] if where == "first" else numbers[-1])

    def action_play(self) -> None:
        self.playing = not self.playing
        if self.playing:
            numbers = self.query_one(Timeline).numbers
            if numbers and self.current == numbers[-1]:
                self.select(numbers[0])  # at the end: play from the start
            self._start_player()
        elif self._player is not None:
            self._player.stop()
        self.show_status()

    def action_speed(self, by: int) -> None:
        self.speed_index = max(0, min(len(SPEEDS) - 1, self.speed_index + by))
        if self.playing:
            self._start_player()
        self.show_status()

    def _start_player(self) -> None:
        if self._player is not None:
            self._player.stop()
        self._player = self.set_interval(1 / SPEEDS[self.speed_index], self._play_step)

    def _play_step(self) -> None:
        if not self.action_step(1):
            self.playing = False
            if self._player is not None:  # always set while playing
                self._player.stop()
            self.show_status()

    def action_pane(self, pane: str) -> None:
        self.show_pane(pane)

    def action_close(self) -> None:
        if self.standalone:
            self.app.exit()
        else:
            self.dismiss()
