"""The loop on its own thread, talking to a screen only through posted messages.

- on_event -> a LoopEvent message; on_output -> a bounded OutputBuffer the screen drains
  on a timer (a message per chunk would starve the event loop in a flood);
- approver -> an ApprovalRequested message, then the loop thread waits on a
  threading.Event that the screen's approve / reject actions set.

The thread is a plain thread, not a Textual worker, because it may outlive the screen:
"leave it running" on quit detaches the bridge and the same process goes on headless.
"""
from __future__ import annotations

import threading
from typing import Callable

from cockpit.feeds import RUN_MARK, OutputBuffer
from cockpit.loop import ResearchLoop
from cockpit.messages import ApprovalRequested, LoopEvent, LoopFinished


class ApprovalGate:
    """Proposals waiting for the human, oldest first: each asker blocks in wait(n) until
    its own decision (with parallel workers several proposals may wait at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[int, list] = {}  # n -> [event, answer], in arrival order

    @property
    def pending(self) -> int | None:
        """The proposal the human decides on next (the oldest waiting)."""
        with self._lock:
            return next(iter(self._waiting), None)

    @property
    def queue(self) -> list[int]:
        with self._lock:
            return list(self._waiting)

    def wait(self, n: int) -> tuple[bool, str]:
        slot = [threading.Event(), (False, "")]
        with self._lock:
            self._waiting[n] = slot
        slot[0].wait()
        return slot[1]

    def decide(self, approved: bool, reason: str = "") -> bool:
        """Answer the oldest waiting proposal; False when none is waiting."""
        with self._lock:
            if not self._waiting:
                return False
            n = next(iter(self._waiting))
            slot = self._waiting.pop(n)  # gone at once: `pending` moves on to the next
        slot[1] = (approved, reason)
        slot[0].set()
        return True

    def decide_all(self, approved: bool, reason: str = "") -> None:
        while self.decide(approved, reason):
            pass


class LoopBridge:
    def __init__(self, loop: ResearchLoop, post: Callable, auto_approve: bool = False,
                 max_experiments: int | None = None) -> None:
        self.loop = loop
        self.post = post  # App.post_message: thread-safe
        self.buffer = OutputBuffer()  # the output shown: worker `shown_worker`'s
        self.shown_worker = 0
        self.gate = ApprovalGate()
        self.max_experiments = max_experiments
        self.finished: str | None = None  # why the loop ended
        self.error = False  # ... and whether that was a failure
        self._printer = None  # a HeadlessPrinter once detached
        loop.on_event = self._on_event
        loop.on_output = self._on_output
        if hasattr(loop, "on_worker_output"):  # parallel workers: one log each
            loop.on_worker_output = self._on_worker_output
        loop.approver = self._approve
        loop.auto_approve = auto_approve
        self.thread = threading.Thread(target=self._run, name="research-loop", daemon=True)

    def start(self) -> None:
        self.thread.start()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    @property
    def run_active(self) -> bool:
        return self.alive and self.loop.state.in_flight is not None

    def set_auto_approve(self, on: bool) -> None:
        self.loop.auto_approve = on
        if on:
            self.gate.decide_all(True)  # proposals already waiting go ahead

    def detach(self, printer) -> None:
        """No more screen: events and output go to `printer` (a HeadlessPrinter)."""
        self._printer = printer
        self.post = lambda message: None
        self.loop.auto_approve = True
        self.loop.interactive = False  # a later pause (cost, provider) ends it: no one to resume
        self.gate.decide_all(True)
        if self.loop.pause_kind:  # paused for cost or a failing provider: no one can lift it
            self.loop.request_stop()
        else:  # "leave it running" means running, even if the human had paused it
            self.loop.resume()

    # -- called on the loop thread -------------------------------------------------
    def _on_event(self, kind: str, data: dict) -> None:
        if self._printer is not None:
            self._printer.on_event(kind, data)
            return
        if kind == "awaiting_approval":
            return  # the approver posts its own message with everything needed
        if kind in ("run_start", "preparing", "measuring") and \
                data.get("worker", self.shown_worker) == self.shown_worker:
            # in-band, so the screen never mixes the end of one run with the next
            self.buffer.append(RUN_MARK)
        self.post(LoopEvent(kind, data))

    def _on_output(self, text: str) -> None:
        if self._printer is not None:
            self._printer.on_output(text)
        else:
            self.buffer.append(text)

    def _on_worker_output(self, worker: int, text: str) -> None:
        # Only the shown worker's output is buffered; the others' is in their run.log,
        # which the screen reads when the human switches to them.
        if self._printer is None and worker == self.shown_worker:
            self.buffer.append(text)

    def show_worker(self, worker: int) -> None:
        self.shown_worker = worker
        self.buffer.drain()

    def _approve(self, n: int, proposal, diff: str) -> tuple[bool, str]:
        if self._printer is not None:
            return True, ""
        self.post(ApprovalRequested(n, proposal.description, proposal.hypothesis, diff))
        return self.gate.wait(n)

    def _run(self) -> None:
        try:
            why = self.loop.run(self.max_experiments)
            error = False
        except Exception as exc:  # a LoopError is a one-line user message; others too
            why, error = f"{type(exc).__name__}: {exc}" if not _user_error(exc) else str(exc), True
        self.finished, self.error = why, error
        if self._printer is not None:
            self._printer.say(f"done: {why}")
        self.post(LoopFinished(why, error))


def _user_error(exc: Exception) -> bool:
    from cockpit.cli import USER_ERRORS
    return isinstance(exc, USER_ERRORS)
