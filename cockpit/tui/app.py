"""The cockpit: a Textual App attached to a session process, with full control of it.

The session runs elsewhere (its own process, out of reach of this terminal); this App
subscribes to its feed (journal events, live state, training output) through a
SessionLink and sends commands that name what they act on (approve #7, stop #12). Quitting
detaches; the research goes on. Every pane is folded from the journal, like replay's.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from rich.text import Text
from textual.app import App
from textual.binding import Binding

from cockpit.client.store import SessionStore
from cockpit.domain.errors import CockpitError
from cockpit.tui.contrast import make_readable
from cockpit.tui.controls import SessionControls
from cockpit.tui.link import SessionLink
from cockpit.tui.looking import LookAround, title_of
from cockpit.tui.messages import Answered, JournalArrived, LiveChanged, SessionGone
from cockpit.tui.palette import CockpitCommands
from cockpit.tui.screens.help import HelpScreen
from cockpit.tui.screens.main import MainScreen
from cockpit.tui.screens.messages import MessagesScreen
from cockpit.tui.screens.panes import CSS_FILE, relayout
from cockpit.tui.screens.replay import ReplayScreen
from cockpit.tui.view import SessionView, describe
from cockpit.tui.widgets.diff_view import DiffView
from cockpit.tui.widgets.message_line import MessageLine, Notices
from cockpit.tui.widgets.metric_chart import MetricChart
from cockpit.tui.widgets.program_editor import ProgramEditor
from cockpit.tui.widgets.run_log import RunLog
from cockpit.tui.widgets.status_bar import StatusBar
from cockpit.tui.widgets.timeline import Timeline

DRAIN_HZ = 4  # output polling: 250 ms keeps a flood's last line well under 1 s
CHART_MIN_INTERVAL = 1.0  # seconds between loss sparkline redraws
FRESH_RUN = 2.0  # seconds: a run this young is followed from its start, not its log's tail

def _while_shown(handler):
    """Messages may still arrive while the app closes: then there is nothing to show."""
    @functools.wraps(handler)
    def guarded(self, message):
        if self._exit_renderables or not self.main.is_attached:
            return None
        return handler(self, message)
    return guarded


class CockpitApp(SessionControls, LookAround, App):
    CSS_PATH = CSS_FILE
    TITLE = "cockpit"
    COMMANDS = App.COMMANDS | {CockpitCommands}
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, workspace: Path, tag: str, watch_program: bool = True,
                 resume: Callable[[], object] | None = None,
                 keymap: dict[str, str] | None = None) -> None:
        super().__init__()
        make_readable(self._filters)  # NO_COLOR: greys that read, not 237 on 235
        self.keymap = keymap or {}  # the user's remapped keys (cockpit.toml [keys])
        self.workspace = workspace
        self.tag = tag
        self.store = SessionStore(workspace, tag)
        self.view = SessionView()
        self.link = SessionLink(workspace, self.post_message)
        self.resume_session = resume  # starts the session again after it died
        self.gone = ""  # "" while attached; else what happened to the session
        self.shown_worker = 0  # whose run the run log shows
        self.shown_run: tuple | None = None  # (worker, kind, n) the run log shows
        self.approval: int | None = None  # the proposal shown for a decision
        self._shown_version = -1
        self._last_losses = 0.0
        self._best_curve: tuple = (None, None)  # (the best's log, its loss curve)
        self.notices = Notices()  # every message shown, for `M`
        self.main = MainScreen(self.store.program, watch_program=watch_program)

    # -- lifecycle -----------------------------------------------------------------
    async def on_mount(self) -> None:
        self.theme = "textual-dark"
        if self.keymap:
            self.set_keymap(self.keymap)
        await self.push_screen(self.main)
        self.attach()
        # owned by the main screen, so they stop with it when the app closes
        self.main.set_interval(1 / DRAIN_HZ, self.drain_output)
        self.main.set_interval(1.0, self.refresh_status)

    def attach(self) -> None:
        try:
            self.link.connect()
        except CockpitError:  # it ended (or died) before we got here: show its journal
            events = self.store.events()
            self.post_message(JournalArrived(self.link.seen, events[self.link.seen:]))
            self.link.seen = len(events)
            self.post_message(SessionGone())
            return
        self.gone = ""

    def on_unmount(self) -> None:
        self.link.close()

    def on_resize(self) -> None:
        relayout(self)

    @property
    def attached(self) -> bool:
        return not self.gone and not self.view.ended

    # -- the session's feed --------------------------------------------------------
    @_while_shown
    def on_journal_arrived(self, message: JournalArrived) -> None:
        for event in message.events:
            self.view.apply(event)
        self.main.show_metric(self.view.state.metric)
        self.follow_run()
        self.refresh_experiments()
        self.refresh_status()

    @_while_shown
    def on_live_changed(self, message: LiveChanged) -> None:
        self.view.apply_live(message.live)
        self.refresh_experiments()
        self.show_approval()
        self.refresh_status()

    @_while_shown
    def on_session_gone(self, message: SessionGone) -> None:
        from cockpit.workspace.lock import read_session

        info = read_session(self.workspace)
        if message.refused:  # another cockpit's session: attaching again would not help
            self.gone = message.refused
        elif self.view.ended:
            self.gone = f"the session ended: {self.view.ended}"
        elif info is not None and info.alive:
            self.gone = ""
            self.attach()  # dropped (too slow a client): pick up where we left off
            return
        else:
            self.gone = "the session died" + (": R resumes it" if self.resume_session else "")
            self.bell()
        self.view.lose(self.gone)  # nothing it ran may look live any more
        self.main.query_one(MetricChart).set_losses([], None)
        self.refresh_experiments()
        self.say(self.gone, severity="warning")
        self.refresh_status()

    @_while_shown
    def on_answered(self, message: Answered) -> None:
        answer = message.answer
        self.notify(answer.get("message", ""),
                    severity="information" if answer.get("ok") else "warning")

    # -- messages: a line of their own, never a toast over the panes ----------------------
    def notify(self, message: str, *, title: str = "", severity="information",
               timeout: float | None = None, markup: bool = True) -> None:
        if not message:
            return
        text = Text.from_markup(message).plain if markup else message
        notice = self.notices.add(text, severity)
        for screen in self.screen_stack:
            for line in screen.query(MessageLine):
                line.show(notice)

    def say(self, message: str, severity: str = "information") -> None:
        self.notify(message, severity=severity, markup=False)

    def action_messages(self) -> None:
        self.push_screen(MessagesScreen(list(self.notices.items)))

    # -- the run log -----------------------------------------------------------------
    def follow_run(self) -> None:
        """The run log shows the shown worker's latest run: a run that just began from its
        start (streamed), one already under way or over from its log file's tail."""
        run = self.view.runs.get(self.shown_worker)
        if run is None or run["key"] == self.shown_run:
            return
        self.shown_run = run["key"]
        run_log = self.main.query_one(RunLog)
        buffer = self.link.output(run["key"])
        text = ""
        if run["done"] or time.time() - run["time"] > FRESH_RUN:
            buffer.drain()  # what it printed so far is in its log
            text = self.store.log(run["log"]) if run["log"] else ""
        run_log.reset(text)
        where = f" · gpu{self.shown_worker}" if self.view.workers > 1 else ""
        run_log.border_title = f"run log · {run['title']}{where}"
        self.view.new_run_shown(text)
        self.show_losses()

    def show_losses(self) -> None:
        """The sparkline: the shown run's loss against the best run's at the same progress."""
        self._last_losses = time.monotonic()
        self.main.query_one(MetricChart).set_losses(*self.view.losses(self.best_curve()))

    def best_curve(self):
        """The loss curve of the best's run (read from its log once per best)."""
        best = self.view.state.best
        if best is None or not best.log:
            return None
        if self._best_curve[0] != best.log:
            from cockpit.domain.earlystop import Curve

            self._best_curve = (best.log, Curve.from_log(self.store.log(best.log)))
        return self._best_curve[1]

    def drain_output(self) -> None:
        if self.shown_run is None:
            return
        text, dropped = self.link.output(self.shown_run).drain()
        if not text and not dropped:
            return
        run_log = self.main.query_one(RunLog)
        run_log.feed(text, dropped)
        self.view.on_progress_line(run_log.assembler.current or "")
        if time.monotonic() - self._last_losses >= CHART_MIN_INTERVAL:
            self.show_losses()

    # -- what is shown -----------------------------------------------------------------
    def refresh_experiments(self) -> None:
        if self.view.version == self._shown_version:
            return
        self._shown_version = self.view.version
        self.main.query_one(Timeline).set_rows(self.view.rows())
        chart = self.main.query_one(MetricChart)
        chart.set_points(self.view.points())
        chart.set_bar(*self.view.bar())
        self.show_selected()

    def refresh_status(self) -> None:
        flags = []
        if self.gone:
            flags.append(self.gone)
        elif self.view.live.get("auto_approve"):
            flags.append("auto-approve")
        if self.view.paused and self.view.running and not self.view.ended:
            flags.append("paused after this run")
        running = len(self.view.running)
        if running > 1:
            flags.append(f"{running} in flight")
        failing = self.view.live.get("notify_failing")
        if failing and not self.gone:
            flags.append("notify failing: " + ", ".join(failing))
        status = self.view.status(" · ".join(flags), self.shown_worker)
        if self.gone and not self.view.ended:
            status = replace(status, state="not running", elapsed=None, percent=None)
        self.main.query_one(StatusBar).show(status)
        self.follow_dialogs()

    def show_approval(self) -> None:
        """The oldest proposal waiting for a decision comes on screen (once)."""
        awaiting = self.view.awaiting
        if self.approval in awaiting:
            return
        self.approval = awaiting[0] if awaiting else None
        if self.approval is None:
            return
        self.refresh_experiments()
        self.main.query_one(Timeline).select(self.approval)
        self.show_experiment(self.approval)
        self.bell()
        more = f" ({len(awaiting)} waiting)" if len(awaiting) > 1 else ""
        self.notify(f"#{self.approval} awaits your approval: a approves, r rejects{more}",
                    title="approval")

    @_while_shown
    def on_timeline_selected(self, message: Timeline.Selected) -> None:
        self.show_experiment(message.n)

    def show_selected(self) -> None:
        n = self.main.query_one(Timeline).selected_n
        if n is not None:
            self.show_experiment(n)

    def show_experiment(self, n: int) -> None:
        exp = self.view.state.get(n)
        views = self.main.query(DiffView)
        if exp is None or not views:  # no views: the app is closing, its panes are gone
            return
        views.first().show(
            title_of(exp), exp.hypothesis, exp.diff,
            describe(exp, self.view.state.metric, awaiting=n in self.view.awaiting,
                     stopped=bool(self.view.lost or self.view.ended)),
            verdict=self.view.verdict(exp))

    # -- program editor ------------------------------------------------------------
    def on_program_editor_saved(self, message: ProgramEditor.Saved) -> None:
        self.notify("program.md saved: the next proposal reads it")

    def on_program_editor_changed(self, message: ProgramEditor.Changed) -> None:
        if message.conflict:
            self.notify("program.md changed on disk while you were editing: see the banner",
                        severity="warning", timeout=8)
        else:
            self.notify("program.md changed on disk: reloaded")

    # -- actions (keys, footer, command palette) ----------------------------------
    def action_next_worker(self) -> None:
        """The run log shows the next parallel worker's run."""
        workers = max([self.view.workers] + [e.worker + 1 for e in self.view.state.experiments])
        if workers < 2:
            self.notify("one worker: its log is the one shown")
            return
        self.shown_worker = (self.shown_worker + 1) % workers
        self.shown_run = None
        self.follow_run()
        if self.view.runs.get(self.shown_worker) is None:
            run_log = self.main.query_one(RunLog)
            run_log.reset()
            run_log.border_title = f"run log · gpu{self.shown_worker}"
        self.notify(f"run log: worker gpu{self.shown_worker}")
        self.refresh_status()

    def action_edit_program(self) -> None:
        self.main.show_pane("program")
        self.main.query_one(ProgramEditor).start_editing()

    def action_pane(self, pane: str) -> None:
        self.main.show_pane(pane)

    def action_replay(self) -> None:
        self.push_screen(ReplayScreen(self.store))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(intro=f"Session {self.tag}: quitting detaches, the "
                                          "research goes on.", keymap=self.keymap))

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"
