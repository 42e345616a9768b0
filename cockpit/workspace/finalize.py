"""Finalize: the kept improvements of a session as a clean branch, ready for review.

The session branch holds the kept changes as a linear chain (discards were reset away),
so each kept commit's tree is the state after that change. The clean branch re-creates
that chain from the session's starting commit with one commit per kept change and a
message carrying its hypothesis and measured gain. The session branch is not touched.
"""
from __future__ import annotations

from cockpit.domain.errors import CockpitError
from cockpit.domain.state import SessionState
from cockpit.workspace.history import History, short


class FinalizeError(CockpitError):
    """Nothing to finalize, or the target branch is taken (one line for the user)."""


def commit_message(exp, state: SessionState, noise_spread: float | None) -> str:
    metric = state.metric
    gain = state.judged_by.gain_of(exp.delta_best or 0.0)
    lines = [exp.description, ""]
    if exp.hypothesis:
        lines += [f"Hypothesis: {exp.hypothesis}", ""]
    lines.append(f"Measured: {metric} {exp.metric:.6f}, {gain:+.6f} better than the best before it")
    if exp.delta_baseline is not None:
        lines.append(f"          {exp.delta_baseline:+.6f} vs the baseline")
    if exp.confidence is not None:
        lines.append(f"Confidence: {exp.confidence:.1f}x the noise spread"
                     + (f" ({noise_spread:.6f})" if noise_spread else ""))
    lines.append(f"Experiment #{exp.n} of session {state.tag} ({short(exp.commit)})")
    return "\n".join(lines) + "\n"


def finalize(history: History, state: SessionState, branch: str,
             noise_spread: float | None = None) -> list[str]:
    """Create `branch` with one commit per kept change; returns the new commit shas."""
    base = state.baseline
    kept = [e for e in state.experiments if e.status == "keep" and e is not base and e.commit]
    if not kept:
        raise FinalizeError(f"session {state.tag} has no kept improvement to finalize yet")
    if history.branch_exists(branch):
        raise FinalizeError(f"branch {branch} already exists: delete it or pass --branch NAME")
    parent = state.base
    made = []
    for exp in kept:
        assert exp.commit is not None  # kept: only those with a commit
        parent = history.commit_tree(exp.commit, parent, commit_message(exp, state, noise_spread))
        made.append(parent)
    history.create_branch(branch, parent)
    return made
