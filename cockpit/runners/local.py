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
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from cockpit.runners.disk import DiskFloor
from cockpit.runners.logfile import CappedLog
from cockpit.runners.sandbox import SandboxPolicy, SandboxUnavailable, wrap

KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
DRAIN_GRACE = 1.0  # seconds the output is still read once every process of the run is killed
READ_SIZE = 65536
TICK = 0.1  # the watchdog's resolution when nothing else wakes it
MAX_TIMEOUT = 366 * 24 * 3600.0  # longer is no watchdog (and overflows a timer's wait)
REAP_ROUNDS = 100  # scans for marked processes after SIGKILL (a forking run needs a few)
REAPER_WAIT = 5.0  # seconds the reaper gets to kill its tree before its group is killed
DISK_CHECK = 0.5  # seconds between two looks at the free space of the run's disks
MARKER = "COCKPIT_RUN"
MAX_ANCESTORS = 256  # a process tree deeper than this is not walked further

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
    "ROCM_", "ROCR_", "HSA_", "OMP_", "MKL_", "KMP_", "TORCH", "PYTORCH", "TRITON",
)
# cockpit's own variables a run reads; any other COCKPIT_* is the human's (a notification
# URL, a token) and stays out.
COCKPIT_NAMES = frozenset({"COCKPIT_DATA_DIR", "COCKPIT_TIME_BUDGET", "COCKPIT_SEED"})
# A name that looks like it holds a key, token, secret, password, credential, signature or
# session: dropped even when a prefix allows it (NVIDIA_API_KEY, TORCH_HUB_PAT).
SECRET_WORD = re.compile(
    r"(^|_)(KEYS?|TOKENS?|SECRETS?|PASS|PWD|AUTH|CREDS?|COOKIES?|SIGNATURES?|PAT|JWT|"
    r"BEARER|SESSIONS?|SIGS?|SIGNING|HMAC|SALT|OTP|NONCE|PRIVATE|CERTS?|PEM|DSN|WEBHOOKS?|"
    r"TOPICS?|CONN|CONNECTION)(_|$)"
    r"|PASSWORD|PASSWD|PASSPHRASE|SECRET|CREDENTIAL|APIKEY|ACCESSKEY|PRIVATEKEY|AUTHTOKEN",
    re.IGNORECASE,
)
# A value that is, or holds, a URL (https://…/t/<TOKEN>/…, ntfys://ntfy.sh/<topic>,
# postgres://user:pass@db): a run never needs one from cockpit's environment, and any URL
# may carry a credential in its user, path or query. Nor a value shaped like a well-known
# token (GitHub, GitLab, OpenAI, Slack, AWS, Hugging Face, a JWT).
URL_VALUE = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
TOKEN_VALUE = re.compile(
    r"(^|[^A-Za-z0-9])(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_|glpat-|sk-[A-Za-z0-9_-]{16,}|"
    r"(sk|rk)_live_|xox[abprs]-|(AKIA|ASIA)[0-9A-Z]{16}|hf_[A-Za-z0-9]{20,}|"
    r"eyJ[A-Za-z0-9_-]{8,}\.eyJ|AIza[0-9A-Za-z_-]{30,}|nvapi-|npm_[A-Za-z0-9]{30,}|"
    r"pypi-[A-Za-z0-9_-]{30,})"
    # a private key, a connection string's key, credentials before a host (user:pass@host)
    r"|PRIVATE KEY-----|AccountKey=|SharedAccessKey=|Password=|^[^\s/:@]+:[^\s/@]+@[\w.-]+")
# Loader variables: a library they name is loaded into every process of the run, and
# into those cockpit starts to hold it (bwrap, the reaper) before any isolation exists.
LOADER_NAMES = frozenset({"LD_PRELOAD", "LD_AUDIT", "LD_DEBUG_OUTPUT", "LD_PROFILE",
                          "DYLD_INSERT_LIBRARIES", "DYLD_LIBRARY_PATH"})


def training_env(extra: dict[str, str] | None = None,
                 passthrough: Iterable[str] = ()) -> dict[str, str]:
    """The environment of a training run: only what it needs from this process's (an
    allow-list), nothing that looks like a secret by its name or its value, then the
    variables the human chose to pass (`passthrough`, taken as they are, but never a loader
    variable), then `extra`. LD_LIBRARY_PATH keeps only absolute directories (an empty or
    relative entry would load libraries from the run's own worktree)."""
    env = {name: value for name, value in os.environ.items()
           if _allowed(name) and not secret_looking(name, value)}
    env.update({name: os.environ[name] for name in passthrough
                if name in os.environ and name not in LOADER_NAMES})
    if "LD_LIBRARY_PATH" in env:
        env["LD_LIBRARY_PATH"] = ":".join(
            p for p in env["LD_LIBRARY_PATH"].split(":") if os.path.isabs(p))
    env["PYTHONUNBUFFERED"] = "1"  # progress lines arrive as they are printed
    env.update(extra or {})
    return env


def secret_looking(name: str, value: str) -> bool:
    """Whether a variable looks like it holds a secret: by its name, or by its value."""
    return bool(SECRET_WORD.search(name) or URL_VALUE.search(value)
                or TOKEN_VALUE.search(value))


def _allowed(name: str) -> bool:
    return name in ALLOWED_NAMES or name in COCKPIT_NAMES \
        or name.upper().startswith(ALLOWED_PREFIXES)


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


class LocalRunner:
    """Runs one experiment at a time on this machine."""

    def __init__(self, kill_grace: float = KILL_GRACE, drain_grace: float = DRAIN_GRACE) -> None:
        self.kill_grace = kill_grace
        self.drain_grace = drain_grace
        self._proc: subprocess.Popen | None = None
        self._stop_requested = False
        self._held = False  # the run's first process is the reaper

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
        start = time.monotonic()
        run_id = run_id or new_run_id()
        marked = dict(env if env is not None else training_env(), **{MARKER: run_id})
        self._stop_requested = False
        self._disk, self._disk_full = disk, ""
        self._forced = False  # the reaper did not end when told: its group was killed
        timed_out = False
        with open(log_path, "w+b", buffering=0) as file:  # unbuffered: a full disk fails a
            log = CappedLog(file, log_limit)                # write the pump catches, not close
            try:
                argv = split_command(command)
                self._held = sandbox is None and reaper_available()
                if sandbox is not None:
                    argv = wrap(argv, sandbox)
                elif self._held:
                    if not argv or shutil.which(argv[0], path=marked.get("PATH")) is None:
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
            pump = _Pump(proc, log, on_output)
            try:
                if on_start is not None:
                    on_start(proc.pid)
                timed_out = self._watch(proc, pump, run_id, start + _clamp(timeout))
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
                returncode = proc.wait()
        # the reaper ends by exiting (128 + a signal); killed by a signal, someone killed it
        # (the run, with the user's rights): its tree may have gone to init
        escaped = self._held and returncode < 0 and not self._forced
        if sandbox is not None or self._held:
            returncode = _unwrapped(returncode)
        return RunResult(
            returncode, time.monotonic() - start, timed_out=timed_out,
            stopped=self._stop_requested, run_id=run_id, sandboxed=sandbox is not None,
            offline=sandbox is not None and not sandbox.network, disk_full=self._disk_full,
            log_dropped=log.dropped, holder_killed=escaped,
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
        disk_checked = 0.0
        exit_fd = _exit_fd(proc.pid)
        try:
            if exit_fd is not None:
                pump.selector.register(exit_fd, selectors.EVENT_READ, "exit")
            while not _exited(proc):
                now = time.monotonic()
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
                    _signal_run(proc.pid, run_id, signal.SIGTERM)
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
        _kill_run(proc.pid, run_id)


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


def run_of(pid: int) -> str:
    """Whether a process is one of a run's (any run's, any session's): "" when it is not,
    else how it shows. A run's process carries a run's marker, or descends from one that
    does (a child that cleared its environment is still below its run's first process,
    or its reaper), or lives in another user or PID namespace than this one (a sandbox).
    A process that cannot be looked at counts as a run's (Linux; "" elsewhere)."""
    if not os.path.isdir("/proc"):
        return ""
    for name in ("user", "pid"):
        try:
            if os.readlink(f"/proc/{pid}/ns/{name}") != os.readlink(f"/proc/self/ns/{name}"):
                return f"a process in another {name} namespace (a run's sandbox)"
        except OSError:
            return "a process that cannot be looked at"
    for _ in range(MAX_ANCESTORS):
        if pid <= 1:
            return ""
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            return "a process that cannot be looked at"
        start = environ.find(f"{MARKER}=".encode())
        if start == 0 or start > 0 and environ[start - 1:start] == b"\0":
            value = environ[start:].split(b"\0", 1)[0].decode(errors="replace")
            return f"a process of run {value.partition('=')[2]}"
        pid = _parent(pid)
    return f"a process more than {MAX_ANCESTORS} levels deep (no client is)"


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


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
