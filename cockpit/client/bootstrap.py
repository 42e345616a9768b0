"""Starting a session: a process of its own in the background, out of reach of the
terminal, ready once it serves its socket."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from cockpit.client.connection import NoSession
from cockpit.workspace.lock import read_session
from cockpit.workspace.paths import session_dir


START_TIMEOUT = 60.0  # seconds for a new session process to come up

def start_detached(workspace: Path, tag: str, options: list[str]) -> tuple[int, Path]:
    """Start a session process in the background (its own session and process group, out
    of reach of the terminal's hangup); its pid and log once it serves its socket."""
    log = session_dir(workspace, tag) / "session.log"
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
