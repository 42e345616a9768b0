"""A client of the session process: one request and its answer, or a live feed.

Used alike by the CLI verbs (status, pause, approve #7, ...), the cockpit (TUI) and any
script. A session that is not running, or died, is said so in one line.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, answer_challenge, deliver_challenge
from pathlib import Path

from cockpit import protocol
from cockpit.domain.errors import CockpitError
from cockpit.workspace.lock import SessionInfo, read_key, read_session

CONNECT_TIMEOUT = 5.0


class NoSession(CockpitError):
    """No live session in the workspace (one line, saying how to start one)."""


def live_session(workspace: Path) -> SessionInfo:
    """The running session, or NoSession saying why there is none."""
    info = read_session(workspace)
    if info is None:
        raise NoSession(f"no cockpit session is running in {workspace}: start one with "
                        "`cockpit run --detach` (or `cockpit`)")
    if not info.alive:
        raise NoSession(f"the {info.described} in {workspace} is not running (it died); "
                        "`cockpit run --detach` resumes it")
    return info


def connect(info: SessionInfo) -> Connection:
    try:
        conn = Client(info.socket, family="AF_UNIX")
    except (OSError, EOFError) as exc:
        raise NoSession(f"cannot reach the {info.described}: {exc}") from None
    key = read_key(info)
    try:
        answer_challenge(conn, key)
        deliver_challenge(conn, key)
    except Exception as exc:  # a wrong key, a dead peer: one line either way
        conn.close()
        raise NoSession(f"the {info.described} refused this client: {exc}") from None
    return conn


def request(workspace: Path, op: str, timeout: float = 15.0, **args) -> dict:
    """Send one command to the session; its answer ({"ok", "message", ...})."""
    info = live_session(workspace)
    conn = connect(info)
    try:
        protocol.send(conn, protocol.request_frame(op, **args))
        if not conn.poll(timeout):
            raise NoSession(f"the {info.described} did not answer within {timeout:g} s")
        answer = protocol.receive(conn, protocol.MAX_FRAME)
        if answer.get("type") == protocol.REFUSED:
            raise NoSession(answer["message"])
        return answer
    except (EOFError, OSError, ValueError) as exc:
        raise NoSession(f"the {info.described} went away: {exc}") from None
    finally:
        conn.close()


class Subscription:
    """A live feed from the session on a thread of its own: each message is handed to
    on_message (journal events, live state, output); when the session goes away,
    on_message gets {"type": "closed", "why": ...}."""

    def __init__(self, workspace: Path, since: int, on_message: Callable[[dict], None],
                 output: bool = True) -> None:
        self.info = live_session(workspace)
        self.conn = connect(self.info)
        protocol.send(self.conn, protocol.request_frame(protocol.SUBSCRIBE, since=since,
                                                        output=output))
        self.on_message = on_message
        self._closing = False
        self.thread = threading.Thread(target=self._read, name="session-feed", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        why = ""
        try:
            while True:
                message = protocol.receive(self.conn, protocol.MAX_FRAME)
                if message.get("type") == protocol.REFUSED:
                    why = message["message"]
                    break
                self.on_message(message)
        except (EOFError, OSError, ValueError, TypeError):  # TypeError: closed under the read
            pass
        if not self._closing:
            self.on_message({"type": protocol.CLOSED, "why": why})

    def close(self) -> None:
        self._closing = True
        try:
            self.conn.close()
        except OSError:
            pass


