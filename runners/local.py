"""Run one training command as a subprocess in its own process group, under a watchdog.

Output (stdout and stderr merged) streams to a log file and to an optional callback.
At the hard timeout, or on stop(), the whole group gets SIGTERM, then SIGKILL after a
grace period, so a train.py that spawned dataloader workers leaves nothing behind.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
READ_SIZE = 65536
SECRET_NAME = re.compile(r"(_API_KEY|_TOKEN|_SECRET)$|^(API_KEY|TOKEN|SECRET)$", re.IGNORECASE)


def training_env(extra: dict[str, str] | None = None, passthrough=()) -> dict[str, str]:
    """This process's environment without secrets: agent-written code never sees API keys."""
    env = {k: v for k, v in os.environ.items() if not SECRET_NAME.search(k)}
    env.update({k: os.environ[k] for k in passthrough if k in os.environ})
    env["PYTHONUNBUFFERED"] = "1"  # progress lines arrive as they are printed
    env.update(extra or {})
    return env


def split_command(command: str) -> list[str]:
    """Split a train command; a bare `python`/`python3` means the Python running cockpit,
    so a venv's cockpit trains with that venv's torch even when the venv is not activated."""
    argv = shlex.split(command)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


@dataclass
class RunResult:
    returncode: int | None
    seconds: float
    timed_out: bool = False
    stopped: bool = False  # ended by stop(), i.e. by the human
    error: str = ""  # the command could not start at all


class LocalRunner:
    """Runs one experiment at a time on this machine."""

    def __init__(self, kill_grace: float = KILL_GRACE) -> None:
        self.kill_grace = kill_grace
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._stop_requested = False

    def run(
        self,
        command: str,
        cwd: Path,
        log_path: Path,
        timeout: float,
        env: dict[str, str] | None = None,
        on_output: Callable[[str], None] | None = None,
        on_start: Callable[[int], None] | None = None,
        run_id: str | None = None,
        sandbox=None,
    ) -> RunResult:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        self._stop_requested = False
        self._timed_out = False
        with open(log_path, "wb") as log:
            try:
                proc = subprocess.Popen(
                    split_command(command),
                    cwd=cwd,
                    env=env if env is not None else training_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, out of the terminal's ^C
                )
            except (OSError, ValueError) as exc:
                message = f"cannot start `{command}`: {exc}"
                log.write((message + "\n").encode())
                return RunResult(None, 0.0, error=message)
            with self._lock:
                self._proc = proc
            if on_start is not None:
                on_start(proc.pid)
            timer = threading.Timer(timeout, self._time_out, args=(proc,))
            timer.daemon = True
            timer.start()
            try:
                self._pump(proc, log, on_output)
                returncode = proc.wait()
            finally:
                timer.cancel()
                with self._lock:
                    self._proc = None
                self._reap_group(proc)
        seconds = time.monotonic() - start
        return RunResult(
            returncode, seconds, timed_out=self._timed_out, stopped=self._stop_requested
        )

    def stop(self) -> None:
        """End the current run now (the human asked for it)."""
        with self._lock:
            proc = self._proc
        if proc is not None:
            self._stop_requested = True
            threading.Thread(target=self._terminate, args=(proc,), daemon=True).start()

    @property
    def running(self) -> bool:
        return self._proc is not None

    def _time_out(self, proc: subprocess.Popen) -> None:
        self._timed_out = True
        self._terminate(proc)

    @staticmethod
    def _pump(proc: subprocess.Popen, log, on_output) -> None:
        fd = proc.stdout.fileno()
        while True:
            chunk = os.read(fd, READ_SIZE)
            if not chunk:
                break
            log.write(chunk)
            log.flush()
            if on_output is not None:
                on_output(chunk.decode("utf-8", errors="replace"))
        proc.stdout.close()

    def _terminate(self, proc: subprocess.Popen) -> None:
        """SIGTERM the group, then SIGKILL whatever is left of it after the grace period.

        The group is signalled even when the leader has already exited: a child it left
        behind may still hold the output pipe open."""
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(self.kill_grace)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(proc.pid, signal.SIGKILL)

    @staticmethod
    def _reap_group(proc: subprocess.Popen) -> None:
        # The leader exited; children it left in the group (workers, a forked helper) go too.
        _signal_group(proc.pid, signal.SIGKILL)


def kill_orphan(pid: int) -> bool:
    """Kill the process group a previous cockpit left running (it was SIGKILLed mid-run).

    Only a live group whose leader is still `pid` is touched, so a recycled pid of some
    unrelated process is left alone. Returns whether anything was killed."""
    try:
        if os.getpgid(pid) != pid:
            return False
    except ProcessLookupError:
        return False
    _signal_group(pid, signal.SIGKILL)
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
