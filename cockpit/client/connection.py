"""A client of the session process: one request and its answer, or a live feed.

Used alike by the CLI verbs (status, pause, approve #7, ...), the cockpit (TUI) and any
script. A session that is not running, or died, is said so in one line.
"""
from __future__ import annotations

import json
import threading
from multiprocessing.connection import Client, Connection, answer_challenge, deliver_challenge
from pathlib import Path
from typing import Callable

from cockpit.workspace.lock import SessionInfo, read_key, read_session
from cockpit.domain.errors import CockpitError

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
        conn.send_bytes(json.dumps({"op": op, **args}).encode())
        if not conn.poll(timeout):
            raise NoSession(f"the {info.described} did not answer within {timeout:g} s")
        return json.loads(conn.recv_bytes())
    except (EOFError, OSError) as exc:
        raise NoSession(f"the {info.described} went away: {exc}") from None
    finally:
        conn.close()


class Subscription:
    """A live feed from the session on a thread of its own: each message is handed to
    on_message (journal events, live state, output); when the session goes away,
    on_message gets {"type": "closed"}."""

    def __init__(self, workspace: Path, since: int, on_message: Callable[[dict], None]) -> None:
        self.info = live_session(workspace)
        self.conn = connect(self.info)
        self.conn.send_bytes(json.dumps({"op": "subscribe", "since": since}).encode())
        self.on_message = on_message
        self._closing = False
        self.thread = threading.Thread(target=self._read, name="session-feed", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while True:
                self.on_message(json.loads(self.conn.recv_bytes()))
        except (EOFError, OSError, ValueError, TypeError):  # TypeError: closed under the read
            pass
        if not self._closing:
            self.on_message({"type": "closed"})

    def close(self) -> None:
        self._closing = True
        try:
            self.conn.close()
        except OSError:
            pass


