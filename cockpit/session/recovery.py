"""Resuming a session that stopped or was killed: what its last run left, decided.

Every run it left behind ends as a crash (its processes killed: its group, and whatever
carries its run's marker), or on its one run when it was waiting for a second look;
proposals it had not run are offered again; its branches go back to its best, unless one
holds a commit of the human's; results whose row never reached results.tsv get one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cockpit.domain import causes
from cockpit.domain.proposals import Proposal, Ticket
from cockpit.domain.state import SessionState
from cockpit.runners.processes import kill_leftovers
from cockpit.session.judging import interrupted
from cockpit.workspace.history import History, HistoryError


@dataclass
class Plan:
    """What a resume journals and offers, in order."""

    killed: list[dict[str, Any]] = field(default_factory=list)  # leftover_killed events
    results: list[dict[str, Any]] = field(default_factory=list)  # result events of cut-short runs
    offered: list[Ticket] = field(default_factory=list)  # proposals to offer again
    cancelled: list[dict[str, Any]] = field(default_factory=list)  # proposals that cannot be


def plan_resume(state: SessionState, history: History) -> Plan:
    """Kill what the last run of the session left, and decide what to journal and offer."""
    plan = Plan()
    for kind, key, pid in state.pids:
        run_id = state.run_ids.get((kind, key))
        if run_id and kill_leftovers(run_id, pid):
            plan.killed.append({"pid": pid, "n": key if kind == "n" else None,
                                    "k": key if kind == "k" else None})
    for exp in state.running:
        # measured once, its second look never came: judged on its one run
        plan.results.append(state.looks.get(exp.n) or interrupted(exp))
    for exp in state.pending:
        try:
            source = history.git("cat-file", "blob", exp.source_blob) if exp.source_blob \
                else None
        except HistoryError:
            source = None
        if source is None or not exp.base:
            plan.cancelled.append({"n": exp.n, "status": "rejected", "metric": None,
                                       "cause": causes.CANCELLED,
                                       "reason": "cancelled: the session stopped before it ran"})
            continue
        proposal = Proposal(exp.description, exp.hypothesis, source, params=exp.params,
                            move=exp.move, repair_of=exp.repair_of)
        plan.offered.append(Ticket(n=exp.n, base=exp.base, proposal=proposal, diff=exp.diff,
                                   made=exp.made, edited=exp.edited, line=exp.line))
    return plan


def owed_reruns(state: SessionState, baseline_runs: int, keep_reruns: int
                ) -> list[tuple[str, str]]:
    """The re-runs a resumed session still owes its bar: (commit, purpose)."""
    owed: list[tuple[str, str]] = []
    base = state.baseline
    if base is None:
        return owed
    if state.noise is None and baseline_runs > 1:
        assert base.commit is not None  # the baseline is a run that measured its commit
        owed += [(base.commit, "noise")] * max(0, baseline_runs - len(state.values_of(base.commit)))
    best = state.best
    if best is not None and best is not base and state.noise is not None:
        assert best.commit is not None  # a keep has its commit
        owed += [(best.commit, "keep")] * max(0, 1 + keep_reruns
                                               - len(state.values_of(best.commit)))
    return owed
