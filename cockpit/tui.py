"""Opening the cockpit from the command line: live, watching, replay, and what happens
to a loop still running when the screen closes.

"Leave it running" keeps this process: the screen closes, the loop thread goes on with a
HeadlessPrinter writing to .cockpit/<tag>/headless.log, and SIGHUP is ignored so an SSH
disconnect does not end it. `cockpit` started again in the workspace finds the lock held
and opens a read-only view of that session, fed by its journal and current run.log.
"""
from __future__ import annotations

import fcntl
import os
import re
import signal
import sys
from pathlib import Path

from cockpit.config import Config
from cockpit.journal import STATE_DIR, session_dir
from cockpit.workspace import WorkspaceError, latest_session

STOP_WAIT = 30.0  # seconds to wait for the run in flight to end after "stop"


def require_terminal() -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise WorkspaceError("the cockpit needs a terminal (this is not a TTY): "
                             "use `cockpit run --headless` for a run without a screen")


def lock_owner(workspace: Path) -> str | None:
    """The text of .cockpit/lock when another process holds it ("pid N, session T, ..")."""
    path = workspace / STATE_DIR / "lock"
    if not path.exists():
        return None
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            return handle.read().strip() or "another process"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def owner_session(owner: str) -> str | None:
    match = re.search(r"session ([^,\s]+)", owner)
    return match.group(1) if match else None


def watch(workspace: Path, config: Config, owner: str, tag: str | None) -> int:
    """A read-only view of the session another process is running."""
    from cockpit.app import CockpitApp

    tag = owner_session(owner) or tag or latest_session(workspace)
    if tag is None:
        raise WorkspaceError(f"a cockpit session is running here ({owner}) but has no journal yet")
    CockpitApp(workspace, tag, owner=owner, metric=config.metric.name,
               direction=config.metric.direction).run()
    return 0


def run_live(workspace: Path, config: Config, loop, auto_approve: bool,
             max_experiments: int | None) -> int:
    from cockpit.app import CockpitApp
    from cockpit.bridge import LoopBridge

    bridge = LoopBridge(loop, post=None, auto_approve=auto_approve,
                        max_experiments=max_experiments)
    app = CockpitApp(workspace, loop.tag, bridge, metric=config.metric.name,
                     direction=config.metric.direction)
    result = app.run()
    if not bridge.alive:
        if bridge.error:
            print(f"cockpit: {bridge.finished}", file=sys.stderr)
            return 2
        if bridge.finished:
            print(f"cockpit: {bridge.finished}. Results: results.tsv, experiments.md")
        return 0
    if result == "detach":
        return go_headless(bridge, workspace)
    print("cockpit: stopping the loop (ending the run in flight) ...", flush=True)
    stop(bridge)
    bridge.thread.join(STOP_WAIT)
    return 0


def stop(bridge) -> None:
    bridge.loop.request_stop(now=True)
    bridge.gate.decide_all(False, "the cockpit was closed before a decision")


def go_headless(bridge, workspace: Path) -> int:
    from cockpit.headless import HeadlessPrinter

    log_path = session_dir(workspace, bridge.loop.tag) / "headless.log"
    stream = open(log_path, "a", buffering=1, encoding="utf-8")
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # an SSH disconnect must not end the night
    signal.signal(signal.SIGINT, lambda *_: stop(bridge))
    signal.signal(signal.SIGTERM, lambda *_: stop(bridge))
    bridge.detach(HeadlessPrinter(stream=stream, metric=bridge.loop.state.metric))
    print(f"cockpit: the loop goes on without a screen in this process (pid {os.getpid()}); "
          f"log: {log_path.relative_to(workspace)}; run `cockpit` here to watch it",
          flush=True)
    _quiet_terminal()
    while bridge.thread.is_alive():
        bridge.thread.join(1.0)
    stream.close()
    return 0


def _quiet_terminal() -> None:
    """After an SSH disconnect the terminal is gone: nothing may write to it any more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


def replay(workspace: Path, config: Config, tag: str | None) -> int:
    from cockpit.app import ReplayApp

    tag = tag or latest_session(workspace)
    if tag is None or not (session_dir(workspace, tag) / "journal.jsonl").exists():
        raise WorkspaceError(f"no session {'named ' + tag + ' ' if tag else ''}to replay in "
                             f"{workspace}: run `cockpit` first")
    ReplayApp(workspace, tag, config.metric.name).run()
    return 0
