"""Finding a run's processes, and ending them: every process of a run carries the marker
`COCKPIT_RUN=<run id>` in its environment; a run's group and its marked processes are
signalled together, through a pidfd where there is one (a pid reused meanwhile is safe). A
process of a run is also recognised from below (run_of): the control socket turns away
any client that is one.
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

MARKER = "COCKPIT_RUN"

MAX_ANCESTORS = 256  # a process tree deeper than this is not walked further

REAP_ROUNDS = 100  # scans for marked processes after SIGKILL (a forking run needs a few)

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
            signal_group(pgid, signal.SIGKILL)
            killed.update(members)
    killed.update(_kill_marked(run_id))
    return len(killed)

def marked_processes(run_id: str) -> list[int]:
    """The live processes on this machine that carry the marker of `run_id` (Linux; an
    empty list elsewhere). Only processes this user may inspect are seen."""
    return [pid for pid in _pids() if _is_marked(pid, run_id)]

def signal_run(pgid: int, run_id: str, sig: int) -> None:
    signal_group(pgid, sig)
    for pid in marked_processes(run_id):
        _signal_marked(pid, run_id, sig)

def kill_run(pgid: int, run_id: str) -> None:
    """SIGKILL the run's group and every marked process, until none is left."""
    signal_group(pgid, signal.SIGKILL)
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
        if start == 0 or (start > 0 and environ[start - 1:start] == b"\0"):
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

def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
