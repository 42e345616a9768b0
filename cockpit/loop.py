"""The research loop: propose -> (approve) -> commit -> run -> judge -> keep/discard -> record.

It runs in whatever thread calls run() (the headless CLI's main thread, or a worker
thread of the TUI) and reports through two callbacks: on_event(kind, data) for state
changes and on_output(text) for the training output as it streams. Controls (pause,
resume, stop, stop now, steer) are thread-safe and take effect between steps.
"""
from __future__ import annotations

import difflib
import fcntl
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Callable

from cockpit.agents import (
    AgentContext,
    AgentError,
    AgentExhausted,
    AgentUnavailable,
    Proposal,
    ProposalFailed,
    make_agent,
)
from cockpit.agents.edits import EditRefused, validate_source
from cockpit.config import Config
from cockpit.errors import CockpitError
from cockpit.history import History
from cockpit.journal import STATE_DIR, Experiment, Journal, SessionState, session_dir
from cockpit.judge import KeepPolicy, Noise
from cockpit.records import (
    REPORT_NAME,
    RESULTS_NAME,
    append_result,
    reconcile_results,
    write_experiments_md,
)
from cockpit.report import PLOT_NAME
from cockpit.report import REPORT_NAME as MORNING_REPORT
from cockpit.runners.local import (
    LocalRunner,
    RunResult,
    kill_leftovers,
    new_run_id,
    training_env,
)
from cockpit.summary import (
    crash_reason,
    failure_reason,
    find_value,
    metric_value,
    parse_summary,
    read_head,
    read_tail,
)

MAX_CRASH_STREAK = 10  # stop instead of burning a night on a broken setup
MAX_FAILED_PROPOSALS = 3  # rounds of refused answers in a row before the loop pauses
LOG_TAIL_LINES = 60  # of a crashed run's log, shown to the agent that repairs it
PREPARE_TIMEOUT = 3600


class LoopError(CockpitError):
    """The loop cannot start or go on (one line for the user)."""


def _lines_delta(diff: str) -> int:
    """Lines a unified diff adds minus the lines it removes."""
    lines = diff.splitlines()
    added = sum(l.startswith("+") and not l.startswith("+++") for l in lines)
    removed = sum(l.startswith("-") and not l.startswith("---") for l in lines)
    return added - removed


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


class ResearchLoop:
    def __init__(
        self,
        workspace: Path,
        config: Config,
        tag: str,
        agent=None,
        runner: LocalRunner | None = None,
        on_event: Callable[[str, dict], None] | None = None,
        on_output: Callable[[str], None] | None = None,
        approver: Callable[[int, Proposal, str], tuple[bool, str]] | None = None,
    ):
        self.workspace = workspace
        # approver(n, proposal, diff) blocks until the human decides: (approved, reason).
        # It is consulted only while auto_approve is off; headless runs never ask.
        self.approver = approver
        self.auto_approve = approver is None
        self.config = config
        self.tag = tag
        self.agent = agent or make_agent(config)
        self.runner = runner or LocalRunner()
        self.on_event = on_event or (lambda kind, data: None)
        self.on_output = on_output
        self.dir = session_dir(workspace, tag)
        self.journal = Journal(self.dir / "journal.jsonl")
        self.events: list[dict] = []
        self.state = SessionState()
        self.history: History | None = None
        self._lock_file = None
        self._stop = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._notes: list[str] = []
        self._prepared = False
        # A pause with a reason (cost limit, provider down) waits for a human to resume;
        # with no one there (headless: no approver) it ends the run instead.
        self.interactive: bool | None = None  # None: interactive iff an approver is set
        self.paused_reason = ""  # why the run ended on a pause ("" when it did not)
        self._cost_waived = False  # the human resumed past max_cost_usd
        self._pause_kind = ""
        self._machine: str | None = None

    # -- controls (any thread) -----------------------------------------------------
    def request_stop(self, now: bool = False) -> None:
        """Stop after the current experiment, or now (ending the run in flight)."""
        self._stop.set()
        self._resume.set()
        if now:
            self.runner.stop()

    def pause(self, reason: str = "paused by the human") -> None:
        """Pause before the next experiment starts."""
        self._resume.clear()
        self.on_event("paused", {"reason": reason})

    def resume(self) -> None:
        if self._pause_kind == "cost":
            self._cost_waived = True  # the human chose to spend past the limit
        self._pause_kind = ""
        self._resume.set()
        self.on_event("resumed", {})

    @property
    def pause_kind(self) -> str:
        """Why the loop waits: "cost", "provider", "proposals"; "" when not paused for a reason."""
        return self._pause_kind

    @property
    def cost_usd(self) -> float:
        """The session's model cost so far, summed from the journal's attempt events."""
        return sum(e.get("cost_usd") or 0.0 for e in self.events if e.get("event") == "attempt")

    def steer(self, note: str) -> None:
        self._notes.append(note)
        self._record("note", text=note)

    # -- the loop ------------------------------------------------------------------
    def run(self, max_experiments: int | None = None) -> str:
        """Run experiments until stopped; returns why the loop ended (one line)."""
        self._preflight()
        self.open_session()
        try:
            done = 0
            crash_streak = 0
            failed_streak = 0
            while not self._stop.is_set():
                if max_experiments is not None and done >= max_experiments:
                    return f"ran {done} experiment{'s' * (done != 1)} as asked"
                self._resume.wait()
                if self._stop.is_set():
                    break
                limit = self._cost_limit_reached()
                if limit:
                    if self._pause_for(limit, "cost"):
                        return f"paused: {limit}"
                    continue
                try:
                    exp = self.run_experiment()
                except AgentExhausted as exc:
                    return str(exc)
                except AgentError as exc:
                    raise LoopError(f"{self.agent.name} agent: {exc}") from None
                except AgentUnavailable as exc:
                    if self._pause_for(str(exc), "provider"):
                        return f"paused: {exc}"
                    continue
                except ProposalFailed as exc:
                    failed_streak, ending = self._proposal_failed(exc, failed_streak)
                    if ending:
                        return ending
                    continue
                failed_streak = 0
                done += 1
                if self.state.best is None and exp.status == "crash" and not self._stop.is_set():
                    return (f"the baseline run crashed ({exp.reason}); fix the setup and run "
                            f"again (log: {exp.log})")
                crash_streak = crash_streak + 1 if exp.status == "crash" else 0
                if crash_streak >= MAX_CRASH_STREAK:
                    return f"{crash_streak} experiments in a row crashed; last: {exp.reason}"
            return "stopped"
        finally:
            self.close_session()

    def _proposal_failed(self, exc: ProposalFailed, streak: int) -> tuple[int, str]:
        """Journal a proposal that never became valid; after a few in a row, pause.
        Returns the new streak and, when no one can resume the pause, why the run ends."""
        streak += 1
        self._record("proposal_failed", n=self.state.next_n, reason=str(exc))
        self.on_event("proposal_failed", {"n": self.state.next_n, "reason": str(exc)})
        if streak < MAX_FAILED_PROPOSALS:
            return streak, ""
        why = f"{MAX_FAILED_PROPOSALS} proposals in a row failed; the last: {exc}"
        return 0, (f"paused: {why}" if self._pause_for(why, "proposals") else "")

    def _preflight(self) -> None:
        """The agent's setup checks (model string, key, CLI on PATH) before anything runs."""
        check = getattr(self.agent, "preflight", None)
        if check is None:
            return
        try:
            check()
        except AgentError as exc:
            raise LoopError(f"{self.agent.name} agent: {exc}") from None

    def _cost_limit_reached(self) -> str:
        limit = self.config.agent.max_cost_usd
        spent = self.cost_usd
        if limit > 0 and spent >= limit and not self._cost_waived:
            return f"the model cost ${spent:.4f} reached max_cost_usd ${limit:.2f}"
        return ""

    def _pause_for(self, reason: str, kind: str) -> bool:
        """Pause with a reason; True when no one can resume, so the run must end."""
        self._record("paused", reason=reason, kind=kind)
        self._pause_kind = kind
        interactive = self.approver is not None if self.interactive is None else self.interactive
        if not interactive:
            self.paused_reason = reason
        else:
            self._resume.clear()
        self.on_event("paused", {"reason": reason})
        return not interactive

    def open_session(self) -> None:
        """Lock the workspace, start or resume the session, recover from a crash."""
        self.history = History(self.workspace)
        if not self.history.has_commits():
            raise LoopError(f"{self.workspace} has no commits yet: commit your files first")
        self._take_lock()
        self.history.ignore_locally([f"{STATE_DIR}/", RESULTS_NAME, REPORT_NAME, "run.log",
                                     PLOT_NAME, MORNING_REPORT])
        self.events = self.journal.read()
        self.state = SessionState.from_events(self.events)
        branch = History.branch_for(self.tag)
        if self.events:
            self._resume_session(branch)
        else:
            dirty = self.history.dirty_files()
            if dirty:
                raise LoopError(
                    "uncommitted changes to " + ", ".join(dirty)
                    + ": commit or stash them first (cockpit never overwrites your work)"
                )
            if self.history.branch_exists(branch):
                raise LoopError(
                    f"branch {branch} already exists and has no cockpit journal: "
                    "pick another --tag"
                )
            base = self.history.start_branch(branch)
            self._record("session", tag=self.tag, branch=branch, base=base,
                         metric=self.config.metric.name,
                         direction=self.config.metric.direction,
                         agent=self.agent.name, config=self.config.to_dict())
        self._notes = [e["text"] for e in self.events if e["event"] == "note"]
        self.on_event("session", {"tag": self.tag, "branch": branch,
                                  "resumed": self.state.next_n > 1,
                                  "experiments": len(self.state.finished)})

    def _resume_session(self, branch: str) -> None:
        state = self.state
        in_flight = state.in_flight
        dirty = self.history.dirty_files()
        editable = self.config.experiment.editable
        ours = (
            in_flight is not None
            and dirty == [editable]
            and _sha(self._read_editable()) == in_flight.source_sha
        )
        if dirty and not ours:
            raise LoopError(
                "uncommitted changes to " + ", ".join(dirty)
                + ": commit or stash them first (cockpit never overwrites your work)"
            )
        if not self.history.branch_exists(branch):
            raise LoopError(f"session {self.tag}: its branch {branch} is gone; start a new --tag")
        if ours:  # killed between writing the proposal and committing it
            self.history.reset_to(self.history.head())
        self.history.start_branch(branch)
        if in_flight is not None:
            if in_flight.run_id and kill_leftovers(in_flight.run_id, in_flight.pid):
                self.on_event("orphan_killed", {"n": in_flight.n, "pid": in_flight.pid})
            self._record("result", n=in_flight.n, commit=in_flight.commit, status="crash",
                         metric=None, memory_gb=0.0, summary={}, seconds=0.0,
                         reason="interrupted: cockpit stopped during this experiment",
                         delta_best=None, delta_baseline=None)
            self.on_event("recovered", {"n": in_flight.n})
        self.history.reset_to(self._best_commit())
        reconcile_results(self.workspace / RESULTS_NAME, self.state)
        write_experiments_md(self.workspace / REPORT_NAME, self.state)
        self._record("session", tag=self.tag, branch=branch, base=self.state.base,
                     resumed=True, agent=self.agent.name, config=self.config.to_dict())

    def close_session(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    def run_experiment(self) -> Experiment:
        n = self.state.next_n
        baseline = self.state.best is None  # nothing measured yet: run the starting point
        proposal = self._baseline() if baseline else self._repair_or_propose(n)
        editable = self.config.experiment.editable
        if not baseline:
            self._check(n, proposal)
        diff = "".join(difflib.unified_diff(
            self._read_editable().splitlines(keepends=True), proposal.source.splitlines(keepends=True),
            fromfile=f"a/{editable}", tofile=f"b/{editable}"))
        self._record("proposal", n=n, description=proposal.description,
                     hypothesis=proposal.hypothesis, diff=diff, params=proposal.params,
                     move=proposal.move, source_sha=_sha(proposal.source),
                     repair_of=proposal.repair_of, attempts=proposal.attempts,
                     usage=proposal.usage)
        if not baseline and not self.auto_approve and self.approver is not None:
            self.on_event("awaiting_approval", {"n": n, "proposal": proposal, "diff": diff})
            approved, reason = self.approver(n, proposal, diff)
            if not approved:
                self._record("result", n=n, status="rejected", metric=None,
                             reason=f"rejected by the human: {reason or 'no reason given'}")
                exp = self.state.experiments[-1]
                write_experiments_md(self.workspace / REPORT_NAME, self.state)
                self.on_event("result", {"experiment": exp})
                return exp
        if baseline:
            commit = self.history.head()  # the baseline runs the session's starting commit
        else:
            (self.workspace / editable).write_text(proposal.source, encoding="utf-8")
            commit = self.history.commit_file(editable, proposal.description)
        self.history.keep_ref(self.tag, n, commit)
        self._record("commit", n=n, commit=commit)
        self._prepare_data()
        log = self.dir / "runs" / f"{n:04d}" / "run.log"
        run_id = new_run_id()
        self._record("run_start", n=n, commit=commit,
                     log=str(log.relative_to(self.workspace)), run_id=run_id)
        self.on_event("run_start", {"n": n, "commit": commit, "description": proposal.description,
                                    "hypothesis": proposal.hypothesis,
                                    "log": str(log.relative_to(self.workspace))})
        result = self._train(self.workspace, log, run_id=run_id,
                             on_start=lambda pid: self._record("run_pid", n=n, pid=pid))
        self.on_event("judging", {"n": n})
        self._judge(n, commit, result, log)
        exp = self.state.experiments[-1]
        if exp.status != "keep":
            self.history.reset_to(self._best_commit())
        self._record_outcome(exp)
        return exp

    def _record_outcome(self, exp: Experiment) -> None:
        """A judged experiment: its row, experiments.md, the screen, then any re-runs."""
        append_result(self.workspace / RESULTS_NAME, self.state.metric, exp)
        write_experiments_md(self.workspace / REPORT_NAME, self.state)
        self.on_event("result", {"experiment": exp})
        if exp.status == "keep" and exp is self.state.baseline and self.noise is None:
            self._measure_baseline_noise(exp)
        elif exp.status == "keep" and self.noise is not None and self.config.judge.keep_reruns:
            # A kept result is the best of many draws, so it is luckier than its commit
            # (the winner's curse); re-runs make the bar the next idea must clear honest.
            self.measure(exp.commit, self.config.judge.keep_reruns, "keep")

    # -- the noise floor -------------------------------------------------------------
    @property
    def noise(self) -> Noise | None:
        """The latest measured noise floor of the session (None before one is measured)."""
        for e in reversed(self.events):
            if e["event"] == "noise":
                return Noise(e["values"])
        return None

    def _measure_baseline_noise(self, baseline: Experiment) -> None:
        extra = self.config.judge.baseline_runs - 1
        if extra < 1 or self._stop.is_set():
            return
        values = [baseline.metric] + self.measure(baseline.commit, extra, "noise")
        if len(values) > 1:
            self.record_noise(baseline.commit, values)

    def record_noise(self, commit: str, values: list[float]) -> Noise:
        noise = Noise(values)
        self._record("noise", commit=commit, **noise.to_dict())
        self.on_event("noise", {"noise": noise,
                                "threshold": self.policy.threshold(noise)})
        return noise

    def reference_value(self, exp: Experiment) -> float:
        """What a commit scores: the mean of every run of it (its experiment and any
        noise or confirm re-runs), so one lucky run of the best does not set the bar."""
        values = [exp.metric] + [e["metric"] for e in self.events if e["event"] == "measure"
                                 and e["commit"] == exp.commit and e["metric"] is not None]
        return sum(values) / len(values)

    @property
    def policy(self) -> KeepPolicy:
        judge = self.config.judge
        return KeepPolicy(self.config.metric.direction, judge.min_delta, judge.noise_multiple)

    def measure(self, commit: str, runs: int, purpose: str) -> list[float]:
        """Run `commit` unchanged `runs` times; the metric of each run that produced one.

        The branch stays where it is: a commit other than HEAD runs in a temporary
        worktree. Each run is journaled as a `measure` event, never as an experiment."""
        values = []
        worktree = None
        cwd = self.workspace
        if commit != self.history.head():
            worktree = self.dir / "worktree"
            if worktree.exists():
                self.history.remove_worktree(str(worktree))
            self.history.add_worktree(str(worktree), commit)
            cwd = worktree
        try:
            self._prepare_data()
            for i in range(runs):
                if self._stop.is_set():
                    break
                k = sum(e["event"] == "measure" for e in self.events) + 1
                log = self.dir / "measure" / f"{k:04d}" / "run.log"
                self.on_event("measuring", {"commit": commit, "run": i + 1, "runs": runs,
                                            "purpose": purpose})
                result = self._train(cwd, log)
                text = read_tail(log)
                summary = parse_summary(text)
                reason = crash_reason(result, text, summary, self.state.metric,
                                      self.config.experiment.hard_timeout)
                value = None if reason else metric_value(summary, self.state.metric)
                self._record("measure", commit=commit, purpose=purpose, metric=value,
                             reason=reason, seconds=round(result.seconds, 1),
                             log=str(log.relative_to(self.workspace)))
                self.on_event("measured", {"commit": commit, "metric": value, "reason": reason})
                if value is not None:
                    values.append(value)
        finally:
            if worktree is not None:
                self.history.remove_worktree(str(worktree))
        return values

    def _train(self, cwd: Path, log: Path, on_start=None, run_id: str | None = None) -> RunResult:
        """One run of the train command under the watchdog, secrets scrubbed, budget passed."""
        experiment = self.config.experiment
        return self.runner.run(
            experiment.train_command, cwd=cwd, log_path=log, timeout=experiment.hard_timeout,
            env=training_env({"COCKPIT_TIME_BUDGET": str(experiment.time_budget)}),
            on_output=self.on_output, on_start=on_start, run_id=run_id)

    # -- steps ---------------------------------------------------------------------
    def _baseline(self) -> Proposal:
        return Proposal("baseline", "the unmodified starting point, to measure against",
                        self._read_editable())

    def _propose(self, n: int) -> Proposal:
        self.on_event("proposing", {"n": n})
        return self.agent.propose(self._context(n, self._read_editable()))

    def _context(self, n: int, source: str) -> AgentContext:
        program = self.workspace / "program.md"  # re-read: edits steer the next idea
        if self._machine is None:
            from cockpit.hardware import describe_machine

            self._machine = describe_machine()
        return AgentContext(
            program=program.read_text(encoding="utf-8") if program.exists() else "",
            source=source,
            history=list(self.state.experiments),
            metric=self.state.metric,
            direction=self.state.direction,
            time_budget=self.config.experiment.time_budget,
            notes=list(self._notes),
            editable=self.config.experiment.editable,
            hardware=self._machine,
            workspace=self.workspace,
            scratch=self.dir / "agent",
            n=n,
            record=lambda event, **fields: self._agent_event(n, event, fields),
        )

    def _agent_event(self, n: int, event: str, fields: dict) -> None:
        """An agent's attempt or retry: journaled, and shown."""
        self._record(event, n=n, **fields)
        self.on_event(event, {"n": n, **{k: v for k, v in fields.items()
                                         if k not in ("answer", "output")}})

    def _repair_or_propose(self, n: int) -> Proposal:
        """A fix of the last experiment if it crashed and may still be repaired, else a new idea."""
        crashed = self._crash_to_repair()
        if crashed is not None:
            root = crashed.repair_of or crashed.n
            tries = sum(e.repair_of == root for e in self.state.experiments) + 1
            self.on_event("repairing", {"n": n, "crashed": crashed.n, "of": root, "try": tries,
                                        "tries": self.config.agent.repair_attempts})
            editable = self.config.experiment.editable
            ctx = self._context(n, self.history.file_at(crashed.commit, editable))
            try:
                proposal = self.agent.repair(ctx, crashed, self._log_tail(crashed))
            except ProposalFailed as exc:
                proposal, why = None, f"no usable fix: {exc}"
            else:
                why = "the agent gave the idea up"
            if proposal is not None:
                proposal.repair_of = root
                return proposal
            self._abandon(root, why)
        return self._propose(n)

    def _abandon(self, root: int, reason: str) -> None:
        if not any(e.get("event") == "abandoned" and e.get("n") == root for e in self.events):
            self._record("abandoned", n=root, reason=reason)
            self.on_event("abandoned", {"n": root, "reason": reason})

    def _crash_to_repair(self):
        """The last experiment, if it crashed and its idea has repairs left."""
        if not hasattr(self.agent, "repair") or not self.state.experiments:
            return None
        last = self.state.experiments[-1]
        if last.status != "crash" or not last.commit or last.description == "baseline":
            return None
        if last.reason.startswith(("stopped by the human", "interrupted")):
            return None  # the idea did not fail; the human stopped it
        root = last.repair_of or last.n
        if any(e.get("event") == "abandoned" and e.get("n") == root for e in self.events):
            return None
        repairs = sum(e.repair_of == root for e in self.state.experiments)
        if repairs >= self.config.agent.repair_attempts:
            if repairs:
                self._abandon(root, f"still crashing after {repairs} "
                                    f"fix{'es' * (repairs != 1)}: {last.reason}")
            return None
        return last

    def _log_tail(self, exp) -> str:
        if not exp.log:
            return exp.reason
        path = self.workspace / exp.log
        if not path.exists():
            return exp.reason
        text = read_tail(path)
        lines = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]  # progress: last state
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def _check(self, n: int, proposal: Proposal) -> None:
        """The last gate before the working tree: a proposal that fails never reaches it."""
        try:
            validate_source(proposal.source, self._read_editable(), self.config.experiment.editable)
        except EditRefused as exc:
            self._record("attempt", n=n, kind="loop check", accepted=False, problem=str(exc))
            raise ProposalFailed(f"the {self.agent.name} agent's proposal was refused: {exc}") from None

    def _judge(self, n: int, commit: str, result: RunResult, log: Path) -> None:
        text = read_tail(log)  # the summary block and the last error are at the end
        summary = parse_summary(text)
        name = self.state.metric
        value = metric_value(summary, name)
        reason = crash_reason(result, text, summary, name, self.config.experiment.hard_timeout)
        best, baseline = self.state.best, self.state.baseline
        verdict = None
        if reason:
            status = "crash"
        elif best is None:
            status = "keep"  # the baseline: the first measurement is the best so far
        else:
            verdict = self.policy.decide(value, self.reference_value(best), self.noise,
                                         _lines_delta(self._experiment(n).diff))
            status = verdict.status
        memory = summary.get("peak_vram_mb")
        self._record(
            "result", n=n, commit=commit, status=status, metric=value,
            confidence=verdict.confidence if verdict else None,
            verdict=verdict.why if verdict else "",
            memory_gb=round(memory / 1024, 1) if isinstance(memory, float) else 0.0,
            summary=summary, seconds=round(result.seconds, 1), reason=reason,
            delta_best=None if value is None or best is None else value - self.reference_value(best),
            delta_baseline=None if value is None or baseline is None else value - baseline.metric,
            data_fingerprint=find_value(read_head(log), "data_fingerprint"),
        )

    def _prepare_data(self) -> None:
        """Before the first run of this process: make sure the data exists (fast when it does)."""
        if self._prepared:
            return
        self._prepared = True
        command = self.prepare_command()
        if not command:
            return
        self.on_event("preparing", {"command": command})
        log = self.dir / "prepare.log"
        result = self.runner.run(command, cwd=self.workspace, log_path=log,
                                 timeout=PREPARE_TIMEOUT, env=training_env(),
                                 on_output=self.on_output)
        if result.stopped:
            raise LoopError("stopped while preparing the data")
        if result.returncode != 0:
            text = read_tail(log)
            raise LoopError(f"`{command}` failed ({result.error or failure_reason(text)}); "
                            f"see {log}")

    def prepare_command(self) -> str:
        """The configured prepare command; "auto" runs prepare.py the way train runs, if present."""
        command = self.config.experiment.prepare_command
        if command != "auto":
            return command
        if not (self.workspace / "prepare.py").exists():
            return ""
        train = self.config.experiment.train_command
        editable = self.config.experiment.editable
        words = train.split()
        if editable in words:
            return " ".join("prepare.py" if w == editable else w for w in words)
        return "python prepare.py"

    # -- helpers -------------------------------------------------------------------
    def _record(self, event: str, **fields) -> dict:
        record = self.journal.append(event, **fields)
        self.events.append(record)
        self.state.apply(record)
        return record

    def _experiment(self, n: int) -> Experiment:
        return next(e for e in reversed(self.state.experiments) if e.n == n)

    def _read_editable(self) -> str:
        return (self.workspace / self.config.experiment.editable).read_text(encoding="utf-8")

    def _best_commit(self) -> str:
        best = self.state.best
        return best.commit if best is not None else self.state.base

    def _take_lock(self) -> None:
        path = self.workspace / STATE_DIR / "lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise LoopError(f"a cockpit session is already running in this workspace ({owner})")
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, session {self.tag}, since {time.strftime('%H:%M')}\n")
        handle.flush()
        self._lock_file = handle
