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
    """One pending decision at a time; the loop thread blocks in wait()."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._answer: tuple[bool, str] = (False, "")
        self.pending: int | None = None

    def wait(self, n: int) -> tuple[bool, str]:
        self._event.clear()
        self.pending = n
        self._event.wait()
        self.pending = None
        return self._answer

    def decide(self, approved: bool, reason: str = "") -> bool:
        """Answer the pending proposal; False when none is pending."""
        if self.pending is None:
            return False
        self._answer = (approved, reason)
        self._event.set()
        return True


class LoopBridge:
    def __init__(self, loop: ResearchLoop, post: Callable, auto_approve: bool = False,
                 max_experiments: int | None = None) -> None:
        self.loop = loop
        self.post = post  # App.post_message: thread-safe
        self.buffer = OutputBuffer()
        self.gate = ApprovalGate()
        self.max_experiments = max_experiments
        self.finished: str | None = None  # why the loop ended
        self.error = False  # ... and whether that was a failure
        self._printer = None  # a HeadlessPrinter once detached
        loop.on_event = self._on_event
        loop.on_output = self._on_output
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
            self.gate.decide(True)  # a proposal already waiting goes ahead

    def detach(self, printer) -> None:
        """No more screen: events and output go to `printer` (a HeadlessPrinter)."""
        self._printer = printer
        self.post = lambda message: None
        self.loop.auto_approve = True
        self.gate.decide(True)

    # -- called on the loop thread -------------------------------------------------
    def _on_event(self, kind: str, data: dict) -> None:
        if self._printer is not None:
            self._printer.on_event(kind, data)
            return
        if kind == "awaiting_approval":
            return  # the approver posts its own message with everything needed
        if kind in ("run_start", "preparing", "measuring"):
            # in-band, so the screen never mixes the end of one run with the next
            self.buffer.append(RUN_MARK)
        self.post(LoopEvent(kind, data))

    def _on_output(self, text: str) -> None:
        if self._printer is not None:
            self._printer.on_output(text)
        else:
            self.buffer.append(text)

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
