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
counters (their ticks and a process's start dominate) or one that hardly asked for a CPU (it
sleeps or waits on its own I/O: busy CPUs do not slow it). Asked is used plus waited for
(each task's run-queue delay, /proc/<pid>/task/<tid>/schedstat): a run the other work starved
used little CPU, and is the one that most needs the reading.
"""
from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

PRESSURE = Path("/proc/pressure/cpu")
STAT = Path("/proc/stat")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
MIN_SECONDS = 1.5  # shorter runs get no reading
MIN_CORES = 0.5  # a run that asked for less CPU than this on average gets no reading


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


@dataclass
class Tree:
    """What a run's process tree has used, sampled while it lives. A sandbox's processes are
    reaped inside it, where the kernel's accounting does not reach cockpit, and a task's wait
    for a CPU is counted nowhere once it ends, so both are sampled."""

    cpu_s: float = 0.0  # CPU seconds: the live processes' own and what they reaped
    waits: dict[int, int] = field(default_factory=dict)  # task id -> ns it waited for a CPU
    retired_ns: int = 0  # the waits of tasks whose id a later task took
    rate: float = 0.0  # cores it used between the last two samples
    started: float = field(default_factory=time.monotonic)
    at: float = 0.0  # when it was last sampled (monotonic seconds)

    @property
    def waited_s(self) -> float:
        return (sum(self.waits.values()) + self.retired_ns) / 1e9

    def ended(self) -> None:
        """It ended: what it used after the last sample, at the rate of the last interval
        but never above its mean (it may end on one thread), as a sandbox's tree is gone
        with its last process and nothing else counts it."""
        if self.at:
            mean = self.cpu_s / max(self.at - self.started, 1e-3)
            self.cpu_s += min(self.rate, mean) * (time.monotonic() - self.at)
            self.at = 0.0

    def sample(self, pid: int) -> None:
        now, before = time.monotonic(), self.cpu_s
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
                    self._waited(task)
            except (OSError, IndexError, ValueError):
                continue  # it ended meanwhile: its parent's cutime has it
        self.cpu_s = max(self.cpu_s, total / TICKS)
        if self.at:
            self.rate = (self.cpu_s - before) / max(now - self.at, 1e-3)
        self.at = now

    def _waited(self, task: Path) -> None:
        try:  # on the CPU, waiting on a run queue (ns), time slices; absent on some kernels
            delay = int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            return
        tid, last = int(task.name), self.waits.get(int(task.name), 0)
        if delay < last:  # a new task with an old one's id: both waited
            self.retired_ns += last
        self.waits[tid] = delay


@dataclass(frozen=True)
class Contention:
    stalled: float  # share of the run's wall time some task waited for a CPU
    others: float  # cores work not cockpit's used on average during the run

    @classmethod
    def between(cls, start: Reading | None, end: Reading | None, seconds: float,
                reaped_s: float, tree: Tree | None = None) -> Contention | None:
        """Over a run of `seconds` whose tree used `reaped_s` CPU seconds as the kernel
        gave them to cockpit when it was reaped, and `tree` as sampled while it lived (a
        sandbox's CPU: the kernel gives cockpit none of it)."""
        tree = tree or Tree()
        sampled_s = tree.cpu_s
        run_s = max(reaped_s, sampled_s)
        if start is None or end is None or seconds < MIN_SECONDS \
                or (run_s + tree.waited_s) / seconds < MIN_CORES:
            return None
        stalled = (end.stalled_us - start.stalled_us) / 1e6 / seconds
        unreaped = max(0.0, sampled_s - reaped_s)
        others = (end.busy_s - start.busy_s - (end.cockpit_s - start.cockpit_s) - unreaped)
        return cls(round(min(1.0, max(0.0, stalled)), 3), round(max(0.0, others / seconds), 2))
