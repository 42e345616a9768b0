"""The wire between the session process and its clients, both ends in one module.

A connection to the session's socket proves it knows the session's key (multiprocessing's
challenge), then sends one frame: a request (`{"op": "pause", "version": 1}`) answered by
one frame, or a subscription (`{"op": "subscribe", "since": 120, "version": 1}`) answered
by a feed of frames until either side closes. Every client frame names the protocol
version it speaks; the session refuses another version in one line, before it acts.

Frames are JSON objects, bounded in size both ways: a client's request is small (a steer's
words at most), a session's frame is at most a chunk of journal events.
"""
from __future__ import annotations

import json
from multiprocessing.connection import Connection
from typing import Any

from cockpit.domain.errors import CockpitError

VERSION = 1  # bumped whenever a frame changes shape; both ends must speak the same
MAX_REQUEST = 1 << 20  # bytes of one client frame
MAX_FRAME = 64 << 20  # bytes of one session frame
BACKLOG_CHUNK = 2_000  # journal events per frame of a subscription's backlog

# --- client -> session ------------------------------------------------------------------
SUBSCRIBE = "subscribe"  # op: a live feed from event `since` on (`output`: false leaves the
                         # training output out); any other op is a command

# --- session -> client (the "type" of a feed's frame) -----------------------------------
JOURNAL = "journal"  # {"start": index of the first event, "events": [...]}
LIVE = "live"        # {"live": the session's live state (runs, awaiting, paused, ...)}
OUTPUT = "output"    # {"worker", "kind", "n", "text", "dropped": characters lost to a slow read}
REFUSED = "refused"  # {"message"}: the session will not serve this client (then it closes)
CLOSED = "closed"    # made by the client's reader when the session goes away


class ProtocolError(CockpitError):
    """A frame that is not this protocol's (one line)."""


def request_frame(op: str, **args: Any) -> dict:
    return {"op": op, "version": VERSION, **args}


def version_refusal(frame: dict) -> str:
    """Why the session cannot serve a client sending `frame` ("" when it can)."""
    theirs = frame.get("version")
    if theirs == VERSION:
        return ""
    return (f"this session speaks protocol {VERSION}, the client "
            f"{theirs if theirs is not None else 'an older one'}: use the same cockpit for "
            "both (restart the session with `cockpit stop` and `cockpit run --detach`)")


def backlog_frames(start: int, events: list[dict]) -> list[dict]:
    """A subscription's backlog as journal frames of at most BACKLOG_CHUNK events (one
    frame, maybe empty, when there are few)."""
    frames = [{"type": JOURNAL, "start": start + i, "events": events[i:i + BACKLOG_CHUNK]}
              for i in range(0, len(events), BACKLOG_CHUNK)]
    return frames or [{"type": JOURNAL, "start": start, "events": []}]


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":"), default=str).encode()


def send(conn: Connection, message: dict) -> None:
    conn.send_bytes(encode(message))


def receive(conn: Connection, limit: int) -> dict:
    """The next frame, at most `limit` bytes (OSError past it), as a JSON object."""
    frame = json.loads(conn.recv_bytes(limit))
    if not isinstance(frame, dict):
        raise ProtocolError(f"a frame is a JSON object, not {type(frame).__name__}")
    return frame
