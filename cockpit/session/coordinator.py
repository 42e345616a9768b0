"""The coordinator: one loop for 1..N workers (the serial case is a pool of one).

    propose -> (approve) -> commit -> run -> judge -> keep/discard -> record

Every run is a job on the pool: experiments, the baseline's noise re-runs, keep re-runs and
confirm runs alike. Everything reaches the loop through its inbox (workers' results,
proposals made on their own threads, the commands of any client) and it acts on decisions
made by parts that never call back into it: the scheduler (what starts where), the judge
(what a run's result is), the stopper (early stop), recovery (a resume), the tamper guard
(what a run changed) and the branches (where they may move). It is the only one that moves
the session's git refs and writes results.tsv and experiments.md; the recorder is the one
writer of the journal.

Judging against a bar still being measured: while re-runs of the best commit (the
baseline's noise runs, a new keep's re-runs) are queued or running, results that come back
are held, and judged in the order they came once the bar's runs are in; meanwhile free
workers keep getting new proposals, built on the newest best.
"""
from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from cockpit import protocol
from cockpit.agents import make_agent
from cockpit.domain.exits import EXIT_OK, EXIT_PAUSED
from cockpit.domain.progress import Progress, last_progress
from cockpit.domain.proposals import Proposal, Ticket
from cockpit.domain.state import SessionState
from cockpit.runners.local import LocalRunner
from cockpit.runners.pool import Finished, Job, Started, WorkerPool
from cockpit.session import commands, live
from cockpit.session.branches import Branches
from cockpit.session.errors import SessionError
from cockpit.session.judging import Judge, Outcome, broken, read_run
from cockpit.session.launcher import Launcher
from cockpit.session.opening import make_pool, open_session
from cockpit.session.outcomes import Outcomes
from cockpit.session.proposer import Proposed, Proposer
from cockpit.session.recorder import Observer, Recorder
from cockpit.session.scheduler import Measurement, Scheduler, Slot
from cockpit.session.stopper import Stopper
from cockpit.session.tamper import TamperGuard
from cockpit.session.tree import Lines
from cockpit.workspace.config import Config
from cockpit.workspace.history import History
from cockpit.workspace.journal import Journal
from cockpit.workspace.paths import JOURNAL_NAME, session_dir
from cockpit.workspace.worktrees import Worktrees

TICK = 0.1  # the loop's longest sleep: commands are answered within it

__all__ = ["Coordinator", "Ending", "SessionError"]


@dataclass
class Ending:
    why: str
    code: int = EXIT_OK


@dataclass
class Command:
    """A client's request, answered on the loop's thread."""

    op: str
    args: dict[str, Any]
    reply: queue.Queue[dict[str, Any]]


@dataclass
class Refused:
    """A client the control socket turned away, and why."""

    who: str


class Coordinator:
    def __init__(self, workspace: Path, config: Config, tag: str, agent: Any = None,
                 pool: WorkerPool | Callable[[], WorkerPool] | None = None,
                 auto_approve: bool | None = True, wait_when_paused: bool = False,
                 auto_approve_default: bool = True) -> None:
        self.workspace, self.config, self.tag = workspace, config, tag
        # None: as the session's journal last had it (a resume keeps the human's choice),
        # `auto_approve_default` for a session whose journal never said
        self.asked_auto_approve = auto_approve
        self.agent = agent or make_agent(config)  # duck-typed: see cockpit.agents
        self._pool_source = pool
        self.pool: WorkerPool | None = None
        # A pause with a reason (cost, provider down) waits for a human to resume when one
        # may come (a detached session, a cockpit attached); otherwise it ends the session.
        self.wait_when_paused = wait_when_paused
        self.dir = session_dir(workspace, tag)
        self.journal = Journal(self.dir / JOURNAL_NAME)
        self.recorder = Recorder(self.journal)
        self.control = live.Control(
            auto_approve=auto_approve_default if auto_approve is None else auto_approve)
        self.scheduler = Scheduler(budget=float(config.experiment.time_budget))
        self.judge = Judge(self.recorder.state, config)
        self.stopper = Stopper(config.early_stop, workspace)
        self.lines = Lines(self)  # the search tree: which line the next proposal builds on
        # commands, refused clients, proposals, and the pool's Started and Finished
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.held: list[Finished] = []  # results waiting for their bar
        self.second_looks: dict[str, Finished] = {}  # near-misses waiting for a second run
        self.progress: dict[int, Progress] = {}  # worker -> the newest Progress of its run
        self.stop_cause = "human"  # who ended the runs the pool was told to stop
        self.ending: Ending | None = None
        self.interrupted = False  # Ctrl-C or SIGTERM ended it
        # the parts the loop works with, made by open_session (`opened` once they are)
        self.opened = False
        self.history: History
        self.trees: Worktrees
        self.guard: TamperGuard
        self.launcher: Launcher
        self.branches: Branches
        self.proposer: Proposer
        self.outcomes: Outcomes
        self._measure_only = False
        # the prepare run, while it runs (a signal stops it)
        self._preparing: LocalRunner | None = None
        self._live_sent: dict[str, Any] | None = None
        self._refused: set[str] = set()  # the runs whose processes knocked on the socket
        self._cost_waived = False

    # -- what the rest of the session reads ---------------------------------------------
    @property
    def state(self) -> SessionState:
        return self.recorder.state

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.recorder.events

    @property
    def observers(self) -> list[Observer]:
        """Who is handed every journal event, the live state and the runs' output."""
        return self.recorder.observers

    @observers.setter
    def observers(self, observers: list[Observer]) -> None:
        self.recorder.observers = observers

    @property
    def slots(self) -> list[Slot]:
        return self.scheduler.slots

    @property
    def editable(self) -> str:
        return self.config.experiment.editable

    def best_commit(self) -> str:
        best = self.state.best
        if best is None:
            return self.state.base
        assert best.commit is not None  # a keep has its commit
        return best.commit

    # -- what clients call (any thread) -------------------------------------------------
    def command(self, op: str, timeout: float = 10.0, **args: Any) -> dict[str, Any]:
        """Ask the session to do something; its answer, {"ok": bool, "message": str}."""
        reply: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1)
        self.inbox.put(Command(op, args, reply))
        try:
            return reply.get(timeout=timeout)
        except queue.Empty:
            return {"ok": False, "message": "the session did not answer in time"}

    def refused_client(self, who: str) -> None:
        """The control socket turned a client away (a run's process): journaled once per
        run, by the loop's thread."""
        self.inbox.put(Refused(who))

    def interrupt(self) -> None:
        """Ctrl-C / SIGTERM: end the runs in flight and stop (safe from a signal handler)."""
        self.interrupted = True
        if self._preparing is not None:
            self._preparing.stop()
        self.inbox.put(Command("stop", {"now": True, "by": "signal"}, queue.Queue(1)))

    def live(self) -> dict[str, Any]:
        return live.snapshot(self.tag, self.agent.name, self.scheduler,
                             [f.job.n for f in self.held], self.progress, self.control,
                             self.state, self.workspace)

    def publish_live(self) -> None:
        snapshot = self.live()
        comparable = live.changed(snapshot, self._live_sent)
        if comparable is not None:
            self._live_sent = comparable
            self.recorder.emit({"type": protocol.LIVE, "live": snapshot})

    # -- the run -----------------------------------------------------------------------
    def run(self, max_experiments: int | None = None,
            measure: list[tuple[str, int, str]] | None = None) -> Ending:
        """Run until stopped; why the session ended, with its exit code. With `measure`
        ((commit, runs, purpose), ...) it only re-runs those commits, then ends."""
        self.scheduler.limit = max_experiments
        self._measure_only = measure is not None
        open_session(self, preflight=not self._measure_only)
        try:
            self.pool = make_pool(self.config, self._pool_source)
            self.pool.results = self.inbox
            self.scheduler.slots = [Slot(k) for k in range(self.pool.workers)]
            self.recorder.record("workers", kind=self.pool.kind, workers=self.pool.workers)
            self.outcomes.decide_measuring()
            self.outcomes.prepare_data()
            if self._measure_only:
                assert measure is not None  # what _measure_only means
                for commit, runs, purpose in measure:
                    commands.answer(self, "measure", {"commits": [commit], "runs": runs,
                                                      "purpose": purpose})
            else:
                self.outcomes.plan_start()
            self._drive()
        except Exception as exc:  # end now, say why, and leave the workspace free
            self.outcomes.failed(exc)
        finally:
            self.close()
            assert self.ending is not None  # close() sets it
            self.recorder.record_quietly("session_end", why=self.ending.why,
                                         code=self.ending.code)
        return self.ending

    def _drive(self) -> None:
        while True:
            try:
                item = self.inbox.get(timeout=TICK)
            except queue.Empty:
                item = None
            while item is not None:
                self._handle(item)
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    item = None
            if self._over():
                return
            self._schedule()
            self._check_early_stops()
            self.publish_live()

    def _over(self) -> bool:
        """Whether the session has nothing left to do (and why it ends, when it does)."""
        if self.scheduler.busy():
            return False
        if self.ending is not None:
            return True
        if self.control.stopping:
            self.ending = Ending(self.control.stopping, EXIT_OK)
        elif self._measure_only and not self.scheduler.measurements:
            self.ending = Ending("measured")
        elif self.scheduler.done() and not self.scheduler.measurements and not self.held \
                and not self.second_looks:
            limit = self.scheduler.limit
            self.ending = Ending(f"ran {limit} experiment{'s' * (limit != 1)} as asked")
        return self.ending is not None

    def _handle(self, item: Command | Started | Finished | Proposed | Refused) -> None:
        if isinstance(item, Command):
            item.reply.put(commands.answer(self, item.op, item.args))
        elif isinstance(item, Started):
            kind = "run_pid" if item.job.kind == "experiment" else "measure_pid"
            key = {"n": item.job.n} if item.job.kind == "experiment" else {"k": item.job.n}
            self.recorder.record(kind, pid=item.pid, **key)
        elif isinstance(item, Finished):
            self._finished(item)
        elif isinstance(item, Proposed):
            self._proposed(item)
        elif isinstance(item, Refused):
            run = item.who.split(", ", 1)[-1]
            if run not in self._refused:  # once per run, however often it knocks
                self._refused.add(run)
                self.recorder.record("client_refused", who=item.who)

    # -- scheduling ----------------------------------------------------------------------
    def _schedule(self) -> None:
        if self.ending is not None or self.control.stopping:
            return
        scheduler = self.scheduler
        scheduler.lapse_holds()
        if self.control.auto_approve:
            scheduler.approve_all()
        assert self.pool is not None  # the loop runs: all is up
        free = [] if self.control.paused else scheduler.free(self.pool.idle())
        if free and (scheduler.ready or scheduler.measurements):
            full = self.guard.disk_floor().short()
            if full:  # no run can start: it would be stopped at once
                self.outcomes.pause_for_disk(f"the disk is full ({full})")
                free = []
        for slot, what in scheduler.next_starts(free):
            if isinstance(what, Measurement):
                self._start_measurement(slot, what)
            else:
                self._start_experiment(slot, what)
        self._ask_for_proposals()

    def _ask_for_proposals(self) -> None:
        """Start proposals so each worker has one when it frees (see the scheduler)."""
        if self.control.paused or self.control.stopping or self._measure_only:
            return
        assert self.pool is not None  # the loop runs: all is up
        limit = self.outcomes.cost_limit_reached(self._cost_waived)
        if limit:  # no more asking; what was already paid for runs first, then the pause
            if not self.scheduler.ready and not self.scheduler.proposing:
                self.pause(limit, "cost")
            return
        wanted = self.scheduler.proposals_wanted(self.pool.idle(),
                                                 getattr(self.agent, "slow", False),
                                                 getattr(self.agent, "concurrency", 1))
        for _ in range(wanted):
            line = self.lines.next_line()
            ticket = Ticket(n=self.scheduler.take_n(), base=self.lines.best_commit(line),
                            line=line)
            self.scheduler.proposing[ticket.n] = ticket
            self.recorder.emit({"type": "transient", "kind": "proposing", "n": ticket.n})
            self.proposer.ask(ticket, self.inbox)

    def _proposed(self, done: Proposed) -> None:
        ticket = done.ticket
        self.scheduler.proposing.pop(ticket.n, None)
        received = self.proposer.received(done)
        if isinstance(received, Proposal):
            self.scheduler.propose_time.add(done.seconds)
            self.offer(ticket, received, self.history.file_at(ticket.base, self.editable))
            return
        self.scheduler.recycle_n(ticket.n)
        self.outcomes.proposal_failed(received, ticket.line)

    def offer(self, ticket: Ticket, proposal: Proposal, base_source: str,
              baseline: bool = False) -> None:
        """Journal a proposal and queue it for the human's approval or a worker."""
        self.outcomes.journal_proposal(ticket, proposal, base_source)
        if baseline or ticket.approved:
            ticket.approved = True
            self.scheduler.ready.append(ticket)
        else:
            self.scheduler.awaiting[ticket.n] = ticket

    # -- runs ----------------------------------------------------------------------------
    def _start_experiment(self, slot: Slot, ticket: Ticket) -> None:
        assert self.pool is not None
        commit = self.outcomes.commit_of(ticket, slot.worker)
        if commit is None:
            return  # nothing to run: the slot takes the next start
        slot.ticket = ticket
        self.scheduler.started += 1
        self.launcher.start(self.pool, slot, commit, "experiment", ticket.n, self.output)
        self.progress.pop(slot.worker, None)

    def _start_measurement(self, slot: Slot, m: Measurement) -> None:
        slot.measurement = m
        assert self.pool is not None  # the loop runs
        self.launcher.start(self.pool, slot, m.commit, "measure", m.k, self.output,
                            purpose=m.purpose)
        self.progress.pop(slot.worker, None)

    def output(self, job: Job, text: str) -> None:
        """A run's output (its worker's thread)."""
        progress = last_progress(text)
        if progress is not None:
            self.progress[job.worker] = progress
            if job.kind == "experiment" and progress.loss is not None:
                assert progress.percent is not None  # a progress line always has its percent
                self.stopper.add(job.n, progress.percent, progress.loss)
        self.recorder.emit({"type": protocol.OUTPUT, "worker": job.worker, "kind": job.kind,
                            "n": job.n, "text": text})

    def _finished(self, finished: Finished) -> None:
        job = finished.job
        full = finished.result.disk_full
        assert self.pool is not None
        if full:  # before anything is written: the room it took comes back
            self.guard.free_disk(job, self.trees.shared_entries(),
                                 self.pool.capabilities.remote)
        self.outcomes.check_config()
        self.outcomes.check_refs(job)
        slot = self.slots[job.worker]
        measurement = slot.measurement
        slot.job = slot.ticket = slot.measurement = None
        self.trees.forget(f"w{job.worker}")  # the run may have written into its files
        suspected = self.guard.suspected(job)
        if suspected:  # .git/config gained keys while it ran
            self.outcomes.crash_for_tampering(job, measurement, suspected)
            return
        breach = self.outcomes.breach(job)
        if breach is not None:
            finished.outcome = cast(Any, broken(breach.reason, breach.cause))  # see read_run
        if job.kind == "measure":
            assert measurement is not None  # a re-run's slot holds its measurement
            self.outcomes.measured(measurement, finished)
        else:
            self.stopper.forget(job.n)
            self.scheduler.run_time.add(finished.result.seconds)
            self.recorder.emit({"type": "transient", "kind": "judging", "n": job.n})
            crashed = bool(self.read(finished).cause)
            line = self.lines.line_of(job.n)
            waits = (self.state.line_best(line) is not None and self.lines.bar_pending(line)) \
                or (self.state.line_best(line) is None and not self._is_baseline(job.n))
            if waits and not crashed:
                self.held.append(finished)  # its bar is still being measured
            else:
                self.outcomes.judge(finished)
        self.lines.judge_held()
        if full:  # until a human has made room (a headless session ends, exit 3)
            self.outcomes.pause_for_disk(f"a run filled the disk ({full}); its files were "
                                         "removed")
        if finished.result.holder_killed and not self.control.paused and not self.control.stopping:
            self.pause(f"{'#' if job.kind == 'experiment' else 're-run '}{job.n} killed the "
                       "process that held it (the sandbox is off): processes it started may "
                       "run on, with your rights; check them, turn the sandbox on, then "
                       "resume", "escaped")

    def read(self, finished: Finished) -> Outcome:
        return read_run(finished, self.config, self.state.fingerprint, self.stop_cause
                        if self.stop_cause != "human" else "", self.launcher.measuring.trust)

    def _is_baseline(self, n: int) -> bool:
        exp = self.state.get(n)
        return exp is not None and exp.is_baseline

    def _check_early_stops(self) -> None:
        running = [(s.worker, s.job.n) for s in self.slots if s.job is not None
                   and s.job.kind == "experiment" and not self._is_baseline(s.job.n)]
        for stop in self.stopper.check(running, self.state):
            shadow = self.config.early_stop.shadow
            self.recorder.record("early_stop", n=stop.n, shadow=shadow,
                                 **stop.decision.to_dict(), why=stop.decision.why)
            if not shadow:
                assert self.pool is not None  # a run was checked: the pool is up
                self.pool.stop(stop.worker)

    # -- pausing and ending ---------------------------------------------------------------
    def pause(self, reason: str, kind: str) -> None:
        self.recorder.record("paused", reason=reason, kind=kind)
        if kind != "human" and not self.wait_when_paused:
            # no one will come to resume it: end once the runs in flight are recorded
            self.end(f"paused: {reason}", EXIT_PAUSED, stop_runs=False)
            return
        control = self.control
        control.paused, control.pause_kind, control.pause_reason = True, kind, reason

    def resume(self) -> None:
        control = self.control
        if control.pause_kind == "cost":
            self._cost_waived = True  # the human chose to spend past the limit
        control.paused, control.pause_kind, control.pause_reason = False, "", ""
        self.recorder.record("resumed")

    def end(self, why: str, code: int, stop_runs: bool = True) -> None:
        self.ending = Ending(why, code)
        self.control.stopping = why
        self.control.ending = why
        if stop_runs and self.pool is not None and self.scheduler.busy():
            self.stop_cause = why
            self.pool.stop()

    def close(self) -> None:
        if self.ending is None:
            self.ending = Ending(self.control.stopping or "stopped")
        self.control.ending = self.ending.why
        if self.pool is not None:
            self.pool.stop()
            try:
                self.outcomes.drain_after_stop()
            finally:
                self.pool.close()
        if self.opened:
            self.outcomes.remove_worktrees()
        self.publish_live()

    # -- helpers ---------------------------------------------------------------------------
    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.workspace))
