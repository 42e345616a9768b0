"""Run one training command as a subprocess under a watchdog that nothing of it escapes.

Output (stdout and stderr merged) streams to a log file and to an optional callback, a
bounded chunk at a time. Every process of a run carries the marker `COCKPIT_RUN=<run id>`
in its environment. At the hard timeout, or on stop(), the run's process group and every
marked process get SIGTERM, then SIGKILL after a grace period; when the run ends for any
reason, whatever is left of both is killed, so a `setsid` child or a double fork dies too.
The output is read only briefly after that, even if an escaped process holds the pipe.
With a sandbox policy, the command runs inside it (see runners/sandbox.py).
"""
from __future__ import annotations

import codecs
import math
import os
import re
import selectors
import shlex
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from cockpit.runners.sandbox import SandboxPolicy, SandboxUnavailable, wrap

KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
DRAIN_GRACE = 1.0  # seconds the output is still read once every process of the run is killed
READ_SIZE = 65536
TICK = 0.1  # the watchdog's resolution when nothing else wakes it
MAX_TIMEOUT = 366 * 24 * 3600.0  # longer is no watchdog (and overflows a timer's wait)
REAP_ROUNDS = 100  # scans for marked processes after SIGKILL (a forking run needs a few)
MARKER = "COCKPIT_RUN"

# What a training run needs from this process's environment, by exact name or prefix.
ALLOWED_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TERM", "COLORTERM",
    "TMPDIR", "SHELL", "VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT", "MAMBA_ROOT_PREFIX", "MAMBA_EXE",
    "LD_LIBRARY_PATH", "HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE", "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "TRANSFORMERS_CACHE",
    "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM", "XDG_CACHE_HOME", "MPLBACKEND",
    "MPLCONFIGDIR", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
    # uv's settings that select an interpreter or an environment (never its index URLs,
    # which may carry credentials)
    "UV_CACHE_DIR", "UV_PYTHON", "UV_PROJECT_ENVIRONMENT", "UV_NO_SYNC", "UV_OFFLINE",
    "UV_FROZEN", "UV_LOCKED", "UV_PYTHON_INSTALL_DIR", "UV_PYTHON_PREFERENCE",
    "UV_PYTHON_DOWNLOADS", "UV_LINK_MODE", "UV_NO_CACHE", "UV_COMPILE_BYTECODE",
    "UV_SYSTEM_PYTHON", "UV_NO_PROGRESS", "UV_TORCH_BACKEND", "UV_CONCURRENT_DOWNLOADS",
    "UV_CONCURRENT_BUILDS", "UV_CONCURRENT_INSTALLS",
})
ALLOWED_PREFIXES = (
    "LC_", "PYTHON", "CONDA_", "CUDA_", "NVIDIA_", "NCCL_", "CUDNN_", "CUBLAS_", "HIP_",
    "ROCM_", "ROCR_", "HSA_", "OMP_", "MKL_", "KMP_", "TORCH", "PYTORCH", "TRITON", "COCKPIT_",
)
# A name that looks like a key, token, secret, password, credential or auth: dropped even
# when a prefix allows it (NVIDIA_API_KEY, COCKPIT_TOKEN, UV_INDEX_X_PASSWORD).
SECRET_WORD = re.compile(
    r"(^|_)(KEYS?|TOKENS?|SECRETS?|PASS|PWD|AUTH|CREDS?|COOKIES?|SIGNATURE)(_|$)"
    r"|PASSWORD|PASSWD|PASSPHRASE|SECRET|CREDENTIAL|APIKEY|ACCESSKEY|PRIVATEKEY|AUTHTOKEN",
    re.IGNORECASE,
)
# A value such as https://user:password@host/: the name may be harmless, the value is not.
CREDENTIAL_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)


def training_env(extra: dict[str, str] | None = None,
                 passthrough: Iterable[str] = ()) -> dict[str, str]:
    """The environment of a training run: only what it needs from this process's (an
    allow-list), nothing that looks like a secret, then the variables the human chose to
    pass (`passthrough`, taken as they are), then `extra`."""
    env = {
        name: value for name, value in os.environ.items()
        if _allowed(name) and not SECRET_WORD.search(name) and not CREDENTIAL_URL.search(value)
    }
    env.update({name: os.environ[name] for name in passthrough if name in os.environ})
    env["PYTHONUNBUFFERED"] = "1"  # progress lines arrive as they are printed
    env.update(extra or {})
    return env


def _allowed(name: str) -> bool:
    return name in ALLOWED_NAMES or name.upper().startswith(ALLOWED_PREFIXES)


def split_command(command: str) -> list[str]:
    """Split a train command; a bare `python`/`python3` means the Python running cockpit,
    so a venv's cockpit trains with that venv's torch even when the venv is not activated."""
    argv = shlex.split(command)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


def new_run_id() -> str:
    """A fresh run id: the value of the marker every process of the run carries."""
    return uuid.uuid4().hex


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


class LocalRunner:
    """Runs one experiment at a time on this machine."""

    def __init__(self, kill_grace: float = KILL_GRACE, drain_grace: float = DRAIN_GRACE) -> None:
        self.kill_grace = kill_grace
        self.drain_grace = drain_grace
        self._proc: subprocess.Popen | None = None
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
        *,
        run_id: str | None = None,
        sandbox: SandboxPolicy | None = None,
    ) -> RunResult:
        """Run `command` in `cwd` until it exits, `timeout` seconds pass or stop() is called;
        every process it started is gone when this returns. on_start gets the pid of its
        first process (the process group's id; inside a sandbox, the sandbox's own)."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        run_id = run_id or new_run_id()
        marked = dict(env if env is not None else training_env(), **{MARKER: run_id})
        self._stop_requested = False
        timed_out = False
        with open(log_path, "wb") as log:
            try:
                argv = split_command(command)
                if sandbox is not None:
                    argv = wrap(argv, sandbox)
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
            pump = _Pump(proc, log, on_output)
            try:
                if on_start is not None:
                    on_start(proc.pid)
                timed_out = self._watch(proc, pump, run_id, start + _clamp(timeout))
                _kill_run(proc.pid, run_id)
                pump.drain(self.drain_grace)
            finally:
                self._proc = None
                if pump.open:  # a callback raised: nothing of the run outlives it either
                    _kill_run(proc.pid, run_id)
                pump.close()
                proc.stdout.close()
                returncode = proc.wait()
        if sandbox is not None:
            returncode = _unwrapped(returncode)
        return RunResult(
            returncode, time.monotonic() - start, timed_out=timed_out,
            stopped=self._stop_requested, run_id=run_id, sandboxed=sandbox is not None,
            offline=sandbox is not None and not sandbox.network,
        )

    def stop(self) -> None:
        """End the current run now (the human asked for it)."""
        if self._proc is not None:
            self._stop_requested = True

    @property
    def running(self) -> bool:
        return self._proc is not None

    def _watch(self, proc: subprocess.Popen, pump: "_Pump", run_id: str, deadline: float) -> bool:
        """Pump the output until the run's first process exits; at the deadline or on a
        stop, SIGTERM the run, then SIGKILL it after the grace. Whether it timed out."""
        timed_out = False
        term_at: float | None = None
        killed = False
        exit_fd = _exit_fd(proc.pid)
        try:
            if exit_fd is not None:
                pump.selector.register(exit_fd, selectors.EVENT_READ, "exit")
            while not _exited(proc):
                now = time.monotonic()
                if term_at is None and (self._stop_requested or now >= deadline):
                    timed_out = not self._stop_requested
                    _signal_run(proc.pid, run_id, signal.SIGTERM)
                    term_at = now
                elif term_at is not None and not killed and now >= term_at + self.kill_grace:
                    _kill_run(proc.pid, run_id)
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


class _Pump:
    """Moves the run's output to the log and the callback, one bounded read at a time."""

    def __init__(self, proc: subprocess.Popen, log, on_output) -> None:
        self.fd = proc.stdout.fileno()
        self.log = log
        self.on_output = on_output
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.fd, selectors.EVENT_READ, "output")
        self.open = True

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
        self.log.write(chunk)
        self.log.flush()
        if self.on_output is not None:
            text = self.decoder.decode(chunk)
            if text:
                self.on_output(text)


def kill_leftovers(run_id: str, pgid: int | None) -> int:
    """Kill what an interrupted run left behind (a previous cockpit died mid-run): its
    process group, even when the group's first process already exited, and every process
    carrying its marker. A group is only touched when one of its members carries the
    marker, so an unrelated process that reuses the pid is left alone. Returns how many
    processes were killed."""
    killed: set[int] = set()
    if pgid is not None:
        members = [pid for pid, group in _process_groups() if group == pgid]
        if any(_is_marked(pid, run_id) for pid in members):
            _signal_group(pgid, signal.SIGKILL)
            killed.update(members)
    killed.update(_kill_marked(run_id))
    return len(killed)


def marked_processes(run_id: str) -> list[int]:
    """The live processes on this machine that carry the marker of `run_id` (Linux; an
    empty list elsewhere). Only processes this user may inspect are seen."""
    return [pid for pid in _pids() if _is_marked(pid, run_id)]


def _signal_run(pgid: int, run_id: str, sig: int) -> None:
    _signal_group(pgid, sig)
    for pid in marked_processes(run_id):
        _signal_marked(pid, run_id, sig)


def _kill_run(pgid: int, run_id: str) -> None:
    """SIGKILL the run's group and every marked process, until none is left."""
    _signal_group(pgid, signal.SIGKILL)
    _kill_marked(run_id)


def _kill_marked(run_id: str) -> set[int]:
    # A marked process may fork between two scans: scan again until one finds none.
    killed: set[int] = set()
    for _ in range(REAP_ROUNDS):
        found = [pid for pid in marked_processes(run_id) if _signal_marked(pid, run_id,
                                                                            signal.SIGKILL)]
        if not found:
            break
        killed.update(found)
        time.sleep(0.005)  # a killed process keeps its environment until it is torn down
    return killed


def _signal_marked(pid: int, run_id: str, sig: int) -> bool:
    """Signal `pid` if it (still) carries the marker; whether it was signalled. Through a
    pidfd where there is one, so a pid reused between the check and the signal is safe."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        if not _is_marked(pid, run_id):
            return False
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, sig)
        else:
            os.kill(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _is_marked(pid: int, run_id: str) -> bool:
    needle = f"{MARKER}={run_id}\0".encode()
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
    except OSError:  # gone, not ours, or no /proc
        return False
    return environ.startswith(needle) or b"\0" + needle in environ


def _pids() -> Iterator[int]:
    """Every process of this user (all of them for root), except this one."""
    me, uid = os.getpid(), os.getuid()
    try:
        entries = list(os.scandir("/proc"))
    except OSError:
        return
    for entry in entries:
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if uid == 0 or entry.stat().st_uid == uid:
                yield int(entry.name)
        except OSError:
            continue


def _process_groups() -> Iterator[tuple[int, int]]:
    """(pid, process group id) of every process _pids() sees."""
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        yield pid, int(fields[2])


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


def _clamp(timeout: float) -> float:
    # The caller validates timeouts; a huge, infinite or NaN one still must not crash here.
    return MAX_TIMEOUT if math.isnan(timeout) else min(timeout, MAX_TIMEOUT)


def _unwrapped(returncode: int) -> int:
    """bwrap reports a command killed by signal N as exit code 128 + N: give it back as -N,
    like a run outside the sandbox."""
    if 128 < returncode <= 128 + 64:
        return -(returncode - 128)
    return returncode


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
