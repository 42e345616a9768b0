"""The cockpit's link to its session: the feed's messages become posted App messages, the
training output lands in bounded buffers the screen drains on a timer (a message per chunk
would starve the event loop in a flood), and commands go out on threads of their own."""
from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from cockpit import protocol
from cockpit.client.connection import NoSession, Subscription, request
from cockpit.tui.feeds import OutputBuffer
from cockpit.tui.messages import Answered, JournalArrived, LiveChanged, SessionGone

MAX_BUFFERS = 8  # runs whose output is kept while not shown (a few workers' current runs)


class SessionLink:
    def __init__(self, workspace: Path, post: Callable) -> None:
        self.workspace = workspace
        self.post = post  # App.post_message: thread-safe
        self.client_id = uuid.uuid4().hex[:12]
        self.seen = 0  # journal events received
        self.outputs: dict[tuple, OutputBuffer] = {}  # (worker, kind, n) -> its output
        self._lock = threading.Lock()
        self._commands: queue.Queue = queue.Queue()
        self._sender: threading.Thread | None = None
        self.subscription: Subscription | None = None

    def connect(self) -> None:
        """Subscribe from the last event seen (again, after a drop)."""
        self.subscription = Subscription(self.workspace, self.seen, self._message)

    def close(self) -> None:
        if self.subscription is not None:
            self.subscription.close()
            self.subscription = None

    def output(self, key: tuple) -> OutputBuffer:
        with self._lock:
            buffer = self.outputs.get(key)
            if buffer is None:
                buffer = self.outputs[key] = OutputBuffer()
                while len(self.outputs) > MAX_BUFFERS:
                    self.outputs.pop(next(iter(self.outputs)))
            return buffer

    def send(self, op: str, **args) -> None:
        """A command, answered later with an Answered message (never blocks the screen);
        commands go out one at a time, in the order they were given."""
        self._commands.put((op, args))
        if self._sender is None:
            self._sender = threading.Thread(target=self._send_all, name="commands",
                                            daemon=True)
            self._sender.start()

    def _send_all(self) -> None:
        while True:
            op, args = self._commands.get()
            try:
                answer = request(self.workspace, op, **args)
            except NoSession as exc:
                answer = {"ok": False, "message": str(exc)}
            if op != "hold":  # holds are bookkeeping, not news
                self.post(Answered(op, answer))

    # -- the feed's thread ------------------------------------------------------------------
    def _message(self, message: dict) -> None:
        kind = message["type"]
        if kind == protocol.JOURNAL:
            start, events = message["start"], message["events"]
            fresh = events[max(0, self.seen - start):]  # a resubscribe may repeat some
            if fresh and start <= self.seen:
                self.seen += len(fresh)
                self.post(JournalArrived(self.seen - len(fresh), fresh))
        elif kind == protocol.LIVE:
            self.post(LiveChanged(message["live"]))
        elif kind == protocol.OUTPUT:
            buffer = self.output((message["worker"], message.get("kind", ""), message["n"]))
            buffer.append(message["text"], dropped_chars=message.get("dropped", 0))
        elif kind == protocol.CLOSED:
            self.post(SessionGone(message.get("why", "")))
