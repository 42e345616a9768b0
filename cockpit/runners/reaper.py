"""The first process of a run without the sandbox (Linux): it holds every process the run
starts, so that none outlives the run, whatever it does.

It makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), then starts the command
as its child. A process of the run that loses its parent (a double fork, a `setsid` child
whose parent exited) is given to the reaper, not to init, so the whole run stays in the
reaper's tree, marker or no marker (`env -i`). The reaper:

- when the command exits: kills every process left in its tree, reaps them, and exits with
  the command's status (a signal N as 128 + N, like bwrap);
- on SIGTERM (the watchdog's timeout or stop): passes it to the processes of the tree that
  left the run's process group (the group has it already);
- on SIGUSR1 (the watchdog's kill, or cockpit's death through PR_SET_PDEATHSIG): SIGKILLs
  the tree, reaps it, and exits.

It runs as `python -I -S reaper.py COMMAND...`: isolated from the run's PYTHON* variables
and site-packages, standard library only.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
KILL_ROUNDS = 200  # sweeps of the tree: a forking process needs a few
EXIT_CANNOT_START = 127


class Kill(Exception):
    """SIGUSR1: the watchdog (or cockpit's death) says end the run now."""


def main(argv: list[str]) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("cockpit reaper: cannot become a subreaper; the run is not held",
              file=sys.stderr, flush=True)
    parent = os.getppid()

    def on_term(signum, frame):  # the group got it too: pass it to the rest of the tree
        signal_tree(signal.SIGTERM, skip_group=os.getpgrp())

    def on_kill(signum, frame):
        raise Kill

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, on_term)
    signal.signal(signal.SIGUSR1, on_kill)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGUSR1, 0, 0, 0)  # cockpit gone: the run goes
    status = None
    try:
        if os.getppid() != parent:  # it died before the line above
            raise Kill
        child = os.fork()
        if child == 0:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
                signal.signal(sig, signal.SIG_DFL)
            try:
                os.execvp(argv[0], argv)
            except OSError as exc:
                os.write(2, f"cannot start `{argv[0]}`: {exc}\n".encode())
            os._exit(EXIT_CANNOT_START)
        while status is None:
            try:
                pid, code = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if pid == child:
                status = code
    except Kill:
        pass
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    kill_tree()
    if status is None:
        return 128 + signal.SIGKILL
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def children() -> list[int]:
    """This process's children: every process of the run is one, or below one."""
    me = os.getpid()
    found = []
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            return [int(pid) for pid in f.read().split()]
    except OSError:
        pass
    for entry in os.listdir("/proc"):  # kernels without the children file
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    if int(f.read().rsplit(b")", 1)[1].split()[1]) == me:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def tree() -> list[int]:
    """Every process below this one."""
    found, todo = [], children()
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                todo += [int(p) for p in f.read().split()]
        except OSError:
            continue
    return found


def signal_tree(sig: int, skip_group: int = 0) -> None:
    for pid in tree():
        try:
            if skip_group and os.getpgid(pid) == skip_group:
                continue
            os.kill(pid, sig)
        except OSError:
            pass


def kill_tree() -> None:
    """SIGKILL every process below this one until none is left; reap them all. A process
    whose parent dies meanwhile comes to this one, so the next sweep finds it."""
    for _ in range(KILL_ROUNDS):
        signal_tree(signal.SIGKILL)
        reaped = False
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return  # no child left: the tree is gone
            if pid == 0:
                break
            reaped = True
        if not reaped:
            time.sleep(0.005)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
