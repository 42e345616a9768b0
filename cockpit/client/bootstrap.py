"""Finding or starting a workspace's session, the one place that decides which tag a
client runs or shows: the tag asked for, the session that died, the latest, or a new one.

A session started here is a process of its own in the background, out of reach of the
terminal, ready once it serves its socket.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cockpit.client.connection import NoSession
from cockpit.workspace.checks import WorkspaceError
from cockpit.workspace.history import History, HistoryError
from cockpit.workspace.lock import SessionInfo, read_session
from cockpit.workspace.paths import journal_path, session_log
from cockpit.workspace.sessions import fresh_tag, latest_session, validate_tag

START_TIMEOUT = 60.0  # seconds for a new session process to come up


def choose_tag(workspace: Path, asked: str | None, last: SessionInfo | None) -> str:
    """The session to run: the one asked for, the one the lock names (it died), the
    latest, or a new one named like the reference's (`dec6`)."""
    if asked:
        return validate_tag(asked)
    if last is not None and last.tag:
        return last.tag
    latest = latest_session(workspace)
    if latest:
        return latest
    with History(workspace) as history:
        return fresh_tag(history.branch_exists)


def shown_tag(workspace: Path, asked: str | None = None) -> str:
    """The session a client shows without starting one: the one asked for, the running
    one, else the latest; one line when there is none to show."""
    if asked:
        tag: str | None = validate_tag(asked)
    else:
        running = read_session(workspace)
        tag = running.tag if running is not None and running.tag else latest_session(workspace)
    if tag is None or not journal_path(workspace, tag).exists():
        named = f"named {tag} " if asked else ""
        raise WorkspaceError(f"no session {named}in {workspace} yet: run `cockpit run` first")
    return tag


def require_commits(workspace: Path) -> None:
    with History(workspace) as history:
        if not history.has_commits():
            raise HistoryError(f"{workspace} has no commits yet: commit your files first")


@dataclass
class Attached:
    """The session a client reaches: its tag, and what was done to reach it."""

    tag: str
    how: str  # "running" | "started" | "resumed"
    pid: int = 0
    log: Path | None = None


def ensure_session(workspace: Path, asked: str | None, options: list[str]) -> Attached:
    """The running session, or one started in the background (a dead one resumed)."""
    running = read_session(workspace)
    if running is not None and running.alive:
        return Attached(running.tag, "running", running.pid)
    require_commits(workspace)
    tag = choose_tag(workspace, asked, running)
    pid, log = start_detached(workspace, tag, options)
    return Attached(tag, "resumed" if running is not None else "started", pid, log)


def start_detached(workspace: Path, tag: str, options: list[str]) -> tuple[int, Path]:
    """Start a session process in the background (its own session and process group, out
    of reach of the terminal's hangup); its pid and log once it serves its socket."""
    log = session_log(workspace, tag)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "cockpit", "-C", str(workspace), "run", "--headless",
               "--background", "--tag", tag, *options]
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   cwd=workspace, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        info = read_session(workspace)
        if info is not None and info.alive and info.pid == process.pid \
                and Path(info.socket).exists():
            return process.pid, log
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise NoSession(f"the session process ended at once: {tail[0]} (log: {log})")
        time.sleep(0.05)
    raise NoSession(f"the session process did not come up within {START_TIMEOUT:g} s "
                    f"(log: {log})")
