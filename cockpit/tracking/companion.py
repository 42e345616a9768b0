"""The exporter beside a session: a process of its own, started once the session serves
and told to finish (its stdin closed) once the session ended. The loop never waits on it;
the session's end waits at most `flush` seconds for its last results, then stops it (a
resumed session's exporter gives what was left)."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from cockpit.tracking.exporter import say, wanted
from cockpit.workspace.config import TrackingConfig

FLUSH_SECONDS = 10.0  # the session's last results get this long once it ended
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder `import cockpit` finds


class TrackerProcess:
    """The running exporter; `close` lets it give the session's last results and end."""

    def __init__(self, process: subprocess.Popen, flush: float) -> None:
        self.process = process
        self.flush = flush

    @property
    def pid(self) -> int:
        return self.process.pid

    def close(self) -> None:
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()  # its signal to give what is left and end
        except OSError:
            pass
        try:
            self.process.wait(self.flush)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            say(f"the tracking export did not finish within {self.flush:g} s: stopped; "
                "what is left is exported when the session resumes")


def command(workspace: Path, tag: str, settings: TrackingConfig) -> list[str]:
    return [sys.executable, "-m", "cockpit.tracking", str(workspace.resolve()), tag,
            "--settings", json.dumps(dataclasses.asdict(settings))]


def attach(workspace: Path, settings: TrackingConfig, tag: str, since: int = 0,
           flush: float = FLUSH_SECONDS) -> TrackerProcess | None:
    """The session's exporter, started (None when [tracking] asks for no tracker; `since`,
    the events before this start, needs no telling: the marker says what was given)."""
    if not wanted(settings):
        return None
    path = os.environ.get("PYTHONPATH", "")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(PACKAGE_ROOT), path) if p)}
    try:
        process = subprocess.Popen(command(workspace, tag, settings), stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, env=env, cwd=workspace,
                                   start_new_session=True)  # a Ctrl-C is the session's
    except OSError as exc:
        say(f"the tracking export could not start ({exc}); the research goes on")
        return None
    return TrackerProcess(process, flush)
