"""Finalize: the kept improvements of a session as a clean branch, ready for review.

The session branch holds the kept changes as a linear chain (discards were reset away),
so each kept commit's tree is the state after that change. The clean branch re-creates
that chain from the session's starting commit with one commit per kept change and a
message carrying its hypothesis and measured gain. The session branch is not touched.

Any line of the search tree finalizes the same way: its chain is what its origin stands on
(the kept changes of the line it left, up to the origin), the origin itself, then the
line's own keeps.
"""
from __future__ import annotations

from cockpit.domain.errors import CockpitError
from cockpit.domain.state import Experiment, SessionState
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
    if exp.status != "keep":  # a line's origin: within the noise, and built on since
        lines.append(f"Not kept on its own line; line {_started(exp, state)} started from it")
    lines.append(f"Experiment #{exp.n} of session {state.tag} ({short(exp.commit)})")
    return "\n".join(lines) + "\n"


def _started(exp: Experiment, state: SessionState) -> str:
    return ", ".join(str(k) for k, line in state.lines.items() if line.origin is exp)


def chain(history: History, state: SessionState, k: int) -> list[Experiment]:
    """The changes line k stands on, in order (line 0: the session's keeps)."""
    base = state.baseline
    line = state.lines[k]
    own = [e for e in line.experiments if e.status == "keep" and e is not base and e.commit]
    origin = line.origin
    if origin is None or line.parent is None:
        return own
    assert origin.commit is not None  # a line starts on a measured commit
    before = [e for e in chain(history, state, line.parent) if e is not origin
              and e.commit is not None and history.is_ancestor(e.commit, origin.commit)]
    return before + ([origin] if origin is not base else []) + own


def finalize(history: History, state: SessionState, branch: str,
             noise_spread: float | None = None, line: int = 0) -> list[str]:
    """Create `branch` with one commit per change line `line` stands on; returns the new
    commit shas."""
    if line not in state.lines:
        raise FinalizeError(f"session {state.tag} has no line {line} (its lines: "
                            f"{', '.join(str(k) for k in state.lines)})")
    kept = chain(history, state, line)
    if not kept:
        raise FinalizeError(f"session {state.tag} has no kept improvement to finalize yet"
                            + (f" on line {line}" if line else ""))
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
