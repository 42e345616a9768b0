"""The session process: one per workspace, outliving every terminal.

It holds the workspace's lock, runs the coordinator, and serves the control socket: each
connection proves it knows the session's key, then either sends one request (pause,
approve #7, status, ...) and gets one answer, or subscribes and is fed the journal's events
(from where it left off), the live state and the training output. Every client has full
control and none is special; closing one never stops the research.

Output is coalesced per client (a flood costs a few sends a second, never a slow client's
backlog in the session), journal events are never dropped (a client too slow to keep up is
disconnected and resubscribes from its last event).
"""
from __future__ import annotations

import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing import AuthenticationError  # what multiprocessing.connection raises
from multiprocessing.connection import (
    Connection,
    Listener,
    answer_challenge,
    deliver_challenge,
)
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from cockpit import protocol
from cockpit.domain.errors import LOGGED, CockpitError
from cockpit.runners.processes import run_of
from cockpit.session.coordinator import Coordinator, Ending
from cockpit.workspace.lock import SessionLock

OUTPUT_INTERVAL = 0.05  # seconds between two sends of output to one client
OUTPUT_KEEP = 256 * 1024  # characters of a worker's output kept for a slow client
MAX_BACKLOG = 50_000  # messages queued for one client before it is cut off
HANDSHAKE_TIMEOUT = 5.0


class Subscriber:
    """One client's feed: messages in order, output coalesced, sent on its own thread."""

    def __init__(self, conn: Connection, output: bool = True) -> None:
        self.conn = conn
        self.wants_output = output  # a notifier has no use for the training output
        self.cond = threading.Condition()
        self.messages: deque[dict[str, Any]] = deque()
        # (worker, kind, n) -> [text, dropped characters]
        self.output: dict[tuple[int, str, int], list[Any]] = {}
        self.closed = False
        self.finishing = False  # the session ends: send what is queued, then close
        self.done = threading.Event()

    def push(self, message: dict[str, Any]) -> None:
        with self.cond:
            if self.closed:
                return
            if message["type"] == protocol.OUTPUT:
                if not self.wants_output:
                    return
                key = (message["worker"], message.get("kind", ""), message.get("n", 0))
                slot = self.output.setdefault(key, ["", 0])
                slot[0] += message["text"]
                if len(slot[0]) > OUTPUT_KEEP:
                    slot[1] += len(slot[0]) - OUTPUT_KEEP
                    slot[0] = slot[0][-OUTPUT_KEEP:]
            else:
                self.messages.append(message)
                if len(self.messages) > MAX_BACKLOG:
                    self.closed = True  # too slow: it will resubscribe from its last event
            self.cond.notify()

    def run(self) -> None:
        last_output = 0.0
        try:
            while True:
                with self.cond:
                    while not self.closed and not self.finishing and not self.messages and not (
                            self.output and time.monotonic() - last_output >= OUTPUT_INTERVAL):
                        wait = None if not self.output else \
                            max(0.0, OUTPUT_INTERVAL - (time.monotonic() - last_output))
                        self.cond.wait(wait)
                    if self.closed or (self.finishing and not self.messages and not self.output):
                        return
                    messages = list(self.messages)
                    self.messages.clear()
                    output = {}
                    if self.output and (self.finishing or
                                        time.monotonic() - last_output >= OUTPUT_INTERVAL):
                        output, self.output = self.output, {}
                for message in messages:
                    send(self.conn, message)
                for (worker, kind, n), (text, dropped) in output.items():
                    send(self.conn, {"type": protocol.OUTPUT, "worker": worker, "kind": kind,
                                     "n": n, "text": text, "dropped": dropped})
                    last_output = time.monotonic()
        except (OSError, EOFError, ValueError):
            return
        finally:
            self.close()
            self.done.set()

    def finish(self) -> None:
        """Send what is queued (the session's last events), then close."""
        with self.cond:
            self.finishing = True
            self.cond.notify()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()
        try:
            self.conn.close()
        except OSError:
            pass


class SessionServer:
    """The control socket of a running session."""

    def __init__(self, coordinator: Coordinator, path: Path, key: bytes) -> None:
        self.coordinator = coordinator
        self.path = path
        self.key = key
        old = os.umask(0o077)  # the socket file: the owner only
        try:
            self.listener = Listener(str(path), family="AF_UNIX")
        finally:
            os.umask(old)
        self.subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._closed = False
        coordinator.observers.append(self.publish)
        threading.Thread(target=self._accept, name="control-accept", daemon=True).start()

    def publish(self, message: dict[str, Any]) -> None:
        with self._lock:
            subscribers = list(self.subscribers)
        for subscriber in subscribers:
            subscriber.push(message)

    def close(self) -> None:
        self._closed = True
        try:
            self.listener.close()
        except OSError:
            pass
        with self._lock:
            subscribers = list(self.subscribers)
        for subscriber in subscribers:  # every client gets the session's last events
            subscriber.finish()
        deadline = time.monotonic() + 2.0
        for subscriber in subscribers:
            subscriber.done.wait(max(0.0, deadline - time.monotonic()))
            subscriber.close()
        try:
            self.path.unlink()
        except OSError:
            pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn = self.listener.accept()
            except OSError:
                if self._closed:
                    return
                continue
            threading.Thread(target=self._serve, args=(conn,), name="control-client",
                             daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        try:
            refused = _refused_peer(conn)
            if refused:  # not even a challenge: a run holding the key gets nothing either
                conn.close()
                self.coordinator.refused_client(refused)
                return
            if not _authenticate(conn, self.key):
                conn.close()
                return
            if not conn.poll(HANDSHAKE_TIMEOUT):
                conn.close()
                return
            request = protocol.receive(conn, protocol.MAX_REQUEST)
            refusal = protocol.version_refusal(request)
            op = request.pop("op", "")
            request.pop("version", None)
            if refusal:
                send(conn, {"type": protocol.REFUSED, "ok": False, "message": refusal})
            elif op == protocol.SUBSCRIBE:
                self._subscribe(conn, int(request.get("since", 0)),
                                bool(request.get("output", True)))
                return
            else:
                send(conn, self.coordinator.command(op, **request))
            conn.close()
        except (OSError, EOFError, ValueError, TypeError, AuthenticationError,
                protocol.ProtocolError):
            try:
                conn.close()
            except OSError:
                pass

    def _subscribe(self, conn: Connection, since: int, output: bool) -> None:
        subscriber = Subscriber(conn, output)
        coordinator = self.coordinator
        with coordinator.recorder.lock:  # no event falls between the backlog and the feed
            backlog = coordinator.events[since:]
            with self._lock:
                self.subscribers.add(subscriber)
        for frame in protocol.backlog_frames(since, backlog):
            subscriber.push(frame)
        subscriber.push({"type": protocol.LIVE, "live": coordinator.live()})
        try:
            subscriber.run()
        finally:
            with self._lock:
                self.subscribers.discard(subscriber)


send = protocol.send


def _authenticate(conn: Connection, key: bytes) -> bool:
    try:
        deliver_challenge(conn, key)
        answer_challenge(conn, key)
    except (AuthenticationError, EOFError, OSError):
        return False
    return True


def _refused_peer(conn: Connection) -> str:
    """Why the peer may not be a client ("" when it may): another user, or a process of a
    run (training code must never drive the session, whatever it has read). Linux tells
    the peer's pid and uid (SO_PEERCRED); elsewhere the socket's mode and the key decide."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return ""
    peer = socket.socket(fileno=os.dup(conn.fileno()))
    try:
        creds = peer.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    except OSError:
        return ""
    finally:
        peer.close()
    pid, uid, _ = struct.unpack("3i", creds)
    if uid != os.getuid():
        return f"uid {uid}, another user"
    run = run_of(pid)
    return f"pid {pid}, {run}" if run else ""


class Companion(Protocol):
    """A client living in the session's process (the notifier): closed after the
    session's last events reached it."""

    def close(self) -> None: ...


def serve_session(coordinator: Coordinator, max_experiments: int | None, background: bool,
                  log: str = "", measure: list[tuple[str, int, str]] | None = None,
                  companions: Sequence[Callable[[int], Companion | None]] = ()) -> Ending:
    """Be the session: take the lock, serve the socket, run the coordinator to its end.
    Each companion is started once the socket serves, told how many journal events came
    before this start, and closed once the socket is."""
    workspace = coordinator.workspace
    lock = SessionLock(workspace)
    socket_path, key_file = lock.acquire(coordinator.tag, log)
    server = None
    started: list[Companion] = []
    try:
        server = SessionServer(coordinator, socket_path, key_file.read_text().strip().encode())
        since = len(coordinator.events)
        started = [c for c in (start(since) for start in companions) if c is not None]
        _install_signals(coordinator, background)
        return coordinator.run(max_experiments, measure=measure)
    except CockpitError:
        raise  # a user mistake: one line, said by the command
    except Exception as exc:
        # the bug's traceback reaches the session's log before the lock is free (the
        # companions' last words may take seconds); the caller need not print it again
        print(f"cockpit failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        exc.__dict__[LOGGED] = True  # (Python 3.10 has no add_note)
        raise
    finally:
        if server is not None:
            server.close()
        key_file.unlink(missing_ok=True)
        lock.release()
        for companion in started:  # their last words go out with the workspace free again
            companion.close()


def _install_signals(coordinator: Coordinator, background: bool) -> None:
    """SIGTERM (and Ctrl-C in the foreground) ends the runs in flight and stops; a second
    Ctrl-C quits at once. In the background a hangup cannot reach the session."""
    count = 0

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal count
        count += 1
        if count > 1 and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if count == 1:  # a second SIGTERM (a group's, a supervisor's) asks nothing new
            print("stopping: ending the runs in flight (Ctrl-C again to quit at once)",
                  file=sys.stderr, flush=True)
            coordinator.interrupt()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if background:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
