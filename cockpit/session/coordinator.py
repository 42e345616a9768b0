"""The coordinator: one loop for 1..N workers (the serial case is a pool of one).

    propose -> (approve) -> commit -> run -> judge -> keep/discard -> record

Every run is a job on the pool: experiments, the baseline's noise re-runs, keep re-runs and
confirm runs alike. This thread is the only writer of the journal, results.tsv,
experiments.md and the session's git refs; everything else reaches it through its inbox:
workers' results, proposals made on their own threads, and the commands of any client.

Judging against a bar still being measured: a result waits for its bar. While re-runs of
the best commit (the baseline's noise runs, a new keep's re-runs) are queued or running,
results that come back are held, and judged in the order they came once the bar's runs are
in; meanwhile free workers keep getting new proposals, built on the newest best. A proposal
made on a best that has moved since is carried onto the new best by a three-way merge when
its change still applies (else it runs on the best it was made for) and is judged against
the best of the moment.
"""
from __future__ import annotations

import hashlib
import queue
import re
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cockpit.agents import (
    AgentContext,
    AgentError,
    AgentExhausted,
    AgentUnavailable,
    ProposalFailed,
    make_agent,
)
from cockpit.domain.proposals import Proposal
from cockpit.agents.edits import EditRefused, validate_source
from cockpit.session import sandboxing
from cockpit.workspace import checks
from cockpit.workspace.data import (
    changed_fixed_files,
    data_changes,
    data_dir_of,
    data_snapshot,
)
from cockpit.workspace.paths import config_path
from cockpit.workspace.config import Config
from cockpit.domain.errors import CockpitError
from cockpit.workspace.history import (
    NO_COMMIT,
    REF_PREFIX,
    BranchMoved,
    ConfigTampered,
    History,
    HistoryError,
    short,
)
from cockpit.workspace.paths import STATE_DIR, session_dir
from cockpit.domain.state import Experiment, SessionState
from cockpit.workspace.journal import Journal, earlier_sessions
from cockpit.domain.judge import KeepPolicy, Noise, NoiseFloor, Verdict, gain_of
from cockpit.domain.earlystop import Curve, EarlyStop, StopDecision
from cockpit.domain.progress import last_progress
from cockpit.domain.proposals import Durations, Ticket, proposals_needed
from cockpit.workspace.merge import carry_onto
from cockpit.workspace.records import (
    LEGACY_EXPERIMENTS,
    REPORT_NAME,
    RESULTS_NAME,
    RecordsError,
    refuse_if_not_ours,
    append_result,
    reconcile_results,
    write_experiments_md,
)
from cockpit.workspace.report import PLOT_NAME
from cockpit.workspace.report import REPORT_NAME as MORNING_REPORT
from cockpit.runners.disk import MB, DiskFloor
from cockpit.runners.local import LocalRunner, kill_leftovers, new_run_id, training_env
from cockpit.runners.pool import WORKER_LOST, Finished, Job, Started, WorkerPool
from cockpit.runners.outcome import (
    crash_reason,
    failure_reason,
    find_value,
    metric_value,
    parse_summary,
)
from cockpit.workspace.logs import read_head, read_tail
from cockpit.domain.diffs import lines_delta, unified_diff

MAX_CRASH_STREAK = 10  # stop instead of burning a night on a broken setup
MAX_FAILED_PROPOSALS = 3  # rounds of refused answers in a row before the loop pauses
LOG_TAIL_LINES = 60  # of a crashed run's log, shown to the agent that repairs it
PREPARE_TIMEOUT = 3600
TICK = 0.1  # the coordinator's longest sleep: commands are answered within it
INTERRUPTED = "interrupted: cockpit stopped during this experiment"
STOPPED = "stopped by the human"
HOLD_SECONDS = 600.0  # a client's hold on auto-approve (a dialog open) lapses after this
EARLY_STOP_SECONDS = 1.0  # how often running experiments are checked against the best
CURVE_BYTES = 20_000_000  # of a finished run's log read for its loss curve

# Why a session ended, as the process's exit code.
EXIT_OK, EXIT_USER, EXIT_PAUSED, EXIT_FAILED = 0, 2, 3, 4


class SessionError(CockpitError):
    """The session cannot start or go on (one line for the user)."""


@dataclass
class Ending:
    why: str
    code: int = EXIT_OK


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
class Command:
    """A client's request, answered on the coordinator's thread."""

    op: str
    args: dict
    reply: "queue.Queue[dict]"


@dataclass
class Refused:
    """A client the control socket turned away, and why."""

    who: str


@dataclass
class Proposed:
    """A proposer thread's result: a proposal, or why there is none."""

    ticket: Ticket
    proposal: Proposal | None
    error: Exception | None
    seconds: float


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def worker_branch(tag: str, worker: int, workers: int) -> str:
    """The branch a worker's experiments sit on: the session's own with one worker."""
    return History.branch_for(tag if workers == 1 else f"{tag}-gpu{worker}")


class Coordinator:
    def __init__(self, workspace: Path, config: Config, tag: str, agent=None,
                 pool: WorkerPool | Callable[[], WorkerPool] | None = None,
                 auto_approve: bool = True, wait_when_paused: bool = False) -> None:
        self.workspace = workspace
        self.config = config
        self.tag = tag
        self.agent = agent or make_agent(config)
        self._pool_source = pool
        self.pool: WorkerPool | None = None
        self.auto_approve = auto_approve
        # A pause with a reason (cost, provider down) waits for a human to resume when one
        # may come (a detached session, a cockpit attached); otherwise it ends the session.
        self.wait_when_paused = wait_when_paused
        self.dir = session_dir(workspace, tag)
        self.journal = Journal(self.dir / "journal.jsonl")
        self.events: list[dict] = []
        self.state = SessionState()
        self.history: History | None = None
        self.trees = None
        self.observers: list[Callable[[dict], None]] = []
        self.inbox: queue.Queue = queue.Queue()
        self._record_lock = threading.Lock()
        # scheduling
        self.slots: list[Slot] = []
        self.ready: list[Ticket] = []  # approved, waiting for a worker
        self.awaiting: dict[int, Ticket] = {}  # waiting for the human, by n
        self.proposing: dict[int, Ticket] = {}  # being made on a proposer thread
        self.measurements: list[Measurement] = []  # re-runs waiting for a worker
        self.held: list[Finished] = []  # results waiting for their bar
        self.second_looks: dict[str, Finished] = {}  # near-misses waiting for a second run
        self._suspects: dict[str, str] = {}  # run id -> why: .git/config changed as it ran
        self.to_repair: list[Experiment] = []
        self.propose_time = Durations()
        self.run_time = Durations(initial=float(config.experiment.time_budget))
        self._next_n = 1
        self._next_k = 1
        self._started = 0  # experiments started in this run
        self._max: int | None = None
        self._crash_streak = 0
        self._failed_streak = 0
        self._notes: list[dict] = []  # {"id", "text"}
        self._holds: dict[str, float] = {}  # client -> when its hold lapses
        self._notify_failing: dict[str, str] = {}  # notification service -> its last error
        self._refused: set[str] = set()  # the runs whose processes knocked on the socket
        self._branch_at: dict[str, str] = {}  # each session branch: where cockpit left it
        self._not_ours_said = False  # experiments.md became the human's: said once
        self._refs_before: dict[str, dict[str, str]] = {}  # run id -> the refs as it started
        # state the clients see
        self.paused = False
        self.pause_kind = ""  # "", "human", "cost", "provider", "proposals"
        self.pause_reason = ""
        self._cost_waived = False
        self.stopping = ""  # why no new work starts ("" while it does)
        self.ending: Ending | None = None
        self._machine: str | None = None
        self._program_sha = ""
        self._live_sent: dict | None = None
        self._stop_cause = "human"  # who ended the runs the pool was told to stop
        self._progress: dict = {}  # worker -> the newest Progress of its run
        self.sandbox = sandboxing.Sandboxing(False, "not decided yet")
        # early stop: each running experiment's loss curve, as its output comes in
        self._live_curves: dict[int, Curve] = {}  # n -> its curve so far, while it runs
        self._curves: dict[str, Curve] = {}  # a finished run's log -> its curve
        self._early: dict[int, StopDecision] = {}  # experiments stopped (or, shadow, not)
        self._early_check = 0.0
        self._prior_cache: list[Experiment] | None = None
        self.data_dir: Path | None = None
        self._data: dict | None = None  # the data's snapshot after preparing it
        self.interrupted = False  # Ctrl-C or SIGTERM ended it
        self._measure_only = False
        self._preparing: LocalRunner | None = None

    # -- what clients call (any thread) ------------------------------------------------
    def command(self, op: str, timeout: float = 10.0, **args) -> dict:
        """Ask the coordinator to do something; its answer, {"ok": bool, "message": str}."""
        reply: queue.Queue[dict] = queue.Queue(maxsize=1)
        self.inbox.put(Command(op, args, reply))
        try:
            return reply.get(timeout=timeout)
        except queue.Empty:
            return {"ok": False, "message": "the session did not answer in time"}

    def refused_client(self, who: str) -> None:
        """The control socket turned a client away (a run's process): journaled, once per
        client, by the coordinator's thread."""
        self.inbox.put(Refused(who))

    def interrupt(self) -> None:
        """Ctrl-C / SIGTERM: end the runs in flight and stop (safe from a signal handler)."""
        self.interrupted = True
        preparing = self._preparing
        if preparing is not None:
            preparing.stop()
        self.inbox.put(Command("stop", {"now": True, "by": "signal"}, queue.Queue(1)))

    # -- the run -----------------------------------------------------------------------
    def run(self, max_experiments: int | None = None,
            measure: list[tuple[str, int, str]] | None = None) -> Ending:
        """Run until stopped; why the session ended, with its exit code. With `measure`
        ((commit, runs, purpose), ...) it only re-runs those commits, then ends."""
        self._max = max_experiments
        self._measure_only = measure is not None
        if not self._measure_only:
            self._preflight()
        self.open()
        try:
            self.pool = self._make_pool()
            self.pool.results = self.inbox
            self.slots = [Slot(k) for k in range(self.pool.workers)]
            self._record("workers", kind=self.pool.kind, workers=self.pool.workers)
            self._prepare_data()
            if self._measure_only:
                for commit, runs, purpose in measure:
                    self._cmd_measure([commit], runs, purpose)
            else:
                self._plan_start()
            self._drive()
        except Exception as exc:  # end now, say why, and leave the workspace free
            self._failed(exc)
        finally:
            self.close()
            self._record_quietly("session_end", why=self.ending.why, code=self.ending.code)
        return self.ending

    def _failed(self, exc: Exception) -> None:
        """The loop raised: a disk too full for cockpit's own writes (said in one line), or
        a bug (raised again: its traceback goes to stderr, the session log)."""
        full = self._disk_floor().short()
        if full:
            self.ending = Ending(f"the disk is full ({full}; {type(exc).__name__}: {exc}): "
                                 "make room, then `cockpit run` resumes (nothing recorded is "
                                 "lost)", EXIT_FAILED)
        else:
            self.ending = Ending(f"cockpit failed: {type(exc).__name__}: {exc} (the "
                                 "traceback is on its stderr, the session log)", EXIT_FAILED)
        self.stopping = self.ending.why
        if not full:
            raise exc

    def _record_quietly(self, event: str, **fields) -> None:
        """Journal what the session's end must still say, however it ends (a full disk
        included): a record that cannot be written is said on stderr instead."""
        try:
            self._record(event, **fields)
        except Exception as exc:
            print(f"cockpit: could not journal {event} ({exc})", file=sys.stderr, flush=True)

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
            if self.ending is not None and not self._busy():
                return
            if self.stopping and not self._busy():
                self.ending = self.ending or Ending(self.stopping, EXIT_OK)
                return
            if self._measure_only and not self._busy() and not self.measurements:
                self.ending = Ending("measured")
                return
            if self._max is not None and self._started >= self._max and not self._busy() \
                    and not self.measurements and not self.held and not self.second_looks:
                self.ending = Ending(f"ran {self._max} experiment{'s' * (self._max != 1)} "
                                     "as asked")
                return
            self._schedule()
            self._check_early_stops()
            self._publish_live()

    def _busy(self) -> bool:
        return any(slot.job is not None for slot in self.slots)

    # -- messages ------------------------------------------------------------------------
    def _handle(self, item) -> None:
        if isinstance(item, Command):
            item.reply.put(self._answer(item))
        elif isinstance(item, Started):
            self._started_run(item.job, item.pid)
        elif isinstance(item, Finished):
            self._finished(item)
        elif isinstance(item, Proposed):
            self._proposed(item)
        elif isinstance(item, Refused) and item.who.split(", ", 1)[-1] not in self._refused:
            self._refused.add(item.who.split(", ", 1)[-1])  # once per run, however often
            self._record("client_refused", who=item.who)

    def _answer(self, command: Command) -> dict:
        handler = getattr(self, f"_cmd_{command.op}", None)
        if handler is None:
            return {"ok": False, "message": f"unknown command {command.op!r}"}
        try:
            answer = handler(**command.args)
        except CommandRefused as exc:
            return {"ok": False, "message": str(exc)}
        except TypeError as exc:
            return {"ok": False, "message": f"{command.op}: {exc}"}
        self._publish_live()
        if isinstance(answer, dict):
            return {"ok": True, **answer}
        return {"ok": True, "message": answer or "done"}

    # -- scheduling ----------------------------------------------------------------------
    def _schedule(self) -> None:
        if self.ending is not None or self.stopping:
            return
        self._lapse_holds()
        self._approve_automatically()
        free = [] if self.paused else self._free_slots()
        if free and (self.ready or self.measurements):
            full = self._disk_floor().short()
            if full:  # no run can start: it would be stopped at once
                self._pause_for_disk(f"the disk is full ({full})")
                free = []
        if not self.paused:
            for slot in free:
                baseline = next((t for t in self.ready if self._is_baseline_ticket(t)), None)
                if baseline is not None:  # first: everything else is judged against it
                    self.ready.remove(baseline)
                    self._start_experiment(slot, baseline)
                elif self.measurements:
                    self._start_measurement(slot, self.measurements.pop(0))
                elif self.ready and self._may_start_experiment():
                    self._start_experiment(slot, self.ready.pop(0))
        self._ask_for_proposals()

    def _free_slots(self) -> list[Slot]:
        """Slots with no job whose worker can take one (a worker lost with its machine
        comes back once the cluster has room for it)."""
        usable = set(self.pool.idle())
        return [slot for slot in self.slots if slot.job is None and slot.worker in usable]

    def _may_start_experiment(self) -> bool:
        if self._max is not None and self._started >= self._max:
            return False
        return True

    def _ask_for_proposals(self) -> None:
        """Start proposals so each worker has one when it frees (see cockpit.proposals)."""
        if self.paused or self.stopping or self._measure_only:
            return
        limit = self._cost_limit_reached()
        if limit:  # no more asking; what was already paid for runs first, then the pause
            if not self.ready and not self.proposing:
                self._pause(limit, "cost")
            return
        now = time.monotonic()
        remaining: list[float | None] = []
        free = {slot.worker for slot in self._free_slots()}
        for slot in self.slots:
            if slot.worker in free:
                remaining.append(0.0)
            elif slot.ticket is not None:
                remaining.append(max(0.0, (self.run_time.expected or 0.0)
                                     - (now - slot.started)))
            else:
                remaining.append(None)  # a re-run (accounted for already), or a lost worker
        need = proposals_needed(remaining, self.run_time.expected or 1.0,
                                self.propose_time.expected,
                                slow_until_known=getattr(self.agent, "slow", False))
        if self._max is not None:
            need = min(need, self._max - self._started)
        have = len(self.ready) + len(self.awaiting) + len(self.proposing)
        concurrency = getattr(self.agent, "concurrency", 1)
        while have < need and len(self.proposing) < concurrency:
            self._start_proposal()
            have += 1

    def _approve_automatically(self) -> None:
        if not self.auto_approve or self._holds:
            return
        for n in sorted(self.awaiting):
            ticket = self.awaiting.pop(n)
            ticket.approved = True
            self.ready.append(ticket)

    # -- proposals -----------------------------------------------------------------------
    def _start_proposal(self) -> None:
        n = self._take_n()
        base = self.best_commit()
        ticket = Ticket(n=n, base=base)
        crashed = self._crash_to_repair()
        source = self.history.file_at(crashed.commit if crashed else base, self.editable)
        ctx = self._context(n, source)
        self.proposing[n] = ticket
        self._emit_live_event("proposing", n=n)

        def work() -> None:
            start = time.monotonic()
            proposal, error = None, None
            try:
                proposal = self._ask_agent(ctx, crashed, n)
            except Exception as exc:  # handed to the coordinator's thread
                error = exc
            self.inbox.put(Proposed(ticket, proposal, error, time.monotonic() - start))

        threading.Thread(target=work, name=f"propose-{n}", daemon=True).start()

    def _ask_agent(self, ctx: AgentContext, crashed: Experiment | None, n: int):
        if crashed is None:
            return self.agent.propose(ctx)
        root = crashed.repair_of or crashed.n
        try:
            proposal = self.agent.repair(ctx, crashed, self._log_tail(crashed))
        except ProposalFailed as exc:
            proposal, why = None, f"no usable fix: {exc}"
        else:
            why = "the agent gave the idea up"
        if proposal is not None:
            proposal.repair_of = root
            return proposal
        raise Abandoned(root, why)

    def _proposed(self, done: Proposed) -> None:
        ticket = done.ticket
        self.proposing.pop(ticket.n, None)
        error = done.error
        if isinstance(error, Abandoned):
            self._abandon(error.root, error.why)
            self._recycle_n(ticket.n)
            return
        if error is not None:
            self._recycle_n(ticket.n)
            self._proposal_error(error)
            return
        self.propose_time.add(done.seconds)
        proposal = done.proposal
        base_source = self.history.file_at(ticket.base, self.editable)
        try:
            validate_source(proposal.source, base_source, self.editable)
        except EditRefused as exc:
            self._record("attempt", n=ticket.n, kind="loop check", accepted=False,
                         problem=str(exc))
            self._recycle_n(ticket.n)
            self._proposal_error(ProposalFailed(f"the {self.agent.name} agent's proposal was "
                                                f"refused: {exc}"))
            return
        self._failed_streak = 0
        self._offer(ticket, proposal, base_source)

    def _offer(self, ticket: Ticket, proposal: Proposal, base_source: str,
               baseline: bool = False) -> None:
        """Journal a proposal and queue it for the human's approval or a worker."""
        ticket.proposal = proposal
        ticket.diff = unified_diff(base_source, proposal.source, self.editable)
        blob = self.history.git("hash-object", "-w", "--no-filters", "--stdin",
                                input=proposal.source.encode()).strip()
        self._record("proposal", n=ticket.n, description=proposal.description,
                     hypothesis=proposal.hypothesis, diff=ticket.diff, params=proposal.params,
                     move=proposal.move, source_sha=_sha(proposal.source), source_blob=blob,
                     repair_of=proposal.repair_of, attempts=proposal.attempts,
                     usage=proposal.usage, base=ticket.base,
                     **({"made": ticket.made} if ticket.made else {}))
        if baseline or ticket.approved:
            ticket.approved = True
            self.ready.append(ticket)
        else:
            self.awaiting[ticket.n] = ticket

    def _proposal_error(self, error: Exception) -> None:
        if isinstance(error, ConfigTampered):  # the command agent planted it
            self._put_config_back(error, [])
            error = ProposalFailed(f"the agent changed .git/config ({', '.join(error.keys)})")
        if isinstance(error, AgentExhausted):
            self.stopping = self.stopping or str(error)
        elif isinstance(error, AgentError):
            self.ending = Ending(f"{self.agent.name} agent: {error}", EXIT_USER)
            self.stopping = self.ending.why
        elif isinstance(error, AgentUnavailable):
            self._pause(str(error), "provider")
        elif isinstance(error, ProposalFailed):
            self._failed_streak += 1
            self._record("proposal_failed", reason=str(error))
            if self._failed_streak >= MAX_FAILED_PROPOSALS:
                self._failed_streak = 0
                self._pause(f"{MAX_FAILED_PROPOSALS} proposals in a row failed; the last: "
                            f"{error}", "proposals")
        else:  # a bug in an agent: say it, and do not spin on it
            self.ending = Ending(f"{self.agent.name} agent failed: {type(error).__name__}: "
                                 f"{error}", EXIT_FAILED)
            self.stopping = self.ending.why

    def _take_n(self) -> int:
        n = self._next_n
        self._next_n += 1
        return n

    def _recycle_n(self, n: int) -> None:
        """A number given to a proposal that never came is given again (no holes)."""
        if n == self._next_n - 1:
            self._next_n = n

    # -- runs ----------------------------------------------------------------------------
    def _start_experiment(self, slot: Slot, ticket: Ticket) -> None:
        n, proposal = ticket.n, ticket.proposal
        best = self.best_commit()
        baseline = proposal.description == "baseline" and ticket.base == self.state.base \
            and not ticket.diff
        if baseline:
            commit = ticket.base
        elif ticket.made:  # the human's own commit: run as it is, kept as it is
            commit = ticket.made
        else:
            source, base = proposal.source, ticket.base
            if base != best:  # the best moved while it waited: carry the change onto it
                carried = carry_onto(proposal.source, self.history.file_at(base, self.editable),
                                     self.history.file_at(best, self.editable))
                if carried is not None:
                    source, base = carried, best
                self._record("rebase", n=n, onto=base, was=ticket.base,
                             clean=carried is not None)
            commit = self.history.commit_file(base, self.editable, source, proposal.description)
        self.history.keep_ref(self.tag, n, commit)
        self._move_branch(self._worker_branch(slot.worker), commit)
        self._record("commit", n=n, commit=commit)
        log = self.dir / "runs" / f"{n:04d}" / "run.log"
        slot.ticket = ticket
        self._started += 1
        self._launch(slot, commit, log, kind="experiment", key=n, announce=lambda job: (
            self._record("run_start", n=n, commit=commit, log=self._rel(log),
                         worker=slot.worker, run_id=job.run_id)))

    def _start_measurement(self, slot: Slot, m: Measurement) -> None:
        log = self.dir / "measure" / f"{m.k:04d}" / "run.log"
        slot.measurement = m
        self._launch(slot, m.commit, log, kind="measure", key=m.k, announce=lambda job: (
            self._record("measure_start", k=m.k, commit=m.commit, purpose=m.purpose,
                         worker=slot.worker, log=self._rel(log), run_id=job.run_id)))

    def _launch(self, slot: Slot, commit: str, log: Path, kind: str, key: int,
                announce: Callable[[Job], None]) -> None:
        remote = self.pool.kind == "ray"
        tree = self.trees.checkout(f"w{slot.worker}", commit) if not remote else self.workspace
        experiment = self.config.experiment
        job = Job(n=key, worker=slot.worker, commit=commit, command=experiment.train_command,
                  cwd=tree, log_path=log, timeout=experiment.hard_timeout,
                  log_limit=experiment.max_log_mb * MB, disk=self._disk_floor(tree),
                  env={"COCKPIT_TIME_BUDGET": str(experiment.time_budget)},
                  files=self.history.tree_files(commit) if remote else None,
                  prepare=self.prepare_command() if remote else "",
                  kind=kind, run_id=f"{self.tag}-{kind[0]}{key}-{uuid.uuid4().hex[:8]}",
                  sandbox=sandboxing.policy_for(self.config, self.workspace, tree, self.data_dir,
                                            self.trees.shared_entries())
                  if self.sandbox.on and not remote else None)
        slot.job, slot.started = job, time.monotonic()
        self._progress.pop(slot.worker, None)
        if job.sandbox is None and not remote:  # it could change the human's branches
            self._refs_before[job.run_id] = self.history.branch_refs()
        announce(job)  # journaled before its first output can reach anyone
        self.pool.start(job, on_output=self._output)

    def _started_run(self, job: Job, pid: int) -> None:
        if job.kind == "experiment":
            self._record("run_pid", n=job.n, pid=pid)
        else:
            self._record("measure_pid", k=job.n, pid=pid)

    def _finished(self, finished: Finished) -> None:
        job = finished.job
        full = finished.result.disk_full
        if full:
            self._free_the_disk(job)
        try:  # before anything else runs git: did it (or a run beside it) plant something?
            self.history.check_config()
        except ConfigTampered as exc:
            self._planted_midway(exc)
        self._check_refs(job)
        slot = self.slots[job.worker]
        measurement = slot.measurement
        slot.job = slot.ticket = slot.measurement = None
        self.trees.forget(f"w{job.worker}")  # the run may have written into its files
        suspected = self._suspects.pop(job.run_id, "")
        if suspected:  # .git/config gained keys while it ran
            self._crash_for_tampering(job, measurement, suspected)
            return
        broken = self._broke_the_rules(job)
        if broken:
            finished.outcome = ({}, None, broken, "")
        if job.kind == "measure":
            self._measured(measurement, finished)
        else:
            self._live_curves.pop(job.n, None)  # only a running experiment is checked
            self.run_time.add(finished.result.seconds)
            self._emit_live_event("judging", n=job.n)
            crashed = bool(self._read_run(finished)[2])
            if self.state.best is not None and self._bar_pending() and not crashed \
                    or self.state.best is None and not self._is_baseline(job.n) and not crashed:
                self.held.append(finished)  # its bar is still being measured
            else:
                self._judge(finished)
        self._judge_held()
        if full:  # until a human has made room (a headless session ends, exit 3)
            self._pause_for_disk(f"a run filled the disk ({full}); its files were removed")
        if finished.result.holder_killed and not self.paused and not self.stopping:
            self._pause(f"{self._who(job)} killed the process that held it (the sandbox is "
                        "off): processes it started may run on, with your rights; check "
                        "them, turn the sandbox on, then resume", "escaped")

    def _disk_floor(self, tree: Path | None = None) -> DiskFloor:
        """The room the disks a run writes to must keep: its worktree's, the session's own
        (journal, logs, git), and the writable paths it was given."""
        paths = [self.dir, *([tree] if tree is not None else [])]
        paths += [config_path(p, self.workspace) for p in self.config.sandbox.writable]
        return DiskFloor(paths, self.config.experiment.min_free_mb * MB)

    def _free_the_disk(self, job: Job) -> None:
        """A run stopped for the disk: before anything is written, its files go (the room
        it took comes back; nothing of it is needed to judge it)."""
        if self.pool.kind != "ray":
            try:
                self.history.clean_worktree(job.cwd, keep=self.trees.shared_entries())
            except HistoryError:
                pass

    def _pause_for_disk(self, why: str) -> None:
        if not self.paused and not self.stopping:
            self._pause(f"{why}: make room on the disk (at least [experiment] min_free_mb = "
                        f"{self.config.experiment.min_free_mb} MB free), then resume", "disk")

    def _check_refs(self, job: Job) -> None:
        """An unsandboxed run may have changed the human's branches and tags: a deleted one
        is put back, and what it created or deleted is reported (moves are not: the human
        commits on main while runs train)."""
        before = self._refs_before.pop(job.run_id, None)
        if before is None:
            return
        after = self.history.branch_refs()
        own = f"refs/heads/{History.branch_for(self.tag)}"

        def humans(ref: str) -> bool:
            return ref != own and not ref.startswith(f"{own}-gpu")

        created = sorted(r for r in after if r not in before and humans(r))
        deleted = sorted(r for r in before if r not in after and humans(r))
        for ref in deleted:
            try:
                self.history.recreate_ref(ref, before[ref])
            except HistoryError:
                pass
        if created or deleted:
            others = [self._who(s.job) for s in self.slots if s.job and s.job is not job]
            self._record("refs_changed", by=self._who(job) + (
                f" (or {', '.join(others)}, beside it)" if others else ""),
                created=created, restored=deleted)

    def _broke_the_rules(self, job: Job) -> str:
        """Whether a run changed what results rest on: the fixed files of its worktree (put
        back from git at the next checkout) or the data (which ends the session)."""
        if self.pool.kind == "ray":
            return ""  # it ran elsewhere, on files shipped to it
        changed = changed_fixed_files(self.history, job.cwd, job.commit,
                                             list(self.config.experiment.fixed))
        if changed:
            self._record("fixed_changed", files=changed, by=job.n, kind=job.kind)
            return f"the run modified {', '.join(changed)} (restored; the evaluation is fixed)"
        data = data_changes(self._data, data_snapshot(self.data_dir))
        if data:
            shown = ", ".join(data[:3]) + (f" and {len(data) - 3} more" if len(data) > 3 else "")
            self._end(f"the data in {self.data_dir} changed during a run ({shown}): no later "
                      "result could be judged on it; prepare the data again (delete the "
                      "directory, or run prepare.py) and start a new session", EXIT_FAILED)
            return f"the run modified the data in {self.data_dir} ({shown})"
        return ""

    def _is_baseline_ticket(self, ticket: Ticket) -> bool:
        return ticket.proposal is not None and ticket.proposal.description == "baseline" \
            and not ticket.diff

    def _is_baseline(self, n: int) -> bool:
        exp = self.state.get(n)
        return exp is not None and exp.description == "baseline" and not exp.diff

    # -- early stop --------------------------------------------------------------------
    def _early_stopper(self) -> EarlyStop | None:
        """The early-stop check, calibrated on every commit run more than once (None when
        it is off: by config, or "auto" before the noise floor is measured)."""
        settings = self.config.early_stop
        if settings.enabled is False or settings.enabled == "auto" and self.noise is None:
            return None
        groups: dict[str, list[Curve]] = {}
        for path, commit in self._run_logs():
            groups.setdefault(commit, []).append(self._curve_of(path))
        stopper = EarlyStop(settings.min_progress, settings.margin)
        stopper.calibrate([g for g in groups.values() if len(g) > 1])
        return stopper if stopper.calibrated else None

    def _run_logs(self) -> list[tuple[str, str]]:
        """(log, commit) of every finished run that measured its commit."""
        runs = [(e.log, e.commit) for e in self.state.experiments
                if e.log and e.commit and e.metric is not None]
        runs += [(e["log"], e["commit"]) for e in self.events
                 if e["event"] == "measure" and e.get("metric") is not None and e.get("log")]
        return runs

    def _curve_of(self, log: str) -> Curve:
        if log not in self._curves:
            self._curves[log] = Curve.from_log(read_tail(self.workspace / log, CURVE_BYTES))
        return self._curves[log]

    def _check_early_stops(self) -> None:
        """Once a second: is a running experiment hopelessly behind the best at the same
        progress? Stop it (or, in shadow mode, journal that it would have been)."""
        now = time.monotonic()
        if now - self._early_check < EARLY_STOP_SECONDS:
            return
        self._early_check = now
        running = [s for s in self.slots if s.job is not None and s.job.kind == "experiment"
                   and s.job.n not in self._early and not self._is_baseline(s.job.n)]
        if not running:
            return
        stopper = self._early_stopper()
        best = self.state.best
        if stopper is None or best is None:
            return
        best_curves = [self._curve_of(path) for path, commit in self._run_logs()
                       if commit == best.commit]
        for slot in running:
            n = slot.job.n
            live = self._live_curves.get(n) or Curve()  # copied: its worker thread adds
            decision = stopper.check(best_curves, Curve(list(live.points), live.broken))
            if decision is None:
                continue
            self._early[n] = decision
            shadow = self.config.early_stop.shadow
            self._record("early_stop", n=n, shadow=shadow, **decision.to_dict(),
                         why=decision.why)
            if not shadow:
                self.pool.stop(slot.worker)

    # -- judging -------------------------------------------------------------------------
    def _bar_pending(self) -> bool:
        """Nothing to judge against yet: no baseline, or the noise runs or re-runs of the
        best are queued or running."""
        if self.state.best is None:
            return True
        best = self.best_commit()
        return any(m.purpose == "noise" or m.purpose == "keep" and m.commit == best
                   for m in self._queued_or_running())

    def _judge_held(self) -> None:
        while self.held and not self._bar_pending():
            self._judge(self.held.pop(0))

    def _read_run(self, finished: Finished) -> tuple[dict, float | None, str, str]:
        """(summary, metric, crash reason, log text tail) of a finished run."""
        if finished.outcome is not None:
            return finished.outcome
        log = finished.job.log_path
        text = read_tail(log)  # the summary is at the end; a flood of output stays on disk
        summary = parse_summary(text)
        metric = self.state.metric
        reason = crash_reason(finished.result, text, summary, metric,
                              self.config.experiment.hard_timeout)
        if reason == STOPPED and self._stop_cause != "human":
            reason = f"ended with the session: {self._stop_cause}"
        value = None if reason else metric_value(summary, metric)
        if not reason:
            reason = self.config.metric.to_metric().implausible(value)
            value = None if reason else value
        fingerprint = find_value(read_head(log), "data_fingerprint")
        expected = self._fingerprint()
        if not reason and fingerprint and expected and fingerprint != expected:
            reason = (f"the run read other data (fingerprint {fingerprint}; the session's is "
                      f"{expected})")
            value = None
        finished.outcome = (summary, value, reason, read_head(log) + "\n" + text[-4096:])
        return finished.outcome

    def _judge(self, finished: Finished) -> None:
        job = finished.job
        n = job.n
        stopped = self._early.get(n)
        if stopped is not None and not self.config.early_stop.shadow and finished.result.stopped:
            self._judge_stopped(finished, stopped)
            return
        summary, value, reason, text = self._read_run(finished)
        best, baseline = self.state.best, self.state.baseline
        verdict = None
        runs = [value, *self._second_values(job.commit)] if value is not None else []
        if reason:
            status = "crash"
        elif best is None:
            status = "keep"  # the baseline: the first measurement is the best so far
        else:
            exp = self.state.get(n)
            verdict = self.policy.decide(sum(runs) / len(runs), self.reference_value(best),
                                         self.noise, lines_delta(exp.diff if exp else ""),
                                         best_runs=len(self.values_of(best.commit)),
                                         runs=len(runs))
            status = verdict.status
        memory = summary.get("peak_vram_mb")
        bar = self.reference_value(best) if best is not None and value is not None else None
        result = dict(
            n=n, commit=job.commit, status=status, metric=value, worker=job.worker,
            confidence=verdict.confidence if verdict else None,
            verdict=verdict.why if verdict else "",
            threshold=verdict.threshold if verdict else None,
            bar=bar, bar_runs=len(self.values_of(best.commit)) if bar is not None else 0,
            runs=len(runs),
            memory_gb=round(memory / 1024, 1) if isinstance(memory, float) else 0.0,
            summary=summary, seconds=round(finished.result.seconds, 1), reason=reason,
            delta_best=None if bar is None else sum(runs) / len(runs) - bar,
            delta_baseline=None if value is None or baseline is None
            else value - baseline.metric,
            data_fingerprint=find_value(text, "data_fingerprint"),
            sandboxed=bool(job.sandbox), ended=round(finished.ended, 3),
        )
        looked = any(e["event"] == "second_look" and e.get("n") == n for e in self.events)
        if verdict is not None and not looked and not self.stopping \
                and self.policy.second_look_due(verdict, self.config.judge.second_look):
            self._second_look(finished, verdict, result)
            return
        self._record("result", **result)
        exp = self.state.get(n)
        if self._is_baseline(n):
            self._record_noise()
        if status == "keep":
            self._move_branch(History.branch_for(self.tag), exp.commit)
        else:
            self._move_branch(self._worker_branch(job.worker), self.best_commit())
        self._outcome(exp)

    def _second_look(self, finished: Finished, verdict: Verdict, result: dict) -> None:
        """A near-miss close to its bar runs once more before it is judged: the mean of two
        runs meets a lower bar. Its one-run result is journaled with the look, so a session
        killed meanwhile still records it."""
        commit = finished.job.commit
        self.second_looks[commit] = finished
        m = self._queue_measurement(commit, "second-look")
        share = verdict.gain / verdict.threshold
        self._record("second_look", n=finished.job.n, k=m.k, commit=commit, result=result,
                     why=f"a near-miss at {share:.0%} of the bar ({verdict.gain:.6f} of "
                         f"{verdict.threshold:.6f}): one more run, then judged on the mean of "
                         "both")

    def _second_values(self, commit: str) -> list[float]:
        """The second-look runs of a commit that measured something."""
        return [e["metric"] for e in self.events if e["event"] == "measure"
                and e.get("purpose") == "second-look" and e.get("commit") == commit
                and e.get("metric") is not None]

    def _judge_stopped(self, finished: Finished, decision: StopDecision) -> None:
        """A run stopped early: a discard, with the reason (results.tsv keeps its format)."""
        job = finished.job
        self._record("result", n=job.n, commit=job.commit, status="discard", metric=None,
                     worker=job.worker, memory_gb=0.0, summary={},
                     seconds=round(finished.result.seconds, 1), reason=decision.why,
                     verdict=decision.why, early_stop=decision.to_dict(), delta_best=None,
                     delta_baseline=None, sandboxed=bool(job.sandbox))
        self._move_branch(self._worker_branch(job.worker), self.best_commit())
        self._outcome(self.state.get(job.n))

    def _outcome(self, exp: Experiment) -> None:
        """A judged experiment: its row, experiments.md, what follows from it."""
        append_result(self.workspace / RESULTS_NAME, self.state.metric, exp)
        self._record("row", n=exp.n)  # written once: from now on the row is the human's
        self._render_experiments()
        stopped = exp.reason.startswith((STOPPED, "ended with the session", "interrupted"))
        if exp.status == "crash" and stopped:
            return  # the idea did not fail: someone stopped it
        if exp.status == "crash":
            if self._is_baseline(exp.n) and self.state.baseline is None:
                if exp.reason.startswith(WORKER_LOST):  # the machine failed, not the setup
                    self._offer_baseline()
                    return
                self._end(f"the baseline run crashed ({exp.reason}); fix the setup and run "
                          f"again (log: {exp.log})", EXIT_FAILED)
                return
            self._crash_streak += 1
            if self._crash_streak >= MAX_CRASH_STREAK:
                self._end(f"{self._crash_streak} experiments in a row crashed; last: "
                          f"{exp.reason}", EXIT_FAILED)
                return
            self.to_repair.append(exp)
        else:
            self._crash_streak = 0
        if exp.status == "keep" and exp is not self.state.baseline and self.noise is not None:
            # A kept result is the best of many draws, so it is luckier than its commit
            # (the winner's curse); re-runs make the bar the next idea must clear honest.
            for _ in range(self.config.judge.keep_reruns):
                self._queue_measurement(exp.commit, "keep")

    def _measured(self, m: Measurement, finished: Finished) -> None:
        summary, value, reason, _ = self._read_run(finished)
        self._record("measure", k=m.k, commit=m.commit, purpose=m.purpose, metric=value,
                     reason=reason, seconds=round(finished.result.seconds, 1),
                     worker=finished.job.worker, log=self._rel(finished.job.log_path),
                     ended=round(finished.ended, 3))
        if m.purpose == "noise":
            self._record_noise(m.commit)
        if m.purpose == "second-look" and m.commit in self.second_looks:
            self.held.append(self.second_looks.pop(m.commit))  # judged once its bar is in
        self._flag_keeps()

    def _flag_keeps(self) -> None:
        """Keeps judged under an older, smaller estimate of the noise that today's floor no
        longer backs are flagged for `cockpit confirm` (once each)."""
        floor = self.noise
        if floor is None:
            return
        for exp in self.state.experiments:
            if exp.status != "keep" or exp.flagged or exp.threshold is None \
                    or self._is_baseline(exp.n):
                continue
            gain = gain_of(exp.delta_best, self.state.direction)
            if gain is None or not self.policy.needs_confirm(gain, exp.threshold, floor,
                                                             max(1, exp.bar_runs), exp.runs):
                continue
            now = self.policy.threshold(floor, max(1, exp.bar_runs), exp.runs)
            self._record("flagged", n=exp.n, why=(
                f"kept with a gain of {gain:.6f} over a bar of {exp.threshold:.6f}; the noise "
                f"floor measured since ({floor.describe().removeprefix('noise floor: ')}) asks "
                f"{now:.6f}: check it with `cockpit confirm`"))
            self._render_experiments()

    def _render_experiments(self) -> None:
        """experiments.md, re-rendered; a file of the human's put in its place meanwhile is
        left alone, and said once."""
        if not write_experiments_md(self.workspace / REPORT_NAME, self.state) \
                and not self._not_ours_said:
            self._not_ours_said = True
            self._record("not_ours", path=REPORT_NAME, why=f"{REPORT_NAME} is yours now (no "
                         "mark of cockpit's): cockpit stopped writing it; the journal keeps "
                         "everything")

    def _record_noise(self, commit: str | None = None) -> None:
        """Once a commit's noise runs are all in (the baseline's, at the start of a session,
        or the best's for `cockpit noise`): its spread, and the floor it makes."""
        commit = commit or (self.state.baseline.commit if self.state.baseline else None)
        if commit is None or any(e["event"] == "noise" and e.get("commit") == commit
                                 and e.get("at") == self._noise_round(commit)
                                 for e in self.events) \
                or any(m.purpose == "noise" and m.commit == commit
                       for m in self._queued_or_running()):
            return
        values = self.values_of(commit)
        if len(values) > 1:
            self._record("noise", commit=commit, **Noise(values).to_dict(),
                         at=self._noise_round(commit),
                         floor=NoiseFloor.from_events(self.events).describe())

    def _noise_round(self, commit: str) -> int:
        """How many noise re-runs of a commit are in: a new round records anew."""
        return sum(e["event"] == "measure" and e.get("purpose") == "noise"
                   and e.get("commit") == commit for e in self.events)

    def _queued_or_running(self) -> list[Measurement]:
        return self.measurements + [s.measurement for s in self.slots if s.measurement]

    def _queue_measurement(self, commit: str, purpose: str) -> Measurement:
        m = Measurement(self._next_k, commit, purpose)
        self._next_k += 1
        self.measurements.append(m)
        return m

    @property
    def noise(self) -> NoiseFloor | None:
        """The session's noise floor, pooled from every commit run more than once (None
        until the baseline's noise runs are in)."""
        if not any(e["event"] == "noise" for e in self.events):
            return None
        return NoiseFloor.from_events(self.events)

    @property
    def policy(self) -> KeepPolicy:
        judge = self.config.judge
        return KeepPolicy(self.config.metric.direction, judge.min_delta, judge.noise_multiple)

    def values_of(self, commit: str) -> list[float]:
        """Every measured value of a commit: its experiments' and its re-runs'."""
        values = [e.metric for e in self.state.experiments
                  if e.commit == commit and e.metric is not None and e.status in ("keep", "discard")]
        values += [e["metric"] for e in self.events if e["event"] == "measure"
                   and e.get("commit") == commit and e.get("metric") is not None]
        return values

    def reference_value(self, exp: Experiment) -> float:
        """What a commit scores: the mean of every run of it, so one lucky run of the best
        does not set the bar."""
        values = self.values_of(exp.commit) or [exp.metric]
        return sum(values) / len(values)

    # -- the session's start and end -----------------------------------------------------
    def open(self) -> None:
        """Start or resume the session: git, the journal, recovery of a killed run."""
        self.history = History(self.workspace)
        self.history.on_planted = self._planted_midway
        if not self.history.has_commits():
            raise SessionError(f"{self.workspace} has no commits yet: commit your files first")
        sandboxing.check_footguns(self.config, self.workspace)
        try:  # before anything is recorded: cockpit never writes over a file of the human's
            refuse_if_not_ours(self.workspace / REPORT_NAME, LEGACY_EXPERIMENTS,
                               " (cockpit writes its record of the sessions there)")
        except RecordsError as exc:
            raise SessionError(str(exc)) from None
        self.history.ignore_locally([f"{STATE_DIR}/", RESULTS_NAME, REPORT_NAME, "run.log",
                                     PLOT_NAME, MORNING_REPORT])
        cleared = self.history.clear_stale_locks()
        self.events = self.journal.read()
        damaged = self.journal.damaged
        self.state = SessionState.from_events(self.events)
        self._next_n = self.state.next_n
        branch = History.branch_for(self.tag)
        checked_out = self.history.current_branch() or ""
        if checked_out == branch or checked_out.startswith(f"{branch}-gpu"):
            raise SessionError(f"your checkout is on {checked_out}, a branch of session "
                               f"{self.tag}: check out another branch there (experiments run in "
                               "cockpit's own worktrees)")
        from cockpit.workspace.worktrees import Worktrees

        self.trees = Worktrees(self.history, self.dir / "worktrees",
                               getattr(self.config.experiment, "share", "auto"))
        if self.events:
            self._resume(branch)
        else:
            taken = [name.removeprefix("refs/heads/") for name in self.history.branch_refs()
                     if re.fullmatch(rf"refs/heads/{re.escape(branch)}(-gpu\d+)?", name)]
            if taken:
                raise SessionError(f"branch {taken[0]} already exists and has no cockpit "
                                   "journal: pick another --tag")
            base = self.history.head()
            self._move_branch(branch, base)
            self._record("session", tag=self.tag, branch=branch, base=base,
                         metric=self.config.metric.name,
                         direction=self.config.metric.direction,
                         agent=self.agent.name, config=self.config.to_dict())
        if cleared:
            self._record("locks_cleared", paths=cleared)
        if damaged:  # said once per start; the lines stay as they are in the file
            self._record("journal_damaged", lines=len(damaged), first=damaged[:3])
        self._notes = [{"id": e.get("id", i), "text": e["text"]} for i, e in enumerate(
            e for e in self.events if e["event"] == "note")]
        dropped = {e.get("id") for e in self.events if e["event"] == "note_dropped"}
        self._notes = [note for note in self._notes if note["id"] not in dropped]
        checks.check_parses(self.history, self.best_commit(), self.editable)
        self.sandbox = sandboxing.sandboxing(self.config)
        if not self.sandbox.on and not any(e["event"] == "sandbox_off"
                                           and e.get("why") == self.sandbox.why
                                           for e in self.events[-50:]):
            self._record("sandbox_off", why=self.sandbox.why)
        self.data_dir = data_dir_of(self.config, self.workspace)
        self._next_n = self.state.next_n
        legacy = sum(e["event"] == "measure" and "k" not in e for e in self.events)
        self._next_k = 1 + max([legacy] + [e.get("k") or 0 for e in self.events
                                           if e["event"] in ("measure_start", "measure")])

    def _resume(self, branch: str) -> None:
        """Every run a killed cockpit left behind ends as a crash (its processes killed);
        proposals it had not run are offered again; re-runs the bar still needs are queued."""
        if not self.history.branch_exists(branch):
            raise SessionError(f"session {self.tag}: its branch {branch} is gone; start a new "
                               "--tag")
        self._kill_leftovers()
        looks = {e["n"]: e["result"] for e in self.events if e["event"] == "second_look"}
        for exp in self.state.running:
            if exp.n in looks:  # measured once, its second look never came: judged on one run
                self._record("result", **looks[exp.n])
                continue
            self._record("result", n=exp.n, commit=exp.commit, status="crash", metric=None,
                         memory_gb=0.0, summary={}, seconds=0.0, reason=INTERRUPTED,
                         delta_best=None, delta_baseline=None, worker=exp.worker)
        for exp in self.state.pending:
            self._requeue(exp)
        self._settle_branches()
        marks = {e["n"] for e in self.events if e["event"] == "row"}
        for n in reconcile_results(self.workspace / RESULTS_NAME, self.state,
                                   marks if marks else None):
            self._record("row", n=n)
        self._render_experiments()
        self._record("session", tag=self.tag, branch=branch, base=self.state.base,
                     resumed=True, agent=self.agent.name, config=self.config.to_dict())

    def _requeue(self, exp: Experiment) -> None:
        """A proposal the last session never ran: offered again (to the human, if asked)."""
        try:
            source = self.history.git("cat-file", "blob", exp.source_blob) \
                if exp.source_blob else None
        except HistoryError:
            source = None
        if source is None or not exp.base:
            self._record("result", n=exp.n, status="rejected", metric=None,
                         reason="cancelled: the session stopped before it ran")
            return
        proposal = Proposal(exp.description, exp.hypothesis, source, params=exp.params,
                            move=exp.move, repair_of=exp.repair_of)
        ticket = Ticket(n=exp.n, base=exp.base, proposal=proposal, diff=exp.diff, made=exp.made)
        self.awaiting[exp.n] = ticket

    def _kill_leftovers(self) -> None:
        """Every process of a run a killed cockpit left behind is killed: its group, even
        when the group's leader already exited, and anything carrying its run's marker."""
        run_ids = {}
        for e in self.events:
            if e["event"] == "run_start":
                run_ids[("n", e.get("n"))] = e.get("run_id")
            elif e["event"] in ("measure_start", "prepare_start"):
                run_ids[("k", e.get("k"))] = e.get("run_id")
        for e in self.events:
            if e["event"] not in ("run_pid", "measure_pid", "prepare_pid") or not e.get("pid"):
                continue
            key = ("n", e.get("n")) if e["event"] == "run_pid" else ("k", e.get("k"))
            run_id = run_ids.get(key)
            if run_id and kill_leftovers(run_id, e["pid"]):
                self._record("leftover_killed", pid=e["pid"], n=e.get("n"), k=e.get("k"))

    # -- the session's branches: where cockpit left them, or the human's commit on them ---
    def _move_branch(self, name: str, sha: str) -> None:
        """Move one of the session's branches, only from where cockpit left it: a commit the
        human made on it meanwhile is kept and taken up (or the session pauses, naming it),
        never reset away."""
        try:  # a branch the session never had must not exist yet (a -gpu<k> of the human's)
            self.history.set_branch(name, sha, expected=self._branch_at.get(name, NO_COMMIT))
        except BranchMoved as moved:
            if moved.now is not None:
                why = self._take_up(name, moved.now)
                if why:  # kept under its ref; a human decides (a headless session ends)
                    self._pause(why, "branch")
            self.history.set_branch(name, sha)
        self._branch_at[name] = sha

    def _settle_branches(self) -> None:
        """A resumed session's branches go back to its best: a run cut short left one on its
        commit. A branch on a commit the session did not make holds the human's: taken up as
        an experiment, or refused in one line naming it."""
        best = self.best_commit()
        if self.history.rev(best) is None:
            raise SessionError(f"session {self.tag}'s best, {short(best)}, is not a commit of "
                               "this repository (its journal was edited, or its history "
                               "rewritten): start a new --tag")
        ours = {e.commit for e in self.state.experiments if e.commit} | {self.state.base}
        session = History.branch_for(self.tag)
        for name, ref_sha in self.history.branch_refs().items():
            name = name.removeprefix("refs/heads/")
            if name != session and not re.fullmatch(re.escape(session) + r"-gpu\d+", name):
                continue
            if ref_sha not in ours and ref_sha != best:
                why = self._take_up(name, ref_sha)
                if why:
                    raise SessionError(why)
            if ref_sha != best:
                self.history.set_branch(name, best)
            self._branch_at[name] = best

    def _take_up(self, branch: str, head: str) -> str:
        """The human committed `head` on a session branch: kept under refs/cockpit/<tag>/
        yours/<sha> and offered as an experiment when it builds on the best and changes only
        the editable file; else why it cannot be, in one line ("" when taken up)."""
        best, editable = self.best_commit(), self.editable
        self.history.set_ref(f"{REF_PREFIX}{self.tag}/yours/{head}", head)
        subject = self.history.subject(head)
        named = (f"{branch} has {short(head)} (\"{subject}\"), a commit session {self.tag} "
                 "did not make")
        way_out = (f"keep it on a branch of yours (`git branch my-work {short(head)}`), put "
                   f"the session's back (`git branch -f {branch} {short(best)}`) and run again")
        if not self.history.is_ancestor(best, head):
            return f"{named} and not on its best ({short(best)}): {way_out}"
        others = [f for f in self.history.changed_files(best, head) if f != editable]
        if others:
            return f"{named} that changes {', '.join(others[:3])} besides {editable}: {way_out}"
        source = self.history.file_at(head, editable)
        ticket = Ticket(n=self._take_n(), base=best, made=head, approved=True)
        self._offer(ticket, Proposal(f"your commit {short(head)}: {subject}", "a change you "
                                     f"committed on {branch}", source),
                    self.history.file_at(best, editable))
        return ""

    def _offer_baseline(self) -> None:
        ticket = Ticket(n=self._take_n(), base=self.state.base)
        source = self.history.file_at(self.state.base, self.editable)
        self._offer(ticket, Proposal("baseline", "the unmodified starting point, to measure "
                                     "against", source), source, baseline=True)

    def _plan_start(self) -> None:
        """The baseline first (with its noise re-runs beside it), and the re-runs a killed
        session still owed its bar."""
        runs = self.config.judge.baseline_runs
        if self.state.baseline is None:
            if not any(t.proposal and t.proposal.description == "baseline"
                       for t in list(self.awaiting.values()) + self.ready):
                self._offer_baseline()
            for _ in range(max(0, runs - 1)):
                self._queue_measurement(self.state.base, "noise")
            return
        base = self.state.baseline
        if self.noise is None and runs > 1:
            missing = runs - len(self.values_of(base.commit))
            for _ in range(max(0, missing)):
                self._queue_measurement(base.commit, "noise")
            self._record_noise()
        best = self.state.best
        if best is not None and best is not base and self.noise is not None:
            owed = 1 + self.config.judge.keep_reruns - len(self.values_of(best.commit))
            for _ in range(max(0, owed)):
                self._queue_measurement(best.commit, "keep")

    def close(self) -> None:
        if self.ending is None:
            self.ending = Ending(self.stopping or "stopped")
        if self.pool is not None:
            self.pool.stop()
            try:
                self._drain_after_stop()
            finally:
                self.pool.close()
        if self.trees is not None:
            try:
                self.trees.remove_all()
            except (HistoryError, OSError):
                pass
        self._publish_live()

    def _drain_after_stop(self) -> None:
        """The session ends (a stop, an error): every run in flight ends and is recorded.
        It waits for the pool's own jobs, not the slots: a launch that failed half-way (the
        loop died) has no run to wait for."""
        deadline = time.monotonic() + 60
        while self._busy() and time.monotonic() < deadline:
            try:
                item = self.inbox.get(timeout=TICK)
            except queue.Empty:
                if not self.pool.running:
                    break  # every Finished is in the inbox before the pool says so
                continue
            if isinstance(item, Command):
                item.reply.put({"ok": False, "message": "the session is ending"})
                continue
            try:
                self._handle(item)
            except CockpitError:
                continue
            except Exception:  # the loop already failed: record what can be, say the rest
                print(f"cockpit: while ending:\n{traceback.format_exc()}", file=sys.stderr,
                      flush=True)
        # Their bar or their second run never came: judged on what there is.
        for finished in [*self.held, *self.second_looks.values()]:
            self._judge(finished)
        self.held.clear()
        self.second_looks.clear()

    def _end(self, why: str, code: int) -> None:
        self.ending = Ending(why, code)
        self.stopping = why
        if self.pool is not None and self._busy():
            self._stop_cause = why
            self.pool.stop()

    # -- commands --------------------------------------------------------------------------
    def _cmd_status(self) -> dict:
        state = self.state
        best, base = state.best, state.baseline
        noise = self.noise
        return {"message": "running", "live": self.live(), "status": {
            "tag": self.tag, "branch": state.branch, "metric": state.metric,
            "direction": state.direction, "experiments": len(state.ran),
            "kept": sum(e.status == "keep" for e in state.ran),
            "crashed": sum(e.status == "crash" for e in state.ran),
            "best": best.metric if best else None, "best_n": best.n if best else None,
            "baseline": base.metric if base else None,
            "noise": noise.std if noise else None,
            "noise_runs": noise.runs if noise else 0,
            "budget": self.config.experiment.time_budget, "events": len(self.events)}}

    def _cmd_pause(self) -> str:
        if self.paused:
            raise CommandRefused("already paused")
        self._pause("paused by the human", "human")
        return "paused: no new run starts; runs in flight finish"

    def _cmd_resume(self) -> str:
        if not self.paused:
            raise CommandRefused("not paused")
        if self.pause_kind == "cost":
            self._cost_waived = True  # the human chose to spend past the limit
        self.paused, self.pause_kind, self.pause_reason = False, "", ""
        self._record("resumed")
        return "resumed"

    def _cmd_stop(self, now: bool = False, runs: list[int] | None = None, by: str = "") -> str:
        """Stop the session: after the runs in flight, or now (ending the experiments named,
        or all, and every re-run: a re-run only serves experiments the session will not
        run any more)."""
        self.stopping = "stopped" + (" by the human" if by != "signal" else "")
        self._record("stopping", now=now, runs=runs)
        if not now:
            busy = [f"#{s.job.n}" for s in self.slots if s.job and s.job.kind == "experiment"]
            return "stopping after " + (", ".join(busy) if busy else "nothing: no run in flight")
        ended = []
        self._stop_cause = "human"
        for slot in self.slots:
            job = slot.job
            if job is None or (runs is not None and job.kind == "experiment"
                               and job.n not in runs):
                continue
            self.pool.stop(slot.worker)
            ended.append(f"#{job.n}" if job.kind == "experiment" else f"re-run {job.n}")
        return "stopping now: " + (", ".join(ended) + " ended" if ended else "no run in flight")

    def _cmd_stop_run(self, n: int) -> str:
        """End experiment n's run now (recorded as stopped by the human); the loop pauses."""
        slot = next((s for s in self.slots if s.job and s.job.kind == "experiment"
                     and s.job.n == n), None)
        if slot is None:
            exp = self.state.get(n)
            if exp is None:
                raise CommandRefused(f"there is no experiment #{n}")
            raise CommandRefused(f"#{n} is not running (it {_whereabouts(exp)})")
        self.pool.stop(slot.worker)
        if not self.paused:
            self._pause("paused by the human after stopping a run", "human")
        return f"#{n} stopped (recorded as a crash); the loop is paused: resume when ready"

    def _cmd_steer(self, text: str) -> str:
        text = " ".join(str(text).split())
        if not text:
            raise CommandRefused("an empty note steers nothing")
        note_id = 1 + max((note["id"] for note in self._notes), default=0)
        self._record("note", id=note_id, text=text)
        self._notes.append({"id": note_id, "text": text})
        return f"note {note_id} added for the next proposals"

    def _cmd_drop_note(self, id: int) -> str:
        note = next((x for x in self._notes if x["id"] == id), None)
        if note is None:
            raise CommandRefused(f"there is no note {id}")
        self._notes.remove(note)
        self._record("note_dropped", id=id)
        return f"note {id} dropped"

    def _cmd_approve(self, n: int | None = None, source: str | None = None) -> str:
        ticket = self._awaiting_ticket(n)
        if source is not None and source != ticket.proposal.source:
            base_source = self.history.file_at(ticket.base, self.editable)
            try:
                validate_source(source, base_source, self.editable)
            except EditRefused as exc:
                raise CommandRefused(f"#{ticket.n} as edited is refused: {exc}") from None
            ticket.proposal.source = source
            ticket.proposal.params = {}
            ticket.edited = True
            ticket.diff = unified_diff(base_source, source, self.editable)
            self._record("edited", n=ticket.n, diff=ticket.diff, source_sha=_sha(source))
        del self.awaiting[ticket.n]
        ticket.approved = True
        self.ready.append(ticket)
        self._record("approved", n=ticket.n, edited=ticket.edited)
        return f"#{ticket.n} approved" + (" as edited" if ticket.edited else "")

    def _cmd_reject(self, n: int | None = None, reason: str = "") -> str:
        ticket = self._awaiting_ticket(n)
        del self.awaiting[ticket.n]
        self._record("result", n=ticket.n, status="rejected", metric=None,
                     reason=f"rejected by the human: {reason.strip() or 'no reason given'}")
        self._render_experiments()
        return f"#{ticket.n} rejected"

    def _cmd_auto_approve(self, on: bool) -> str:
        self.auto_approve = bool(on)
        self._record("auto_approve", on=self.auto_approve)
        return "auto-approve " + ("on" if on else "off: each proposal waits for a human")

    def _cmd_hold(self, client: str, on: bool) -> str:
        """A client shows a decision (a dialog): auto-approve waits until it is closed."""
        if on:
            self._holds[client] = time.monotonic() + HOLD_SECONDS
        else:
            self._holds.pop(client, None)
        return "held" if on else "released"

    def _cmd_notified(self, service: str, ok: bool, error: str = "") -> str:
        """The notifier's word on a service (named without its tokens): failing, journaled
        once until it works again, or working again."""
        if ok and self._notify_failing.pop(service, None) is not None:
            self._record("notify_recovered", service=service)
        elif not ok and service not in self._notify_failing:
            self._notify_failing[service] = error
            self._record("notify_failed", service=service, error=error)
        return "noted"

    def _cmd_measure(self, commits: list[str], runs: int, purpose: str = "confirm") -> str:
        for commit in commits:
            for _ in range(runs):
                self._queue_measurement(commit, purpose)
        return f"{runs} re-run{'s' * (runs != 1)} of {len(commits)} commit" \
               f"{'s' * (len(commits) != 1)} queued"

    def _awaiting_ticket(self, n: int | None) -> Ticket:
        if n is None:
            if not self.awaiting:
                raise CommandRefused("no proposal awaits approval")
            return self.awaiting[min(self.awaiting)]
        if n in self.awaiting:
            return self.awaiting[n]
        exp = self.state.get(n)
        if exp is None and n in self.proposing:
            raise CommandRefused(f"#{n} is still being proposed")
        if exp is None:
            raise CommandRefused(f"there is no proposal #{n}")
        raise CommandRefused(f"#{n} does not await approval (it {_whereabouts(exp)})")

    def _lapse_holds(self) -> None:
        now = time.monotonic()
        for client in [c for c, until in self._holds.items() if until < now]:
            del self._holds[client]

    def _pause(self, reason: str, kind: str) -> None:
        self._record("paused", reason=reason, kind=kind)
        if kind != "human" and not self.wait_when_paused:
            # no one will come to resume it: end once the runs in flight are recorded
            self.ending = Ending(f"paused: {reason}", EXIT_PAUSED)
            self.stopping = self.ending.why
            return
        self.paused, self.pause_kind, self.pause_reason = True, kind, reason

    def _cost_limit_reached(self) -> str:
        limit = self.config.agent.max_cost_usd
        spent = self.cost_usd
        if limit > 0 and spent >= limit and not self._cost_waived:
            return f"the model cost ${spent:.4f} reached max_cost_usd ${limit:.2f}"
        return ""

    @property
    def cost_usd(self) -> float:
        """The session's model cost so far, summed from the journal's attempt events."""
        return sum(e.get("cost_usd") or 0.0 for e in self.events if e.get("event") == "attempt")

    # -- what clients see ----------------------------------------------------------------
    def live(self) -> dict:
        """The state no journal event holds: what runs where, what waits, pauses, holds."""
        now = time.monotonic()
        running = []
        for slot in self.slots:
            if slot.job is None:
                continue
            job = slot.job
            progress = self._progress.get(slot.worker)
            running.append({"worker": slot.worker, "kind": job.kind, "n": job.n,
                            "commit": job.commit, "log": self._rel(job.log_path),
                            "purpose": slot.measurement.purpose if slot.measurement else "",
                            "elapsed": round(now - slot.started, 1),
                            "percent": progress.percent if progress else None,
                            "loss": progress.loss if progress else None})
        return {"tag": self.tag, "workers": len(self.slots), "running": running,
                "awaiting": sorted(self.awaiting), "ready": [t.n for t in self.ready],
                "proposing": sorted(self.proposing), "held": [f.job.n for f in self.held],
                "measurements": len(self.measurements), "paused": self.paused,
                "pause_kind": self.pause_kind, "pause_reason": self.pause_reason,
                "auto_approve": self.auto_approve, "holds": len(self._holds),
                "stopping": self.stopping, "notes": list(self._notes),
                "ended": self.ending.why if self.ending else "",
                "cost_usd": round(self.cost_usd, 6), "agent": self.agent.name,
                "notify_failing": sorted(self._notify_failing)}

    def _publish_live(self) -> None:
        live = self.live()
        comparable = dict(live, running=[dict(r, elapsed=0, percent=0, loss=0)
                                         for r in live["running"]])
        if comparable != self._live_sent:
            self._live_sent = comparable
            self._emit({"type": "live", "live": live})

    def _emit_live_event(self, kind: str, **data) -> None:
        self._emit({"type": "transient", "kind": kind, **data})

    def _emit(self, message: dict) -> None:
        """Hand a message to every observer (the printer, the notifier, the clients' feed).
        An observer that raises is said once on stderr (the session log) and dropped: no
        observer can stop the loop."""
        for observer in list(self.observers):
            try:
                observer(message)
            except Exception:
                self._drop_observer(observer)

    def _drop_observer(self, observer) -> None:
        if observer in self.observers:
            self.observers.remove(observer)
        name = getattr(observer, "__qualname__", type(observer).__name__)
        print(f"cockpit: {name} failed and no longer sees the session (the research goes "
              f"on):\n{traceback.format_exc()}", file=sys.stderr, flush=True)

    def _output(self, job: Job, text: str) -> None:
        """A run's output (called on its worker's thread)."""
        progress = last_progress(text)
        if progress is not None:
            self._progress[job.worker] = progress
            if job.kind == "experiment" and progress.loss is not None:
                self._live_curves.setdefault(job.n, Curve()).add(progress.percent,
                                                                 progress.loss)
        self._emit({"type": "output", "worker": job.worker, "kind": job.kind, "n": job.n,
                    "text": text})

    # -- helpers -----------------------------------------------------------------------
    @property
    def editable(self) -> str:
        return self.config.experiment.editable

    def best_commit(self) -> str:
        best = self.state.best
        return best.commit if best is not None else self.state.base

    def _fingerprint(self) -> str | None:
        """The data fingerprint the session's first measured run reported."""
        return next((e.get("data_fingerprint") for e in self.events if e["event"] == "result"
                     and e.get("data_fingerprint") and e.get("metric") is not None), None)

    def _passthrough(self) -> tuple[str, ...]:
        return tuple(getattr(self.config.experiment, "env", ()) or ())

    def _worker_branch(self, worker: int) -> str:
        return worker_branch(self.tag, worker, len(self.slots) or 1)

    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.workspace))

    def _record(self, event: str, **fields) -> dict:
        with self._record_lock:  # events reach observers in journal order, numbered
            record = self.journal.append(event, **fields)
            self.events.append(record)
            self.state.apply(record)
            self._emit({"type": "journal", "start": len(self.events) - 1, "events": [record]})
        return record

    def _preflight(self) -> None:
        """The agent's setup checks (model string, key, CLI on PATH) before anything runs."""
        check = getattr(self.agent, "preflight", None)
        if check is None:
            return
        try:
            check()
        except AgentError as exc:
            raise SessionError(f"{self.agent.name} agent: {exc}") from None

    def _make_pool(self) -> WorkerPool:
        source = self._pool_source
        if source is None:
            from cockpit.runners.factory import make_pool

            return make_pool(self.config)
        return source() if callable(source) else source

    def _planted_midway(self, exc: ConfigTampered) -> None:
        """.git/config gained keys that run commands (a run with the sandbox off planted them;
        found before one of cockpit's git commands, or as a run ended): it is put back, the
        changed copy kept, and every run in flight is a suspect, a crash when it finishes."""
        jobs = [slot.job for slot in self.slots if slot.job is not None]
        self._put_config_back(exc, jobs)
        for job in jobs:
            others = [self._who(other) for other in jobs if other is not job]
            beside = f" (or {', '.join(others)}, running beside it)" if others else ""
            self._suspects[job.run_id] = (f"the run{beside} modified .git/config "
                                          f"({', '.join(exc.keys)}); restored")

    def _put_config_back(self, exc: ConfigTampered, jobs: list[Job]) -> None:
        copy = self.history.restore_config(exc, self.dir / "quarantine")
        who = ", ".join(self._who(job) for job in jobs) or "the agent"
        if len(jobs) > 1:
            who = f"one of {who}"
        self._record("tampered", path=".git/config", keys=exc.keys, kept=self._rel(copy),
                     by=who)

    @staticmethod
    def _who(job: Job) -> str:
        return f"#{job.n}" if job.kind == "experiment" else f"re-run {job.n}"

    def _crash_for_tampering(self, job: Job, measurement: Measurement | None,
                             reason: str) -> None:
        if measurement is not None:
            self._record("measure", k=measurement.k, commit=measurement.commit,
                         purpose=measurement.purpose, metric=None, reason=reason,
                         worker=job.worker, log=self._rel(job.log_path))
        elif job.kind == "experiment" and self.state.get(job.n) \
                and not self.state.get(job.n).finished:
            self._record("result", n=job.n, commit=job.commit, status="crash", metric=None,
                         memory_gb=0.0, summary={}, seconds=0.0, worker=job.worker,
                         reason=reason, delta_best=None, delta_baseline=None)
            self._move_branch(self._worker_branch(job.worker), self.best_commit())
            self._outcome(self.state.get(job.n))

    def _context(self, n: int, source: str) -> AgentContext:
        program_path = self.workspace / "program.md"  # re-read: edits steer the next idea
        program = program_path.read_text(encoding="utf-8") if program_path.exists() else ""
        if _sha(program) != self._program_sha:
            self._program_sha = _sha(program)
            last = next((e for e in reversed(self.events) if e["event"] == "program"), None)
            if last is None or last.get("sha") != self._program_sha:
                self._record("program", sha=self._program_sha, text=program)
        if self._machine is None:
            from cockpit.runners.hardware import describe_machine

            self._machine = describe_machine()
        scratch = self.dir / "agent"
        return AgentContext(
            program=program, source=source, history=list(self.state.experiments),
            metric=self.state.metric, direction=self.state.direction,
            time_budget=self.config.experiment.time_budget,
            notes=[note["text"] for note in self._notes], editable=self.editable,
            hardware=self._machine, scratch=scratch, n=n, prior=self._prior(),
            workspace=self._agent_tree() if getattr(self.agent, "needs_worktree", False)
            else None,
            record=lambda event, **fields: self._record(event, n=n, **fields))

    def _prior(self) -> list[Experiment]:
        """What earlier sessions in this workspace measured on the same data (the session's
        fingerprint, once its first run printed one): read once per session."""
        fingerprint = self._fingerprint()
        if fingerprint is None:
            return []
        if self._prior_cache is None:
            self._prior_cache = earlier_sessions(self.workspace, self.tag)
        return [e for e in self._prior_cache if e.data_fingerprint == fingerprint]

    def _agent_tree(self) -> Path:
        """Where a command agent works: a worktree of its own at the best commit."""
        return self.trees.checkout("agent", self.best_commit())

    def _crash_to_repair(self) -> Experiment | None:
        """The oldest crash whose idea has repairs left (None when the agent cannot repair)."""
        if not hasattr(self.agent, "repair"):
            self.to_repair.clear()
            return None
        while self.to_repair:
            last = self.to_repair.pop(0)
            root = last.repair_of or last.n
            if any(e.get("event") == "abandoned" and e.get("n") == root for e in self.events):
                continue
            repairs = sum(e.repair_of == root for e in self.state.experiments)
            if repairs >= self.config.agent.repair_attempts:
                if repairs:
                    self._abandon(root, f"still crashing after {repairs} "
                                        f"fix{'es' * (repairs != 1)}: {last.reason}")
                continue
            self._emit_live_event("repairing", crashed=last.n, of=root, attempt=repairs + 1)
            return last
        return None

    def _abandon(self, root: int, reason: str) -> None:
        if not any(e.get("event") == "abandoned" and e.get("n") == root for e in self.events):
            self._record("abandoned", n=root, reason=reason)

    def _log_tail(self, exp: Experiment) -> str:
        path = self.workspace / exp.log if exp.log else None
        if path is None or not path.exists():
            return exp.reason
        text = read_tail(path)
        lines = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]  # progress: last state
        return "\n".join(lines[-LOG_TAIL_LINES:])

    # -- data preparation ----------------------------------------------------------------
    def _prepare_data(self) -> None:
        """Once per session start: make sure the data exists (fast when it does)."""
        command = self.prepare_command()
        if not command or self.pool.kind == "ray":  # ray: each node prepares its own
            self._data = data_snapshot(self.data_dir)
            return
        tree = self.trees.checkout("w0", self.best_commit())
        log = self.dir / "prepare.log"
        self._emit_live_event("preparing", command=command)
        runner = LocalRunner()
        self._preparing = runner
        run_id = new_run_id()
        self._record("prepare_start", k=0, command=command, run_id=run_id)

        def started(pid: int) -> None:
            self._record("prepare_pid", k=0, pid=pid)

        job = Job(n=0, worker=0, commit="", command=command, cwd=tree, log_path=log,
                  timeout=PREPARE_TIMEOUT, kind="prepare", run_id=run_id)
        result = runner.run(command, cwd=tree, log_path=log, timeout=PREPARE_TIMEOUT,
                            env=training_env(passthrough=self._passthrough()),
                            on_output=lambda text: self._output(job, text), on_start=started,
                            run_id=run_id)
        self._preparing = None
        if result.stopped:
            raise SessionError("stopped while preparing the data")
        if result.returncode == 0:
            self._data = data_snapshot(self.data_dir)
        if result.returncode != 0:
            text = read_tail(log)
            raise SessionError(f"`{command}` failed ({result.error or failure_reason(text)}); "
                               f"see {log}")

    def prepare_command(self) -> str:
        """The configured prepare command; "auto" runs prepare.py the way train runs, if present."""
        command = self.config.experiment.prepare_command
        if command != "auto":
            return command
        if not (self.workspace / "prepare.py").exists():
            return ""
        words = self.config.experiment.train_command.split()
        if self.editable in words:
            return " ".join("prepare.py" if w == self.editable else w for w in words)
        return "python prepare.py"


class CommandRefused(Exception):
    """A client's command that targets something gone or not allowed now (one line)."""


class Abandoned(Exception):
    def __init__(self, root: int, why: str) -> None:
        super().__init__(why)
        self.root, self.why = root, why


def _whereabouts(exp: Experiment) -> str:
    if exp.status is None:
        return "is running" if exp.log else "is waiting for a worker"
    return {"rejected": "was rejected", "crash": "already finished (crash)"}.get(
        exp.status, f"already finished ({exp.status})")
