"""What runs next, and where: the workers' slots, the proposals on their way (being made,
awaiting the human, approved), and the re-runs queued. It decides; the loop acts.

The baseline starts first (everything else is judged against it), then the re-runs (the
bar they measure holds results back), then approved proposals, up to the experiments asked
for. Proposals are asked for just in time: a slot's next one starts when the slot will be
free within the time a proposal takes (domain.proposals.proposals_needed).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from cockpit.domain.proposals import Durations, Ticket, proposals_needed
from cockpit.runners.pool import Job

HOLD_SECONDS = 600.0  # a client's hold on auto-approve (a dialog open) lapses after this
BRANCH_RERUN = "branch"  # a re-run of a line's origin (see session.tree)
BAR_RERUNS = ("keep", BRANCH_RERUN)  # re-runs of a best: results against it wait for them


@dataclass
class Measurement:
    """A re-run of a commit, unchanged: noise, keep, second-look or confirm."""

    k: int
    commit: str
    purpose: str


@dataclass
class Slot:
    """A worker and what it runs now."""

    worker: int
    job: Job | None = None
    started: float = 0.0
    ticket: Ticket | None = None
    measurement: Measurement | None = None


@dataclass
class Scheduler:
    budget: float  # seconds a run is expected to take before any has run
    limit: int | None = None  # experiments to start at most (None: no limit)
    slots: list[Slot] = field(default_factory=list)
    ready: list[Ticket] = field(default_factory=list)  # approved, waiting for a worker
    awaiting: dict[int, Ticket] = field(default_factory=dict)  # waiting for the human, by n
    proposing: dict[int, Ticket] = field(default_factory=dict)  # being made on a thread
    measurements: list[Measurement] = field(default_factory=list)  # re-runs waiting
    holds: dict[str, float] = field(default_factory=dict)  # client -> when its hold lapses
    started: int = 0  # experiments started in this run of the session
    next_n: int = 1
    next_k: int = 1

    def __post_init__(self) -> None:
        self.propose_time = Durations()
        self.run_time = Durations(initial=float(self.budget))

    # -- slots ---------------------------------------------------------------------------
    def busy(self) -> bool:
        return any(slot.job is not None for slot in self.slots)

    def free(self, idle_workers: list[int]) -> list[Slot]:
        """Slots with no job whose worker can take one (a worker lost with its machine comes
        back once the cluster has room for it)."""
        usable = set(idle_workers)
        return [slot for slot in self.slots if slot.job is None and slot.worker in usable]

    def running_jobs(self) -> list[Job]:
        return [slot.job for slot in self.slots if slot.job is not None]

    def slot_of(self, n: int) -> Slot | None:
        """The slot running experiment n, if any."""
        return next((s for s in self.slots if s.job and s.job.kind == "experiment"
                     and s.job.n == n), None)

    def next_starts(self, free: list[Slot]) -> list[tuple[Slot, Ticket | Measurement]]:
        """What each free slot starts now: the baseline first, then re-runs, then approved
        proposals while experiments may still start."""
        starts: list[tuple[Slot, Ticket | Measurement]] = []
        for slot in free:
            baseline = next((t for t in self.ready if t.is_baseline), None)
            if baseline is not None:
                self.ready.remove(baseline)
                starts.append((slot, baseline))
            elif self.measurements:
                starts.append((slot, self.measurements.pop(0)))
            elif self.ready and self.may_start_experiment():
                starts.append((slot, self.ready.pop(0)))
        return starts

    def may_start_experiment(self) -> bool:
        return self.limit is None or self.started < self.limit

    def done(self) -> bool:
        """Every experiment asked for has started."""
        return self.limit is not None and self.started >= self.limit

    # -- proposals -------------------------------------------------------------------------
    def proposals_wanted(self, idle_workers: list[int], slow: bool, concurrency: int) -> int:
        """How many proposals to start now, so each worker has one when it frees."""
        now = time.monotonic()
        free = {slot.worker for slot in self.free(idle_workers)}
        remaining: list[float | None] = []
        for slot in self.slots:
            if slot.worker in free:
                remaining.append(0.0)
            elif slot.ticket is not None:
                remaining.append(max(0.0, (self.run_time.expected or 0.0) - (now - slot.started)))
            else:
                remaining.append(None)  # a re-run (accounted for already), or a lost worker
        need = proposals_needed(remaining, self.run_time.expected or 1.0,
                                self.propose_time.expected, slow_until_known=slow)
        if self.limit is not None:
            need = min(need, self.limit - self.started)
        have = len(self.ready) + len(self.awaiting) + len(self.proposing)
        return max(0, min(need - have, concurrency - len(self.proposing)))

    def take_n(self) -> int:
        n = self.next_n
        self.next_n += 1
        return n

    def recycle_n(self, n: int) -> None:
        """A number given to a proposal that never came is given again (no holes)."""
        if n == self.next_n - 1:
            self.next_n = n

    def approve_all(self) -> None:
        """Auto-approve: whatever awaits the human runs (unless a client holds it)."""
        if self.holds:
            return
        for n in sorted(self.awaiting):
            ticket = self.awaiting.pop(n)
            ticket.approved = True
            self.ready.append(ticket)

    def hold(self, client: str, on: bool) -> None:
        if on:
            self.holds[client] = time.monotonic() + HOLD_SECONDS
        else:
            self.holds.pop(client, None)

    def lapse_holds(self) -> None:
        now = time.monotonic()
        for client in [c for c, until in self.holds.items() if until < now]:
            del self.holds[client]

    # -- re-runs --------------------------------------------------------------------------
    def queue(self, commit: str, purpose: str) -> Measurement:
        m = Measurement(self.next_k, commit, purpose)
        self.next_k += 1
        self.measurements.append(m)
        return m

    def queued_or_running(self) -> list[Measurement]:
        return self.measurements + [s.measurement for s in self.slots if s.measurement]

    def bar_pending(self, best_commit: str | None) -> bool:
        """Nothing to judge against yet: no best, or the noise runs or the re-runs of the
        best (a keep's, a line origin's) are queued or running."""
        if best_commit is None:
            return True
        return any(m.purpose == "noise" or (m.purpose in BAR_RERUNS and m.commit == best_commit)
                   for m in self.queued_or_running())
