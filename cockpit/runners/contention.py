"""How busy the machine was with work not cockpit's while a run trained, measured by cockpit.

On a time budget the metric depends on how many steps fit in the budget, so a run that
shared its CPUs with something else (a test suite, another user's job) trains less and
measures worse; one such run among a baseline's noise runs tripled every bar that followed.
Two readings over the run's wall time, neither of which the run prints:

- stalled: the share of the time some runnable task waited for a CPU (Linux's pressure
  stall information, /proc/pressure/cpu, "some"): the CPUs had more work than they could
  run;
- others: the CPUs work not cockpit's used, on average, in cores: every CPU second the
  machine spent (/proc/stat) less cockpit's own and its children's (the run's tree, the
  evaluator, git, the other workers' runs), as the kernel counts them when they are reaped.

Both are needed: a run that starts more threads than there are cores stalls itself, and
other work on idle cores takes nothing from it. No reading (None) where Linux does not say
(macOS, a kernel without pressure stall information), and none for a run too short for the
counters (their ticks and a process's start dominate) or one that hardly used a CPU (it
sleeps or waits on its own I/O: busy CPUs do not slow it).
"""
from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

PRESSURE = Path("/proc/pressure/cpu")
STAT = Path("/proc/stat")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
MIN_SECONDS = 1.5  # shorter runs get no reading
MIN_CORES = 0.5  # a run that used less CPU than this on average gets no reading


@dataclass(frozen=True)
class Reading:
    """The machine's counters at one moment."""

    stalled_us: int  # microseconds some task waited for a CPU, since boot
    busy_s: float  # CPU seconds the machine spent on anything, since boot
    cockpit_s: float  # CPU seconds of cockpit's process and the children it reaped


def read() -> Reading | None:
    """The counters now; None where the machine does not expose them."""
    try:
        some = PRESSURE.read_text().splitlines()[0]
        stalled = int(some.rsplit("total=", 1)[1])
        ticks = [int(v) for v in STAT.read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, IndexError, ValueError):
        return None
    idle = ticks[3] + ticks[4]  # idle and iowait
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Reading(stalled, (sum(ticks) - idle) / TICKS,
                   own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime)


def tree_cpu(pid: int) -> float:
    """CPU seconds a process and its descendants used so far: the live ones' own and what
    each reaped from its children. A sandbox's processes are reaped inside it, where the
    kernel's accounting does not reach cockpit, so its run is sampled while it lives."""
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue  # it ended meanwhile: its parent's cutime has it
    return total / TICKS


@dataclass(frozen=True)
class Contention:
    stalled: float  # share of the run's wall time some task waited for a CPU
    others: float  # cores work not cockpit's used on average during the run

    @classmethod
    def between(cls, start: Reading | None, end: Reading | None, seconds: float,
                reaped_s: float, sampled_s: float = 0.0) -> Contention | None:
        """Over a run of `seconds` whose tree used `reaped_s` CPU seconds as the kernel
        gave them to cockpit when it was reaped, and `sampled_s` as sampled while it lived
        (a sandbox's: the kernel gives cockpit none of it)."""
        run_s = max(reaped_s, sampled_s)
        if start is None or end is None or seconds < MIN_SECONDS \
                or run_s / seconds < MIN_CORES:
            return None
        stalled = (end.stalled_us - start.stalled_us) / 1e6 / seconds
        unreaped = max(0.0, sampled_s - reaped_s)
        others = (end.busy_s - start.busy_s - (end.cockpit_s - start.cockpit_s) - unreaped)
        return cls(round(min(1.0, max(0.0, stalled)), 3), round(max(0.0, others / seconds), 2))
