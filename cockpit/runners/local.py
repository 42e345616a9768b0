"""Run one training command as a subprocess under a watchdog that nothing of it escapes.

Output (stdout and stderr merged) streams to a log file and to an optional callback, a
bounded chunk at a time. Every process of a run carries the marker `COCKPIT_RUN=<run id>`
in its environment. At the hard timeout, or on stop(), the run's process group and every
marked process get SIGTERM, then SIGKILL after a grace period; when the run ends for any
reason, whatever is left of both is killed, so a `setsid` child or a double fork dies too.
The output is read only briefly after that, even if an escaped process holds the pipe.

What holds a run's processes, whatever they do (a child can clear its environment and so
shed the marker): with a sandbox policy, the sandbox's PID namespace (runners/sandbox.py);
without one, on Linux, a reaper (runners/reaper.py): the run's first process, a child
subreaper that every orphan of the run is given to and that kills its whole tree when the
run ends, when told to, or when cockpit dies. Elsewhere (macOS), the group and the marker.
"""
from __future__ import annotations

import codecs
import math
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cockpit.runners import contention
from cockpit.runners.disk import DiskFloor
from cockpit.runners.environment import training_env
from cockpit.runners.logfile import CappedLog
from cockpit.runners.processes import MARKER, kill_run, signal_run
from cockpit.runners.sandbox import SandboxPolicy, SandboxUnavailable, wrap

KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
DRAIN_GRACE = 1.0  # seconds the output is still read once every process of the run is killed
READ_SIZE = 65536
TICK = 0.1  # the watchdog's resolution when nothing else wakes it
MAX_TIMEOUT = 366 * 24 * 3600.0  # longer is no watchdog (and overflows a timer's wait)
REAPER_WAIT = 5.0  # seconds the reaper gets to kill its tree before its group is killed
DISK_CHECK = 0.5  # seconds between two looks at the free space of the run's disks


def split_command(command: str) -> list[str]:
    """Split a train command; a bare `python`/`python3` means the Python running cockpit,
    so a venv's cockpit trains with that venv's torch even when the venv is not activated."""
    argv = shlex.split(command)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


REAPER = Path(__file__).with_name("reaper.py")


def reaper_available() -> bool:
    """Whether runs without a sandbox can be held by the reaper (Linux's subreapers)."""
    return sys.platform.startswith("linux") and REAPER.exists()


def new_run_id() -> str:
    """A fresh run id: the value of the marker every process of the run carries."""
    return uuid.uuid4().hex


def findable(program: str, cwd: Path | str, path: str | None) -> bool:
    """Whether exec would find `program` from the run's directory: a name with a slash
    is a path from there (`.venv/bin/python`), not from cockpit's own directory."""
    if os.sep in program:
        found = os.path.join(cwd, program)
        return os.path.isfile(found) and os.access(found, os.X_OK)
    return shutil.which(program, path=path) is not None


@dataclass
class RunResult:
    returncode: int | None  # negative: killed by that signal
    seconds: float
    timed_out: bool = False
    stopped: bool = False  # ended by stop(), i.e. by the human
    error: str = ""  # the command could not start at all
    run_id: str = ""  # the marker its processes carried
    sandboxed: bool = False  # it ran inside a sandbox
    offline: bool = False  # ... one without a network
    disk_full: str = ""  # stopped because a disk it writes to ran out of room: where
    log_dropped: int = 0  # bytes of output the capped log left out
    holder_killed: bool = False  # without a sandbox: something killed the run's reaper
    handed_over: bool = False  # it left its artifact where cockpit said
    evaluation: RunResult | None = None  # the evaluator's run on that artifact, if any
    # how busy the machine was with other work meanwhile (runners.contention; None: unknown)
    stalled: float | None = None  # share of its time some task waited for a CPU
    others: float | None = None  # cores other processes used on average

    @property
    def clean(self) -> bool:
        """It exited 0 by itself: nothing stopped, killed or refused it."""
        return (self.returncode == 0 and not self.error and not self.timed_out
                and not self.stopped and not self.disk_full and not self.holder_killed)


class LocalRunner:
    """Runs one experiment at a time on this machine."""

    def __init__(self, kill_grace: float = KILL_GRACE, drain_grace: float = DRAIN_GRACE) -> None:
        self.kill_grace = kill_grace
        self.drain_grace = drain_grace
        self._proc: subprocess.Popen | None = None
        self._stop_requested = False
        self._held = False  # the run's first process is the reaper
        self._tree: contention.Tree | None = None  # see run()
        self._sandboxed = False
        self._started = 0.0

    def run(
        self,
        command: str,
        cwd: Path,
        log_path: Path,
        timeout: float,
        env: dict[str, str] | None = None,
        on_output: Callable[[str], None] | None = None,
        on_start: Callable[[int], None] | None = None,
        *,
        run_id: str | None = None,
        sandbox: SandboxPolicy | None = None,
        log_limit: int | None = None,
        disk: DiskFloor | None = None,
    ) -> RunResult:
        """Run `command` in `cwd` until it exits, `timeout` seconds pass or stop() is called;
        every process it started is gone when this returns. on_start gets the pid of its
        first process (the process group's id; inside a sandbox, the sandbox's own). The
        log keeps at most about `log_limit` bytes (its start and its end); a run that
        leaves less room than `disk` asks on a disk it writes to is killed at once."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        start, before = time.monotonic(), contention.read()
        run_id = run_id or new_run_id()
        marked = dict(env if env is not None else training_env(), **{MARKER: run_id})
        self._stop_requested = False
        self._disk, self._disk_full = disk, ""
        self._forced = False  # the reaper did not end when told: its group was killed
        # what the run's tree uses and waits for is sampled while it lives (runners.contention)
        self._tree = contention.Tree() if before is not None else None
        self._sandboxed = sandbox is not None
        self._started = start
        timed_out = False
        with open(log_path, "w+b", buffering=0) as file:  # unbuffered: a full disk fails a
            log = CappedLog(file, log_limit)                # write the pump catches, not close
            try:
                argv = split_command(command)
                self._held = sandbox is None and reaper_available()
                if sandbox is not None:
                    argv = wrap(argv, sandbox)
                elif self._held:
                    if not argv or not findable(argv[0], cwd, marked.get("PATH")):
                        raise FileNotFoundError(f"No such file or directory: "
                                                f"{argv[0] if argv else ''!r}")
                    argv = [sys.executable, "-I", "-S", str(REAPER), *argv]
                proc = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=marked,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, out of the terminal's ^C
                )
            except (OSError, ValueError, SandboxUnavailable) as exc:
                message = f"cannot start `{command}`: {exc}"
                log.write((message + "\n").encode())
                return RunResult(None, 0.0, error=message, run_id=run_id)
            self._proc = proc
            assert proc.stdout is not None  # started with stdout=PIPE
            pump = _Pump(proc, log, on_output)
            try:
                if on_start is not None:
                    on_start(proc.pid)
                timed_out = self._watch(proc, pump, run_id, start + _clamp(timeout))
                if sandbox is not None and self._tree is not None:
                    self._tree.ended()
                if self._disk is not None and not self._disk_full:  # it ended on a full disk
                    self._disk_full = self._disk.short()
                self._kill(proc, run_id)
                pump.drain(self.drain_grace)
            finally:
                self._proc = None
                if pump.open:  # a callback raised: nothing of the run outlives it either
                    self._kill(proc, run_id)
                pump.close()
                proc.stdout.close()
                returncode, run_cpu = _reap(proc)
        seconds = time.monotonic() - start
        busy = contention.Contention.between(before, contention.read(), seconds, run_cpu,
                                             self._tree)
        # the reaper ends by exiting (128 + a signal); killed by a signal, someone killed it
        # (the run, with the user's rights): its tree may have gone to init
        escaped = self._held and returncode < 0 and not self._forced
        if sandbox is not None or self._held:
            returncode = _unwrapped(returncode)
        return RunResult(
            returncode, seconds, timed_out=timed_out,
            stopped=self._stop_requested, run_id=run_id, sandboxed=sandbox is not None,
            offline=sandbox is not None and not sandbox.network, disk_full=self._disk_full,
            log_dropped=log.dropped, holder_killed=escaped,
            stalled=busy.stalled if busy else None, others=busy.others if busy else None,
        )

    def stop(self) -> None:
        """End the current run now (the human asked for it)."""
        if self._proc is not None:
            self._stop_requested = True

    @property
    def running(self) -> bool:
        return self._proc is not None

    def _watch(self, proc: subprocess.Popen, pump: _Pump, run_id: str, deadline: float) -> bool:
        """Pump the output until the run's first process exits; at the deadline or on a
        stop, SIGTERM the run, then SIGKILL it after the grace. Whether it timed out."""
        timed_out = False
        term_at: float | None = None
        killed = False
        disk_checked = sampled = 0.0
        exit_fd = _exit_fd(proc.pid)
        try:
            if exit_fd is not None:
                pump.selector.register(exit_fd, selectors.EVENT_READ, "exit")
            while not _exited(proc):
                now = time.monotonic()
                # a sandbox's CPU: often enough that what the last sample misses is ~1% of
                # it; waits (all a reaped run needs) add up per task, so 5% will do
                tree = self._tree
                every = max(TICK, (now - self._started) / (100 if self._sandboxed else 20))
                if tree is not None and now - sampled >= every:
                    sampled = now
                    tree.sample(proc.pid)
                if self._disk is not None and not killed and (
                        now - disk_checked >= DISK_CHECK or pump.write_error is not None):
                    disk_checked = now
                    self._disk_full = self._disk.short()
                    if self._disk_full:  # now: every second more it writes is room lost
                        self._kill(proc, run_id)
                        killed, term_at = True, term_at or now
                        continue
                if term_at is None and (self._stop_requested or now >= deadline):
                    timed_out = not self._stop_requested
                    signal_run(proc.pid, run_id, signal.SIGTERM)
                    term_at = now
                elif term_at is not None and not killed and now >= term_at + self.kill_grace:
                    self._kill(proc, run_id)
                    killed = True
                if term_at is None:
                    wake = deadline
                elif not killed:
                    wake = term_at + self.kill_grace
                else:  # only its exit is awaited now
                    wake = now + TICK
                pump.step(max(0.0, min(TICK, wake - now)))
        finally:
            if exit_fd is not None:
                pump.selector.unregister(exit_fd)
                os.close(exit_fd)
        return timed_out


    def _kill(self, proc: subprocess.Popen, run_id: str) -> None:
        """SIGKILL every process of the run. A reaper is told first (it kills its whole tree,
        then exits): killed with its group, it would leave its tree to init."""
        if self._held:
            try:
                os.kill(proc.pid, signal.SIGUSR1)
            except (ProcessLookupError, PermissionError):
                pass
            deadline = time.monotonic() + REAPER_WAIT
            while not _exited(proc) and time.monotonic() < deadline:
                time.sleep(0.005)
            self._forced = self._forced or not _exited(proc)
        kill_run(proc.pid, run_id)


class _Pump:
    """Moves the run's output to the log and the callback, one bounded read at a time."""

    def __init__(self, proc: subprocess.Popen, log, on_output) -> None:
        assert proc.stdout is not None  # started with stdout=PIPE
        self.fd = proc.stdout.fileno()
        self.log = log
        self.on_output = on_output
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.fd, selectors.EVENT_READ, "output")
        self.open = True
        self.write_error: OSError | None = None  # the log could not be written (a full disk)

    def step(self, timeout: float) -> None:
        """Wait up to `timeout` for output (or another registered event); read one chunk."""
        for key, _ in self.selector.select(timeout):
            if key.data == "output":
                self._read()

    def drain(self, grace: float) -> None:
        """Read what is left until the end of the output or, if something still holds the
        pipe open, until `grace` seconds have passed."""
        deadline = time.monotonic() + grace
        while self.open and time.monotonic() < deadline:
            self.step(deadline - time.monotonic())
        if self.open:
            self.selector.unregister(self.fd)
            self.open = False

    def close(self) -> None:
        self.selector.close()

    def _read(self) -> None:
        chunk = os.read(self.fd, READ_SIZE)
        if not chunk:
            self.selector.unregister(self.fd)
            self.open = False
            return
        try:
            self.log.write(chunk)
            self.log.flush()
        except OSError as exc:  # a full disk: the output is still read, and goes on screen
            self.write_error = self.write_error or exc
        if self.on_output is not None:
            text = self.decoder.decode(chunk)
            if text:
                self.on_output(text)


def _exit_fd(pid: int) -> int | None:
    """A descriptor that becomes readable when `pid` exits (Linux 5.3+), else None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _exited(proc: subprocess.Popen) -> bool:
    """Whether the run's first process has exited, without reaping it: until it is
    reaped its pid, and so its process group, cannot be reused by another process."""
    if not hasattr(os, "waitid"):
        return proc.poll() is not None
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # already reaped
        return True


def _reap(proc: subprocess.Popen) -> tuple[int, float]:
    """Wait for the run's first process: (its exit code, the CPU seconds its tree used, as
    the kernel counts every descendant that was reaped, which a sandbox or the reaper does)."""
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:  # reaped already (nothing counted its CPU)
        return proc.wait(), 0.0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def _clamp(timeout: float) -> float:
    # The caller validates timeouts; a huge, infinite or NaN one still must not crash here.
    return MAX_TIMEOUT if math.isnan(timeout) else min(timeout, MAX_TIMEOUT)


def _unwrapped(returncode: int) -> int:
    """bwrap reports a command killed by signal N as exit code 128 + N: give it back as -N,
    like a run outside the sandbox."""
    if 128 < returncode <= 128 + 64:
        return -(returncode - 128)
    return returncode


