"""What the loop does with what happens: a judged result (its row, experiments.md, the
branches, a crash streak, repairs, keep re-runs), a re-run's value (the noise floor, a
second look's bar), a failed proposal, a run that broke the rules, the session's end.

The parts decide (the judge, the tamper guard, the proposer); this carries their decisions
out for the loop, the one place that writes results.tsv and experiments.md and moves the
session's branches.
"""
from __future__ import annotations

import sys
import traceback
from typing import TYPE_CHECKING, Any

from cockpit.agents.base import AgentExhausted
from cockpit.domain import causes
from cockpit.domain.diffs import unified_diff
from cockpit.domain.errors import CockpitError
from cockpit.domain.exits import EXIT_FAILED
from cockpit.domain.proposals import Proposal, Ticket
from cockpit.domain.state import Experiment
from cockpit.runners.pool import Finished, Job
from cockpit.session import measuring
from cockpit.session.errors import SessionError
from cockpit.session.launcher import EvaluatorNotReady, prepare_command
from cockpit.session.measuring import SEED_VARIABLE
from cockpit.session.proposer import sha
from cockpit.session.recovery import owed_reruns
from cockpit.session.scheduler import Measurement
from cockpit.session.tamper import Breach, who
from cockpit.workspace.data import data_snapshot
from cockpit.workspace.history import ConfigTampered, HistoryError
from cockpit.workspace.merge import carry_onto
from cockpit.workspace.paths import EXPERIMENTS_NAME, RESULTS_NAME
from cockpit.workspace.records import (
    append_result,
    write_experiments_md,
)

if TYPE_CHECKING:
    from cockpit.session.coordinator import Coordinator

MAX_CRASH_STREAK = 10  # stop instead of burning a night on a broken setup


class Outcomes:
    def __init__(self, session: Coordinator) -> None:
        self.s = session
        self.crash_streak = 0
        self._not_ours_said = False  # experiments.md became the human's: said once

    # -- proposals -------------------------------------------------------------------------
    def journal_proposal(self, ticket: Ticket, proposal: Proposal, base_source: str) -> None:
        s = self.s
        ticket.proposal = proposal
        ticket.diff = unified_diff(base_source, proposal.source, s.editable)
        blob = s.history.write_blob(proposal.source)
        s.recorder.record("proposal", n=ticket.n, description=proposal.description,
                          hypothesis=proposal.hypothesis, diff=ticket.diff,
                          params=proposal.params, move=proposal.move,
                          source_sha=sha(proposal.source), source_blob=blob,
                          repair_of=proposal.repair_of, attempts=proposal.attempts,
                          usage=proposal.usage, base=ticket.base, made=ticket.made,
                          line=ticket.line)

    def proposal_failed(self, error: Exception, line: int = 0) -> None:
        s = self.s
        if isinstance(error, AgentExhausted) and s.lines.ran_dry(line):
            return  # another line, or a new one, goes on: no idle night
        failure = s.proposer.failure(error)
        if failure.planted is not None:
            s.recorder.record("tampered", **s.guard.put_config_back(failure.planted, []))
        if failure.end is not None:
            why, code = failure.end
            s.end(why, code, stop_runs=False)
        if failure.failed:
            s.recorder.record("proposal_failed", reason=failure.failed)
        if failure.pause is not None and not s.control.paused:
            s.pause(*failure.pause)  # once: another worker's proposal may fail the same way

    def offer_baseline(self) -> None:
        s = self.s
        ticket = Ticket(n=s.scheduler.take_n(), base=s.state.base)
        source = s.history.file_at(s.state.base, s.editable)
        s.offer(ticket, Proposal("baseline", "the unmodified starting point, to measure "
                                 "against", source), source, baseline=True)

    def take_up(self, branch: str, head: str) -> str:
        """A commit of the human's on a session branch: offered as an experiment, or why it
        cannot be ("" when it is)."""
        s = self.s
        line = s.lines.line_of_branch(branch)
        yours = s.branches.yours(branch, head, s.lines.best_commit(line), s.scheduler.next_n,
                                 line)
        if yours.ticket is None:
            return yours.refused
        s.scheduler.take_n()
        assert yours.ticket.proposal is not None  # taken up: the commit is its proposal
        s.offer(yours.ticket, yours.ticket.proposal, s.history.file_at(yours.ticket.base,
                                                                        s.editable))
        return ""

    def moved_under_us(self, branch: str, head: str) -> None:
        """A session branch the human committed on while the session runs."""
        why = self.take_up(branch, head)
        if why:  # kept under its ref; a human decides (a headless session ends)
            self.s.pause(why, "branch")

    def commit_of(self, ticket: Ticket, worker: int) -> str | None:
        """The commit an experiment runs: its change on the best (carried onto a best that
        moved since it was made, when it still applies), the base for the baseline, or the
        human's own commit. The worker's branch is moved onto it, and it is kept. The best
        is its line's. None, with its result journaled, when the best it was carried onto
        already has its change (made on an older best while an experiment that made the same
        change ran): its run would re-run the best."""
        s = self.s
        best, proposal = s.lines.best_commit(ticket.line), ticket.proposal
        if ticket.is_baseline and ticket.base == s.state.base:
            commit = ticket.base
        elif ticket.made:  # the human's own commit: run as it is, kept as it is
            commit = ticket.made
        else:
            assert proposal is not None  # neither the baseline nor the human's: a proposal
            source, base = proposal.source, ticket.base
            if base != best:  # the best moved while it waited: carry the change onto it
                carried = carry_onto(proposal.source, s.history.file_at(base, s.editable),
                                     s.history.file_at(best, s.editable))
                if carried is not None:
                    source, base = carried, best
                s.recorder.record("rebase", n=ticket.n, onto=base, was=ticket.base,
                                  clean=carried is not None)
                if carried is not None and carried == s.history.file_at(best, s.editable):
                    s.recorder.record(
                        "result", n=ticket.n, status="rejected", metric=None,
                        cause=causes.ALREADY_IN, reason=(
                            "not run: the best it was carried onto already has its change "
                            "(it would re-run the best)"))
                    self.render_experiments()
                    return None
            commit = s.history.commit_file(base, s.editable, source, self.message_of(ticket))
        s.history.keep_ref(s.tag, ticket.n, commit)
        self.move(s.branches.worker(worker, len(s.slots) or 1, ticket.line), commit)
        s.recorder.record("commit", n=ticket.n, commit=commit)
        return commit

    def message_of(self, ticket: Ticket) -> str:
        """An experiment's commit message: its description as the journal has it (a
        human's edit included)."""
        exp = self.s.state.get(ticket.n)
        assert ticket.proposal is not None  # a change to commit was proposed
        return exp.description if exp is not None else ticket.proposal.description

    def move(self, branch: str, commit: str) -> None:
        self.s.branches.move(branch, commit, self.moved_under_us)

    # -- results ---------------------------------------------------------------------------
    def judge(self, finished: Finished) -> None:
        s = self.s
        job = finished.job
        judgement = s.judge.decide(finished, s.read(finished), s.stopper.decided.get(job.n),
                                   may_look=not s.control.stopping)
        if judgement.second_look:
            m = s.scheduler.queue(job.commit, "second-look")
            s.second_looks[job.commit] = finished
            s.recorder.record("second_look", n=job.n, k=m.k, commit=job.commit,
                              result=judgement.result, why=judgement.second_look)
            return
        self.record_result(judgement.result)

    def record_result(self, result: dict[str, Any]) -> None:
        """Journal a result, then what follows: the noise of the baseline, the branches
        (its line's), a new line when its line has plateaued."""
        s = self.s
        s.recorder.record("result", **result)
        exp = s.state.get(result["n"])
        assert exp is not None  # just folded in; the session is open
        if exp.is_baseline and exp.disturbed and exp.commit and s.state.noise is None \
                and s.config.judge.baseline_runs > 1:
            s.scheduler.queue(exp.commit, "noise")  # in its place in the noise floor
        if exp.is_baseline:
            self.record_noise(s.state.baseline.commit if s.state.baseline else None)
        if exp.status == "keep":
            assert exp.commit is not None  # a keep has its commit
            self.move(s.lines.branch_of(exp.line), exp.commit)
        else:
            self.move(s.branches.worker(exp.worker, len(s.slots) or 1, exp.line),
                      s.lines.best_commit(exp.line))
        self.followed(exp)
        s.lines.after_result(exp)

    def followed(self, exp: Experiment) -> None:
        """A judged experiment: its row, experiments.md, what follows from it."""
        s = self.s
        append_result(s.workspace / RESULTS_NAME, s.state.metric, exp)
        s.recorder.record("row", n=exp.n)  # written once: from now on the row is the human's
        self.render_experiments()
        if exp.status == "crash" and not exp.the_ideas_fault:
            if exp.cause == causes.WORKER_LOST and exp.is_baseline \
                    and s.state.baseline is None:
                self.offer_baseline()  # the machine failed, not the setup
            return  # the idea did not fail: someone stopped it, or its machine went away
        if exp.status == "crash":
            if exp.is_baseline and s.state.baseline is None:
                s.end(f"the baseline run crashed ({exp.reason}); fix the setup and run again "
                      f"(log: {exp.log})", EXIT_FAILED)
                return
            self.crash_streak += 1
            if self.crash_streak >= MAX_CRASH_STREAK:
                s.end(f"{self.crash_streak} experiments in a row crashed; last: {exp.reason}",
                      EXIT_FAILED)
                return
            s.proposer.to_repair.append(exp)
        else:
            self.crash_streak = 0
        if exp.status == "keep" and exp is not s.state.baseline and s.state.noise is not None:
            # A kept result is the best of many draws, so it is luckier than its commit
            # (the winner's curse); re-runs make the bar the next idea must clear honest.
            assert exp.commit is not None  # a keep has its commit
            for _ in range(s.config.judge.keep_reruns):
                s.scheduler.queue(exp.commit, "keep")

    def measured(self, m: Measurement, finished: Finished) -> None:
        s = self.s
        outcome, result = s.read(finished), finished.result
        busy = s.judge.disturbed(result, m.commit) if outcome.value is not None else ""
        s.recorder.record("measure", k=m.k, commit=m.commit, purpose=m.purpose,
                          metric=outcome.value, cause=outcome.cause, reason=outcome.reason,
                          seconds=round(result.seconds, 1),
                          worker=finished.job.worker, log=s._rel(finished.job.log_path),
                          ended=round(finished.ended, 3), measured=outcome.measured,
                          seed=int(finished.job.env[SEED_VARIABLE])
                          if SEED_VARIABLE in finished.job.env else None,
                          disturbed=busy, stalled=result.stalled, others=result.others)
        if busy:  # measured again; what waits for this run waits for that one
            s.scheduler.queue(m.commit, m.purpose)
            return
        if m.purpose == "noise":
            self.record_noise(m.commit)
        if m.purpose == "second-look" and m.commit in s.second_looks:
            s.held.append(s.second_looks.pop(m.commit))  # judged once its bar is in
        for n, why in s.judge.flags():
            s.recorder.record("flagged", n=n, why=why)
            self.render_experiments()

    def record_noise(self, commit: str | None) -> None:
        """Once a commit's noise runs are all in: its spread, and the floor it makes."""
        s = self.s
        measuring = any(m.purpose == "noise" and m.commit == commit
                        for m in s.scheduler.queued_or_running())
        noise = s.judge.noise_due(commit, measuring)
        if noise is not None:
            s.recorder.record("noise", **noise)

    def plan_start(self) -> None:
        """The baseline first (with its noise re-runs beside it), and the re-runs a killed
        session still owed its bar."""
        s = self.s
        runs = s.config.judge.baseline_runs
        if s.state.baseline is None:
            if not any(t.is_baseline for t in [*s.scheduler.awaiting.values(),
                                               *s.scheduler.ready]):
                self.offer_baseline()
            for _ in range(max(0, runs - 1)):
                s.scheduler.queue(s.state.base, "noise")
            return
        for commit, purpose in owed_reruns(s.state, runs, s.config.judge.keep_reruns):
            s.scheduler.queue(commit, purpose)
        for k in s.state.lines:  # each line's bar, as honest as the session's
            for commit, purpose in s.lines.owed(k):
                s.scheduler.queue(commit, purpose)
        if s.state.noise is None and runs > 1:
            self.record_noise(s.state.baseline.commit)

    # -- what runs changed -------------------------------------------------------------------
    def check_config(self) -> None:
        """Before anything else runs git: did a run (or one beside it) plant something?"""
        try:
            self.s.history.check_config()
        except ConfigTampered as exc:
            self.config_planted(exc)

    def config_planted(self, planted: ConfigTampered) -> None:
        """.git/config gained keys that run commands (found before one of cockpit's git
        commands, or as a run ended): put back, every run in flight a suspect."""
        jobs = self.s.scheduler.running_jobs()
        self.s.recorder.record("tampered", **self.s.guard.put_config_back(planted, jobs))

    def check_refs(self, job: Job) -> None:
        s = self.s
        others = [j for j in s.scheduler.running_jobs() if j is not job]
        changed = s.guard.refs_changed(job, others, s.branches.session)
        if changed is not None:
            s.recorder.record("refs_changed", **changed)

    def breach(self, job: Job) -> Breach | None:
        s = self.s
        assert s.pool is not None  # a run ended: all is up
        breach = s.guard.breach(job, s.pool.capabilities.remote)
        if breach is None:
            return None
        if breach.record:
            s.recorder.record("fixed_changed", **breach.record)
        if breach.ends_session:
            s.end(breach.ends_session, EXIT_FAILED)
        return breach

    def crash_for_tampering(self, job: Job, measurement: Measurement | None,
                            reason: str) -> None:
        s = self.s
        if measurement is not None:
            s.recorder.record("measure", k=measurement.k, commit=measurement.commit,
                              purpose=measurement.purpose, metric=None, cause=causes.TAMPERED,
                              reason=reason, worker=job.worker, log=s._rel(job.log_path))
        elif job.kind == "experiment" and (exp := s.state.get(job.n)) is not None \
                and not exp.finished:
            self.record_result({"n": job.n, "commit": job.commit, "status": "crash",
                                "metric": None, "memory_gb": 0.0, "summary": {},
                                "seconds": 0.0, "worker": job.worker,
                                "cause": causes.TAMPERED, "reason": reason})

    # -- the disk, the cost, the data ------------------------------------------------------------
    def pause_for_disk(self, why: str) -> None:
        s = self.s
        if not s.control.paused and not s.control.stopping:
            s.pause(f"{why}: make room on the disk (at least [experiment] min_free_mb = "
                    f"{s.config.experiment.min_free_mb} MB free), then resume", "disk")

    def cost_limit_reached(self, waived: bool) -> str:
        limit = self.s.config.agent.max_cost_usd
        spent = self.s.state.cost_usd
        if limit > 0 and spent >= limit and not waived:
            return f"the model cost ${spent:.4f} reached max_cost_usd ${limit:.2f}"
        return ""

    def decide_measuring(self) -> None:
        """How this session measures its results (once the pool says what it can)."""
        s = self.s
        assert s.pool is not None  # decided once the pool is up
        decided = measuring.decide(s.config, s.history, s.best_commit(), s.pool.capabilities,
                                   s.history.file_at(s.best_commit(), s.editable))
        s.launcher.measuring = decided
        if (s.state.trust, s.state.seeds, s.state.measuring) != (decided.trust, decided.seeds,
                                                                 decided.why):
            s.recorder.record("measuring", trust=decided.trust, seeds=decided.seeds,
                              why=decided.why, evaluator=decided.evaluator)

    def check_evaluator(self) -> None:
        """Before the baseline spends a budget: the evaluator answers `--check` in one line
        (the data and its validation split are there), or the session ends saying why."""
        s = self.s
        decided = s.launcher.measuring
        if not decided.measures or s.state.baseline is not None:
            return
        problem = s.launcher.check_evaluator(s.best_commit())
        if problem:
            raise EvaluatorNotReady(
                f"the evaluator is not ready: {problem}; fix {decided.evaluator} (it is yours, "
                "like prepare.py) or set [judge] trust = \"reported\"")

    def prepare_data(self) -> None:
        """Once per session start: make sure the data exists (fast when it does)."""
        s = self.s
        command = prepare_command(s.config, s.workspace)
        assert s.pool is not None  # the session is open
        if command and not s.pool.capabilities.remote:  # a remote node prepares its own

            def journal_start(cmd: str, run_id: str) -> None:
                s.recorder.record("prepare_start", k=0, command=cmd, run_id=run_id)

            def journal_pid(pid: int) -> None:
                s.recorder.record("prepare_pid", k=0, pid=pid)

            s.recorder.emit({"type": "transient", "kind": "preparing", "command": command})
            s.launcher.prepare(
                s.dir / "prepare.log", s.best_commit(), s.output, started=journal_start,
                pid=journal_pid,
                register=lambda runner: setattr(s, "_preparing", runner))
            self.check_evaluator()
        s.guard.data = data_snapshot(s.guard.data_dir)

    # -- the session's end -----------------------------------------------------------------------
    def failed(self, exc: Exception) -> None:
        """The loop raised: a disk too full for cockpit's own writes (said in one line), or
        a bug (raised again: its traceback goes to stderr, the session log)."""
        s = self.s
        full = s.guard.disk_floor().short() if s.opened else ""
        if full:
            s.end(f"the disk is full ({full}; {type(exc).__name__}: {exc}): make room, then "
                  "`cockpit run` resumes (nothing recorded is lost)", EXIT_FAILED, False)
            return
        if isinstance(exc, SessionError):  # the setup, said in one line: no traceback
            s.end(str(exc), EXIT_FAILED, stop_runs=False)
            return
        s.end(f"cockpit failed: {type(exc).__name__}: {exc} (the traceback is on its stderr, "
              "the session log)", EXIT_FAILED, stop_runs=False)
        raise exc

    def drain_after_stop(self) -> None:
        """The session ends (a stop, an error): every run in flight ends and is recorded.
        It waits for the pool's own jobs, not the slots: a launch that failed half-way has
        no run to wait for."""
        import queue
        import time

        s = self.s
        deadline = time.monotonic() + 60
        while s.scheduler.busy() and time.monotonic() < deadline:
            try:
                item = s.inbox.get(timeout=0.1)
            except queue.Empty:
                assert s.pool is not None  # drained only when the pool is up
                if not s.pool.running:
                    break  # every Finished is in the inbox before the pool says so
                continue
            if hasattr(item, "reply"):  # a command: the session is ending
                item.reply.put({"ok": False, "message": "the session is ending"})
                continue
            try:
                s._handle(item)
            except CockpitError:
                continue
            except Exception:  # the loop already failed: record what can be, say the rest
                print(f"cockpit: while ending:\n{traceback.format_exc()}", file=sys.stderr,
                      flush=True)
        # Their bar or their second run never came: judged on what there is.
        for finished in [*s.held, *s.second_looks.values()]:
            self.judge(finished)
        s.held.clear()
        s.second_looks.clear()

    def remove_worktrees(self) -> None:
        try:
            self.s.trees.remove_all()
        except (HistoryError, OSError):
            pass

    def render_experiments(self) -> None:
        """experiments.md, re-rendered; a file of the human's put in its place meanwhile is
        left alone, and said once."""
        s = self.s
        if not write_experiments_md(s.workspace / EXPERIMENTS_NAME, s.state) \
                and not self._not_ours_said:
            self._not_ours_said = True
            s.recorder.record("not_ours", path=EXPERIMENTS_NAME, why=(
                f"{EXPERIMENTS_NAME} is yours now (no mark of cockpit's): cockpit stopped writing "
                "it; the journal keeps everything"))


__all__ = ["Outcomes", "who"]
