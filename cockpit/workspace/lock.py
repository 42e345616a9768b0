"""Where a session is found, and whether it lives: the lock, the control socket, the key.

The session process holds an exclusive flock on .cockpit/lock for its whole life and writes
who it is into it (pid, the process's start time, tag, socket). The kernel drops the flock
when the process dies, however it dies, so liveness is known, not guessed: a lock file whose
flock is free names a dead session (stale), whatever pid it lists.

The control channel is a Unix socket only the owner can use: it sits in a directory of mode
0700 with a key file of mode 0600, and every connection proves it knows the key
(multiprocessing.connection's HMAC challenge). Nothing listens on a network port.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from cockpit.domain.errors import CockpitError
from cockpit.workspace.paths import KEY_NAME, SOCKET_NAME, STATE_DIR

LOCK_NAME = "lock"
MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to ~107 bytes


@dataclass
class SessionInfo:
    """What the lock file says of a session, and whether that session is alive."""

    alive: bool
    pid: int = 0
    started: str = ""  # the process's start time (from /proc), to tell a reused pid
    tag: str = ""
    socket: str = ""
    key_file: str = ""
    since: float = 0.0
    log: str = ""

    @property
    def described(self) -> str:
        return f"session {self.tag} (pid {self.pid})"


def lock_path(workspace: Path) -> Path:
    return workspace / STATE_DIR / LOCK_NAME


def read_session(workspace: Path) -> SessionInfo | None:
    """The session the lock names, alive or dead; None when there never was one (or it
    ended cleanly: a session that ends empties its lock)."""
    path = lock_path(workspace)
    try:
        handle = open(path, "r+")  # noqa: SIM115  (closed below, after the lock's look)
    except FileNotFoundError:
        return None
    with handle:
        text = handle.read().strip()
        if not text:
            return None
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            alive = True
        else:
            fcntl.flock(handle, fcntl.LOCK_UN)
            alive = False
    try:
        data = json.loads(text)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    info = SessionInfo(alive=alive, **{k: v for k, v in data.items()
                                       if k in SessionInfo.__dataclass_fields__ and k != "alive"})
    if alive and info.pid and process_start(info.pid) not in ("", info.started):
        info.alive = False  # the flock holder is not the process the file names
    return info


class SessionLock:
    """The session process's claim on a workspace, held until it exits."""

    def __init__(self, workspace: Path) -> None:
        self.path = lock_path(workspace)
        self.handle: TextIO | None = None  # the open lock file while held

    def acquire(self, tag: str, log: str = "") -> tuple[Path, Path]:
        """Take the lock; the socket path and key file to serve on. Raises
        SessionRunning when another live session holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115  (held open: it is the lock)
        for _ in range(50):  # a client's look (a brief shared lock) is not a session
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.01)
        else:
            handle.close()
            raise SessionRunning(read_session(self.path.parent.parent))
        self.handle = handle
        run_dir = private_dir(self.path.parent / "run", self.path.parent.parent)
        socket, key_file = run_dir / SOCKET_NAME, run_dir / KEY_NAME
        socket.unlink(missing_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        info = {"pid": os.getpid(), "started": process_start(os.getpid()), "tag": tag,
                "socket": str(socket), "key_file": str(key_file), "since": time.time(),
                "log": log}
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(info) + "\n")
        handle.flush()
        return socket, key_file

    def release(self) -> None:
        """Empty the lock (it names no one) and drop the flock."""
        if self.handle is None:
            return
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.flush()
        self.handle.close()  # releases the flock
        self.handle = None


class SessionRunning(CockpitError):
    """Another live session holds the workspace (or its socket's place is unsafe)."""

    def __init__(self, info: SessionInfo | None, message: str = "") -> None:
        super().__init__(message or f"a cockpit {info.described if info else 'session'} is "
                         "already running in this workspace")
        self.info = info

    @classmethod
    def unsafe(cls, directory: Path) -> SessionRunning:
        return cls(None, f"{directory} belongs to another user: remove it or set "
                         "XDG_RUNTIME_DIR to a directory of your own")


def runtime_dir() -> Path:
    """Where sessions whose workspace path is too long for a socket keep theirs (one
    directory per user: runs never see it)."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    return base / f"cockpit-{os.getuid()}"


def private_dir(preferred: Path, workspace: Path) -> Path:
    """A directory only this user can enter, short enough to hold a socket path: `preferred`,
    or one under the runtime dir (or /tmp) when the workspace's path is too long."""
    private = [preferred]
    if len(str(preferred / SOCKET_NAME)) > MAX_SOCKET_PATH:
        digest = hashlib.sha1(str(workspace.resolve()).encode()).hexdigest()[:16]
        private = [runtime_dir(), runtime_dir() / digest]
    for directory in private:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if directory.stat().st_uid != os.getuid():
            raise SessionRunning.unsafe(directory)
        os.chmod(directory, 0o700)
    return private[-1]


def read_key(info: SessionInfo) -> bytes:
    return Path(info.key_file).read_text().strip().encode()


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), "" where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]
