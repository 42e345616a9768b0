"""The cockpit: a Textual App that watches, steers and approves the research loop.

Two ways to run:
- live: this process runs the loop on a LoopBridge thread; the App drains its output
  buffer and reacts to its posted messages;
- watching: another process holds the workspace lock (or the session is over); the App is
  a read-only view fed by tailing the journal and the current run.log.

Either way the journal is what the timeline, chart and status are folded from.
"""
from __future__ import annotations

import functools
import time
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from cockpit.bridge import LoopBridge
from cockpit.commands import CockpitCommands
from cockpit.feeds import RUN_MARK, FileTail, JournalTail, read_tail
from cockpit.journal import Experiment, session_dir
from cockpit.messages import ApprovalRequested, LoopEvent, LoopFinished
from cockpit.screens.confirm import ConfirmScreen
from cockpit.screens.help import HelpScreen
from cockpit.screens.main import KEYS, MainScreen
from cockpit.screens.panes import PaneScreen
from cockpit.screens.replay import ReplayScreen
from cockpit.screens.steer import NoteScreen
from cockpit.session_view import SessionView, describe
from cockpit.widgets.diff_view import DiffView
from cockpit.widgets.metric_chart import MetricChart
from cockpit.widgets.program_editor import ProgramEditor
from cockpit.widgets.run_log import RunLog
from cockpit.widgets.status_bar import StatusBar
from cockpit.widgets.timeline import Timeline

DRAIN_HZ = 4  # output and journal polling: 250 ms keeps a flood's last line well under 1 s
CHART_MIN_INTERVAL = 1.0  # seconds between loss sparkline redraws

CSS_FILE = Path(__file__).with_name("app.tcss")


def relayout(app: App) -> None:
    """The terminal's size is known (or changed): panes side by side, or tabs."""
    for screen in app.screen_stack:
        if isinstance(screen, PaneScreen) and screen.is_mounted:
            screen.layout_panes()


def _while_shown(handler):
    """Loop messages may still arrive while the app closes: then there is nothing to show."""
    @functools.wraps(handler)
    def guarded(self, message):
        if self._exit_renderables or not self.main.is_attached or self._closing:
            return None
        return handler(self, message)
    return guarded


class CockpitApp(App):
    CSS_PATH = CSS_FILE
    TITLE = "cockpit"
    COMMANDS = App.COMMANDS | {CockpitCommands}
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, workspace: Path, tag: str, bridge: LoopBridge | None = None,
                 owner: str = "", metric: str = "val_bpb", direction: str = "lower",
                 watch_program: bool = True) -> None:
        super().__init__()
        self.workspace = workspace
        self.tag = tag
        self.bridge = bridge
        self.owner = owner  # who runs the loop when we only watch ("pid 123, session x")
        self.view = SessionView()
        self.journal_tail = JournalTail(session_dir(workspace, tag) / "journal.jsonl")
        self.log_tail: FileTail | None = None  # watching: the current run.log
        self.finished = ""  # why the loop ended (live), shown in the status line
        self.approval: ApprovalRequested | None = None  # the one shown
        self.approvals: dict[int, ApprovalRequested] = {}  # every proposal waiting, by n
        self.shown_worker = 0  # whose output the run log shows (parallel workers)
        self._shown_version = -1
        self._last_losses = 0.0
        self._selected: int | None = None
        self.main = MainScreen(workspace / "program.md", metric, direction == "lower",
                               read_only=bridge is None, watch_program=watch_program)

    # -- lifecycle -----------------------------------------------------------------
    async def on_mount(self) -> None:
        self.theme = "textual-dark"
        await self.push_screen(self.main)
        if self.bridge is not None:
            self.bridge.post = self.post_message
            self.bridge.start()
        self.poll()
        # owned by the main screen, so they stop with it when the app closes
        self.main.set_interval(1 / DRAIN_HZ, self.poll)
        self.main.set_interval(1.0, self.refresh_status)

    def on_resize(self) -> None:
        relayout(self)

    @property
    def live(self) -> bool:
        return self.bridge is not None

    @property
    def loop_running(self) -> bool:
        return self.bridge is not None and self.bridge.alive

    # -- data in -------------------------------------------------------------------
    def poll(self) -> None:
        """The timer's tick: new journal events, new output, the status line."""
        events = self.journal_tail.poll()
        for event in events:
            self.view.apply(event)
        if events:
            if self.log_tail is None and not self.live or events[-1].get("event") == "run_start":
                self._follow_log()
            self.refresh_experiments()
        self.drain_output()
        if events:
            self.refresh_status()  # otherwise its own 1 Hz timer: a repaint costs CPU

    def drain_output(self) -> None:
        if self.live:
            text, dropped = self.bridge.buffer.drain()
        elif self.log_tail is not None:
            text, dropped = self.log_tail.poll(), 0
        else:
            return
        if not text and not dropped:
            return
        run_log = self.main.query_one(RunLog)
        if RUN_MARK in text:  # a new run began: its output starts a fresh log
            text = text.rsplit(RUN_MARK, 1)[1]
            dropped = 0
            run_log.reset()
            self.view.losses = []
        run_log.feed(text, dropped)
        self.view.on_progress_line(run_log.assembler.current or "")
        now = time.monotonic()
        if now - self._last_losses >= CHART_MIN_INTERVAL:
            self._last_losses = now
            self.main.query_one(MetricChart).set_losses(self.view.losses)

    def _follow_log(self) -> None:
        """A new run started: the log pane starts over (and, watching, tails its file)."""
        if self.live:
            return  # the output buffer carries its own marks between runs
        in_flight = self.view.state.in_flight
        if self.view.workers > 1:
            in_flight = self.view.running_on(self.shown_worker)
        self.main.query_one(RunLog).reset()
        self.main.query_one(MetricChart).set_losses([])
        if in_flight is not None and in_flight.log:
            self.log_tail = FileTail(self.workspace / in_flight.log)

    def refresh_experiments(self) -> None:
        if self.view.version == self._shown_version:
            return
        self._shown_version = self.view.version
        self.main.query_one(Timeline).set_rows(self.view.rows())
        self.main.query_one(MetricChart).set_points(self.view.points())
        self.show_selected()

    def refresh_status(self) -> None:
        flags = []
        if not self.live:
            flags.append(f"watching {self.owner}" if self.owner else "read-only")
        elif self.bridge.loop.auto_approve:
            flags.append("auto-approve")
        if self.view.paused and self.view.state.in_flight is not None and not self.finished:
            flags.append("pause after this run")
        running = len(self.view.state.running)
        if running > 1 and not self.finished:
            flags.append(f"{running} in flight")
        self.main.query_one(StatusBar).show(self.view.status(" · ".join(flags), self.finished))

    # -- messages from the loop thread ---------------------------------------------
    @_while_shown
    def on_loop_event(self, message: LoopEvent) -> None:
        for event in self.journal_tail.poll():  # journal first, so order is kept
            self.view.apply(event)
        if message.kind == "run_start":
            self._follow_log()
        if message.kind == "judging" and self.view.state.in_flight is None:
            pass  # the result is already in: judging is over
        else:
            self.view.on_loop_event(message.kind)
        self.refresh_experiments()
        self.refresh_status()

    @_while_shown
    def on_approval_requested(self, message: ApprovalRequested) -> None:
        self.approvals[message.n] = message
        if self.approval is not None and self.approval.n != message.n:
            self.poll()  # one is on screen already: this one waits its turn
            self.notify(f"#{message.n} queued for approval ({len(self.approvals)} waiting)",
                        title="approval")
            return
        self._show_approval(message)

    def _show_approval(self, message: ApprovalRequested) -> None:
        self.poll()
        self.approval = message
        self.view.on_loop_event("awaiting_approval")
        self._shown_version = -1
        self.refresh_experiments()
        self.main.query_one(Timeline).select(message.n)
        self.show_experiment(message.n)
        self.refresh_status()
        self.bell()
        self.notify(f"#{message.n} awaits your approval: a approves, r rejects",
                    title="approval")

    @_while_shown
    def on_loop_finished(self, message: LoopFinished) -> None:
        self.poll()
        self.finished = "finished" if not message.error else "stopped"
        self.view.phase = "finished"
        self.notify(message.why, title="the loop ended",
                    severity="error" if message.error else "information", timeout=10)
        self.refresh_status()

    # -- selection -----------------------------------------------------------------
    def on_timeline_selected(self, message: Timeline.Selected) -> None:
        self._selected = message.n
        self.show_experiment(message.n)

    def show_selected(self) -> None:
        n = self.main.query_one(Timeline).selected_n
        if n is not None:
            self.show_experiment(n)

    def show_experiment(self, n: int) -> None:
        exp = next((e for e in reversed(self.view.state.experiments) if e.n == n), None)
        if exp is None:
            return
        self.main.query_one(DiffView).show(_title(exp), exp.hypothesis, exp.diff,
                                           describe(exp, self.view.state.metric))

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
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        needs_loop = {"approve", "reject", "toggle_auto_approve", "pause_resume", "stop_run",
                      "steer"}
        if action in needs_loop and not self.live:
            return False  # a read-only view: not in the footer at all
        if action in needs_loop and not self.loop_running:
            return None  # shown dimmed: the loop has ended
        if action in ("approve", "reject") and self.bridge.gate.pending is None:
            return None
        return True

    def action_approve(self) -> None:
        n = self.bridge.gate.pending if self.bridge is not None else None
        if n is None or not self.bridge.gate.decide(True):
            self.notify("nothing awaits approval")
            return
        self.notify(f"#{n} approved")
        self._after_decision(n)

    def action_reject(self) -> None:
        if self.bridge is None or self.bridge.gate.pending is None:
            self.notify("nothing awaits approval")
            return

        def rejected(reason: str | None) -> None:
            if reason is None:
                return  # escape: still waiting
            n = self.bridge.gate.pending
            if self.bridge.gate.decide(False, reason):
                self.notify(f"#{n} rejected")
                self._after_decision(n)

        self.push_screen(NoteScreen(f"Why reject #{self.bridge.gate.pending}? "
                                    "(recorded in the journal)", "the reason"), rejected)

    def _after_decision(self, n: int | None = None) -> None:
        self.approvals.pop(n, None)
        self.approval = None
        self.view.phase = "approved"
        following = self.approvals.get(self.bridge.gate.pending) if self.bridge else None
        if following is not None:  # the next proposal in the queue comes on screen
            self._show_approval(following)
            return
        self.refresh_status()

    def action_toggle_auto_approve(self) -> None:
        on = not self.bridge.loop.auto_approve
        self.bridge.set_auto_approve(on)
        if on and self.approval is not None:
            self.approvals.clear()
            self._after_decision()
        self.notify("auto-approve " + ("on" if on else "off: each proposal waits for you"))
        self.refresh_status()

    def action_pause_resume(self) -> None:
        if self.view.paused:
            self.bridge.loop.resume()
        else:
            self.bridge.loop.pause()
            self.notify("pausing: the loop waits after the run in flight")

    def action_stop_run(self) -> None:
        if not self.bridge.loop.runner.running:
            self.notify("no run in flight")
            return

        def answered(answer: str | None) -> None:
            if answer == "y":
                # Stop this run, not the session: the loop pauses so the human can steer.
                self.bridge.loop.pause()
                self.bridge.loop.runner.stop()
                self.notify("run stopped (recorded as a crash); the loop is paused: p resumes")

        self.push_screen(ConfirmScreen("End the run in flight now? It is recorded as a crash "
                                       "(stopped by the human) and the loop pauses.",
                                       [("y", "Stop the run"), ("n", "Keep it running")]),
                         answered)

    def action_steer(self) -> None:
        def noted(note: str | None) -> None:
            if note:
                self.bridge.loop.steer(note)
                self.notify("steering note added for the next proposals")

        self.push_screen(NoteScreen("A steering note for the next proposals",
                                    "e.g. try a larger LEARNING_RATE"), noted)

    def action_next_worker(self) -> None:
        """The run log shows the next parallel worker's run."""
        workers = max([self.view.workers] + [e.worker + 1 for e in self.view.state.experiments])
        if workers < 2:
            self.notify("one worker: its log is the one shown")
            return
        self.shown_worker = (self.shown_worker + 1) % workers
        if self.live and hasattr(self.bridge, "show_worker"):
            self.bridge.show_worker(self.shown_worker)
        run_log = self.main.query_one(RunLog)
        exp = self.view.running_on(self.shown_worker)
        text = read_tail(self.workspace / exp.log) if exp is not None and exp.log else ""
        run_log.reset(text)
        if not self.live and exp is not None and exp.log:
            self.log_tail = FileTail(self.workspace / exp.log)
            self.log_tail.poll()  # what read_tail showed is not shown twice
        what = f" #{exp.n}" if exp is not None else ""
        run_log.border_title = f"run log · gpu{self.shown_worker}{what}"
        self.notify(f"run log: worker gpu{self.shown_worker}{what}")

    def action_edit_program(self) -> None:
        self.main.show_pane("program")
        self.main.query_one("#program-text").focus()

    def action_pane(self, pane: str) -> None:
        self.main.show_pane(pane)

    def action_replay(self) -> None:
        self.push_screen(ReplayScreen(self.workspace, self.tag, self.view.state.metric))

    def action_help(self) -> None:
        keys = [(_key_label(key), label) for key, _, label, _ in KEYS]
        keys += [("ctrl+s", "Save program.md (in the editor)"),
                 ("ctrl+l", "Load program.md from disk (after a conflict)"),
                 ("escape", "Leave the editor"), ("ctrl+p", "Command palette")]
        intro = ("Live session." if self.live else
                 f"Read-only view of a session run by {self.owner or 'another process'}.")
        self.push_screen(HelpScreen(keys, intro))

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    async def action_quit(self) -> None:
        if not self.loop_running:
            self.exit("quit")
            return

        def answered(answer: str | None) -> None:
            if answer == "s":
                self.exit("stop")
            elif answer == "l":
                self.exit("detach")

        in_flight = self.view.state.in_flight
        what = f"#{in_flight.n} is in flight" if in_flight else "the loop is running"
        self.push_screen(ConfirmScreen(
            f"Quit the cockpit? {what}.",
            [("s", "Stop it and quit"), ("l", "Leave it running headless"), ("c", "Cancel")]),
            answered)


def _title(exp: Experiment) -> str:
    return f"#{exp.n} {exp.description}"


def _key_label(key: str) -> str:
    return {"question_mark": "?"}.get(key, key)


class ReplayApp(App):
    """`cockpit replay`: the replay screen on its own (no loop, nothing written)."""

    CSS_PATH = CSS_FILE
    TITLE = "cockpit replay"

    def __init__(self, workspace: Path, tag: str, metric: str = "val_bpb") -> None:
        super().__init__()
        self.workspace, self.tag, self.metric = workspace, tag, metric

    def on_resize(self) -> None:
        relayout(self)

    def on_mount(self) -> None:
        self.theme = "textual-dark"
        self.push_screen(ReplayScreen(self.workspace, self.tag, self.metric, standalone=True))
