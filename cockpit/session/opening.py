"""Starting or resuming a session: the checks that come before anything is recorded, the
parts the loop works with, and a resume's recovery carried out (see recovery for what it
decides)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cockpit.agents import AgentError
from cockpit.runners.pool import WorkerPool
from cockpit.session import sandboxing
from cockpit.session.branches import Branches
from cockpit.session.errors import SessionError
from cockpit.session.launcher import Launcher
from cockpit.session.outcomes import Outcomes
from cockpit.session.proposer import Proposer
from cockpit.session.recovery import plan_resume
from cockpit.session.tamper import TamperGuard
from cockpit.workspace.checks import check_parses
from cockpit.workspace.config import Config
from cockpit.workspace.data import data_dir_of
from cockpit.workspace.history import ConfigTampered, History, short
from cockpit.workspace.paths import EXPERIMENTS_NAME, OWN_RECORDS, RESULTS_NAME, worktrees_dir
from cockpit.workspace.records import (
    LEGACY_EXPERIMENTS,
    RecordsError,
    reconcile_results,
    refuse_if_not_ours,
)
from cockpit.workspace.worktrees import Worktrees

if TYPE_CHECKING:
    from cockpit.session.coordinator import Coordinator


def open_session(s: Coordinator, preflight: bool = True) -> None:
    """Start or resume the session: the agent's setup, git, the journal, recovery of a
    killed run."""
    if preflight:
        check = getattr(s.agent, "preflight", None)  # model string, key, CLI on PATH
        try:
            if check is not None:
                check()
        except AgentError as exc:
            raise SessionError(f"{s.agent.name} agent: {exc}") from None
    history = History(s.workspace)
    if not history.has_commits():
        raise SessionError(f"{s.workspace} has no commits yet: commit your files first")
    sandboxing.check_footguns(s.config, s.workspace)
    try:  # before anything is recorded: cockpit never writes over a file of the human's
        refuse_if_not_ours(s.workspace / EXPERIMENTS_NAME, LEGACY_EXPERIMENTS,
                           " (cockpit writes its record of the sessions there)")
    except RecordsError as exc:
        raise SessionError(str(exc)) from None
    history.ignore_locally(OWN_RECORDS)
    cleared = history.clear_stale_locks()
    damaged = s.recorder.load()
    s.judge.state = s.recorder.state
    if s.asked_auto_approve is None and s.state.auto_approve is not None:
        s.control.auto_approve = s.state.auto_approve  # the session's own, as it was left
    s.scheduler.next_n, s.scheduler.next_k = s.state.next_n, s.state.next_k
    branch = History.branch_for(s.tag)
    checked_out = history.current_branch() or ""
    if checked_out == branch or checked_out.startswith(f"{branch}-gpu") \
            or checked_out in s.lines.targets():
        raise SessionError(f"your checkout is on {checked_out}, a branch of session {s.tag}: "
                           "check out another branch there (experiments run in cockpit's "
                           "own worktrees)")
    _parts(s, history)
    if s.events:
        _resume(s, branch)
    else:
        taken = s.branches.taken()
        if taken:
            raise SessionError(f"branch {taken[0]} already exists and has no cockpit journal: "
                               "pick another --tag")
        base = history.head()
        s.outcomes.move(branch, base)
        s.recorder.record("session", tag=s.tag, branch=branch, base=base,
                          metric=s.config.metric.name, direction=s.config.metric.direction,
                          agent=s.agent.name, config=s.config.to_dict(),
                          auto_approve=s.control.auto_approve)
    if cleared:
        s.recorder.record("locks_cleared", paths=cleared)
    if damaged:  # said once per start; the lines stay as they are in the file
        s.recorder.record("journal_damaged", lines=len(damaged), first=damaged[:3])
    check_parses(history, s.best_commit(), s.editable)
    decided = sandboxing.sandboxing(s.config)
    s.launcher = Launcher(s.config, s.workspace, s.tag, history, s.trees, s.guard, decided.on,
                          s.recorder)
    s.launcher.clear_scratch()
    if not decided.on and s.state.sandbox_off != decided.why:
        s.recorder.record("sandbox_off", why=decided.why)
    s.guard.data_dir = data_dir_of(s.config, s.workspace)
    s.scheduler.next_n, s.scheduler.next_k = s.state.next_n, s.state.next_k


def make_pool(config: Config, source: WorkerPool | Callable[[], WorkerPool] | None
              ) -> WorkerPool:
    """The session's workers: the ones given (a test's, a bench's), else the configured."""
    if source is None:
        from cockpit.runners.factory import make_pool as configured

        return configured(config)
    return source() if callable(source) else source


def _parts(s: Coordinator, history: History) -> None:
    """The parts the loop works with, on this workspace's repository."""
    s.history = history

    def planted(tampered: ConfigTampered) -> None:
        s.outcomes.config_planted(tampered)

    history.on_planted = planted
    s.trees = Worktrees(history, worktrees_dir(s.dir), s.config.experiment.share)
    s.guard = TamperGuard(s.config, s.workspace, history, s.dir / "quarantine", s.dir)
    s.branches = Branches(history, s.tag, s.editable)
    s.outcomes = Outcomes(s)

    def agent_tree(best: str) -> Path:  # the best of the line it proposes for
        return s.trees.checkout("agent", best)

    s.proposer = Proposer(s.agent, s.config, s.workspace, s.recorder, s.dir / "agent",
                          history.file_at, agent_tree, s.lines.best_commit)
    s.opened = True


def _resume(s: Coordinator, branch: str) -> None:
    """Every run a killed cockpit left behind ends as a crash (its processes killed);
    proposals it had not run are offered again; the branches go back to the best."""
    if not s.history.branch_exists(branch):
        raise SessionError(f"session {s.tag}: its branch {branch} is gone; start a new --tag")
    plan = plan_resume(s.state, s.history)
    for killed in plan.killed:
        s.recorder.record("leftover_killed", **killed)
    for result in plan.results:
        s.recorder.record("result", **result)
    for cancelled in plan.cancelled:
        s.recorder.record("result", **cancelled)
    for ticket in plan.offered:
        s.scheduler.awaiting[ticket.n] = ticket
    best = s.best_commit()
    if s.history.rev(best) is None:
        raise SessionError(f"session {s.tag}'s best, {short(best)}, is not a commit of this "
                           "repository (its journal was edited, or its history rewritten): "
                           "start a new --tag")
    lines = s.lines.targets()
    for name, head in s.branches.settle(s.state, best, lines):
        why = s.outcomes.take_up(name, head)
        if why:
            raise SessionError(why)
        s.history.set_branch(name, lines.get(name, best))
        s.branches.at[name] = lines.get(name, best)
    for n in reconcile_results(s.workspace / RESULTS_NAME, s.state,
                               s.state.rows if s.state.rows else None):
        s.recorder.record("row", n=n)
    s.outcomes.render_experiments()
    s.recorder.record("session", tag=s.tag, branch=branch, base=s.state.base, resumed=True,
                      agent=s.agent.name, config=s.config.to_dict(),
                      auto_approve=s.control.auto_approve)
