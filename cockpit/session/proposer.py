"""Asking the agent for the next change, on a thread of its own, and reading its answer.

A proposal is asked for with everything the agent reads (program.md, re-read every time and
journaled when it changed; the best file, or a crashed one to repair; the history, the
notes, earlier sessions' experiments on the same data). Its answer comes back to the loop's
inbox; `received` checks it again, and `failure` says what a failure means for the session
(end it, pause it, or count it): the loop acts on that.
"""
from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cockpit.agents import (
    AgentContext,
    AgentError,
    AgentExhausted,
    AgentUnavailable,
    ProposalFailed,
)
from cockpit.agents.edits import EditRefused, validate_source
from cockpit.domain.exits import EXIT_FAILED, EXIT_USER
from cockpit.domain.proposals import Proposal, Ticket
from cockpit.domain.state import Experiment, SessionState
from cockpit.session.recorder import Recorder
from cockpit.workspace.config import Config
from cockpit.workspace.history import ConfigTampered
from cockpit.workspace.journal import earlier_sessions
from cockpit.workspace.logs import read_tail
from cockpit.workspace.paths import PROGRAM_NAME

MAX_FAILED_PROPOSALS = 3  # rounds of refused answers in a row before the loop pauses
LOG_TAIL_LINES = 60  # of a crashed run's log, shown to the agent that repairs it


@dataclass
class Proposed:
    """A proposer thread's answer: a proposal, or why there is none."""

    ticket: Ticket
    proposal: Proposal | None
    error: Exception | None
    seconds: float


class Abandoned(Exception):
    """The agent gave a crashed idea up (or could not fix it)."""

    def __init__(self, root: int, why: str) -> None:
        super().__init__(why)
        self.root, self.why = root, why


@dataclass
class Failure:
    """What a failed proposal means for the session."""

    end: tuple[str, int] | None = None  # why and the exit code: the session ends
    pause: tuple[str, str] | None = None  # why and its kind: the session pauses
    failed: str = ""  # a refused proposal, journaled (`proposal_failed`)
    planted: ConfigTampered | None = None  # the agent planted keys in .git/config


def sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


class Proposer:
    def __init__(self, agent: Any, config: Config, workspace: Path, recorder: Recorder,
                 scratch: Path, file_at: Callable[[str, str], str],
                 agent_tree: Callable[[str], Path],
                 line_best: Callable[[int], str] | None = None) -> None:
        self.agent = agent  # duck-typed (see cockpit.agents): repair, slow ... are optional
        self.config = config
        self.workspace = workspace
        self.recorder = recorder
        self.scratch = scratch  # where an agent may write (prompts, its command's logs)
        self.file_at = file_at  # (commit, path) -> the file's text
        self.agent_tree = agent_tree  # a worktree for a command agent, at a commit (the best)
        self.line_best = line_best  # a line of the search tree -> the commit of its best
        self.to_repair: list[Experiment] = []
        self.failed_streak = 0
        self._machine: str | None = None
        self._prior: list[Experiment] | None = None

    @property
    def state(self) -> SessionState:
        return self.recorder.state

    @property
    def editable(self) -> str:
        return self.config.experiment.editable

    def ask(self, ticket: Ticket, inbox: queue.Queue[Any]) -> Experiment | None:
        """Ask the agent for ticket's proposal on a thread; its answer goes to `inbox`. The
        crashed experiment it repairs, if it does."""
        crashed = self._crash_to_repair()
        base = ticket.base
        if crashed is not None:
            assert crashed.commit is not None  # it crashed running its commit
            base = crashed.commit
            if self.line_best is not None:  # a fix goes on the line of what it fixes
                ticket.line, ticket.base = crashed.line, self.line_best(crashed.line)
        source = self.file_at(base, self.editable)
        ctx = self._context(ticket.n, source, ticket.base, ticket.line)

        def work() -> None:
            start = time.monotonic()
            proposal, error = None, None
            try:
                proposal = self._answer(ctx, crashed)
            except Exception as exc:  # handed to the loop's thread
                error = exc
            inbox.put(Proposed(ticket, proposal, error, time.monotonic() - start))

        threading.Thread(target=work, name=f"propose-{ticket.n}", daemon=True).start()
        return crashed

    def received(self, done: Proposed) -> Proposal | Exception:
        """The proposal, checked again against the file it changes, or what went wrong."""
        if done.error is not None:
            return done.error
        proposal = done.proposal
        assert proposal is not None  # no error: the agent answered with one
        try:
            validate_source(proposal.source, self.file_at(done.ticket.base, self.editable),
                            self.editable)
        except EditRefused as exc:
            self.recorder.record("attempt", n=done.ticket.n, kind="loop check",
                                 accepted=False, problem=str(exc))
            return ProposalFailed(f"the {self.agent.name} agent's proposal was refused: {exc}")
        self.failed_streak = 0
        return proposal

    def failure(self, error: Exception) -> Failure:
        """What a failed proposal means: see Failure."""
        if isinstance(error, Abandoned):
            if error.root not in self.state.abandoned:
                self.recorder.record("abandoned", n=error.root, reason=error.why)
            return Failure()
        if isinstance(error, ConfigTampered):  # the command agent planted it: put back,
            failure = self._refused(f"the agent changed .git/config "  # a refused proposal
                                    f"({', '.join(error.keys)})")
            failure.planted = error
            return failure
        if isinstance(error, AgentExhausted):  # no idle night: it waits for a human's word
            return Failure(pause=(f"{error}: steer it with a note (n) or edit program.md, "
                                  "then resume (p)", "exhausted"))
        if isinstance(error, AgentError):
            return Failure(end=(f"{self.agent.name} agent: {error}", EXIT_USER))
        if isinstance(error, AgentUnavailable):
            return Failure(pause=(str(error), "provider"))
        if isinstance(error, ProposalFailed):
            return self._refused(str(error))
        return Failure(end=(f"{self.agent.name} agent failed: {type(error).__name__}: {error}",
                            EXIT_FAILED))  # a bug in an agent: say it, and do not spin on it

    def _refused(self, why: str) -> Failure:
        self.failed_streak += 1
        if self.failed_streak >= MAX_FAILED_PROPOSALS:
            self.failed_streak = 0
            return Failure(failed=why, pause=(f"{MAX_FAILED_PROPOSALS} proposals in a row "
                                              f"failed; the last: {why}", "proposals"))
        return Failure(failed=why)

    # -- what the agent reads ------------------------------------------------------------------
    def _answer(self, ctx: AgentContext, crashed: Experiment | None) -> Proposal:
        if crashed is None:
            fresh: Proposal = self.agent.propose(ctx)
            return fresh
        root = crashed.repair_of or crashed.n
        try:
            proposal: Proposal | None = self.agent.repair(ctx, crashed, self._log_tail(crashed))
        except ProposalFailed as exc:
            proposal, why = None, f"no usable fix: {exc}"
        else:
            why = "the agent gave the idea up"
        if proposal is None:
            raise Abandoned(root, why)
        proposal.repair_of = root
        return proposal

    def _context(self, n: int, source: str, best: str, line: int) -> AgentContext:
        program_path = self.workspace / PROGRAM_NAME  # re-read: edits steer the next idea
        program = program_path.read_text(encoding="utf-8") if program_path.exists() else ""
        if sha(program) != self.state.program_sha:
            self.recorder.record("program", sha=sha(program), text=program)
        def record(event: str, **fields: Any) -> None:
            self.recorder.record(event, n=n, **fields)

        if self._machine is None:
            from cockpit.runners.hardware import describe_machine

            self._machine = describe_machine()
        return AgentContext(
            program=program, source=source, history=list(self.state.experiments),
            best=self.state.line_best(line), line=line,
            metric=self.state.metric, direction=self.state.direction,
            time_budget=self.config.experiment.time_budget,
            notes=list(self.state.notes.values()), editable=self.editable,
            hardware=self._machine, scratch=self.scratch, n=n, prior=self._prior_sessions(),
            workspace=self.agent_tree(best) if getattr(self.agent, "needs_worktree", False)
            else None,
            record=record)

    def _prior_sessions(self) -> list[Experiment]:
        """What earlier sessions in this workspace measured on the same data (the session's
        fingerprint, once its first run printed one): read once per session."""
        fingerprint = self.state.fingerprint
        if fingerprint is None:
            return []
        if self._prior is None:
            self._prior = earlier_sessions(self.workspace, self.state.tag)
        return [e for e in self._prior if e.data_fingerprint == fingerprint]

    def _crash_to_repair(self) -> Experiment | None:
        """The oldest crash whose idea has repairs left (None when the agent cannot repair)."""
        if not hasattr(self.agent, "repair"):
            self.to_repair.clear()
            return None
        while self.to_repair:
            last = self.to_repair.pop(0)
            root = last.repair_of or last.n
            if root in self.state.abandoned:
                continue
            repairs = sum(e.repair_of == root for e in self.state.experiments)
            if repairs >= self.config.agent.repair_attempts:
                if repairs and root not in self.state.abandoned:
                    self.recorder.record("abandoned", n=root, reason=(
                        f"still crashing after {repairs} fix{'es' * (repairs != 1)}: "
                        f"{last.reason}"))
                continue
            self.recorder.emit({"type": "transient", "kind": "repairing", "crashed": last.n,
                                "of": root, "attempt": repairs + 1})
            return last
        return None

    def _log_tail(self, exp: Experiment) -> str:
        path = self.workspace / exp.log if exp.log else None
        if path is None or not path.exists():
            return exp.reason
        lines = [line.rsplit("\r", 1)[-1] for line in read_tail(path).splitlines()]
        return "\n".join(lines[-LOG_TAIL_LINES:])  # a progress line: its last state
