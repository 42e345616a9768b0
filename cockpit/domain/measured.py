"""How a result was measured, and what a noise floor's re-runs vary: the words every
screen and record uses (the session decides which applies; see session.measuring)."""
from __future__ import annotations

MEASURED_BY_COCKPIT = "cockpit"  # cockpit's evaluator measured the model the run handed over
REPORTED_BY_TRAIN = "train.py"  # the value train.py printed (it handed over no model)


def measured_label(measured: str) -> str:
    """How a result was measured, in words ("" when the journal does not say)."""
    return {MEASURED_BY_COCKPIT: "measured by cockpit",
            REPORTED_BY_TRAIN: "reported by train.py"}.get(measured, "")


def floor_kind(seeds: bool | None) -> str:
    """What a noise floor's re-runs vary, in words ("" before the session said)."""
    if seeds is None:
        return ""
    return ("re-runs at different seeds" if seeds else
            "nondeterminism only: train.py ignores COCKPIT_SEED")


def runs_label(runs: int) -> str:
    """`mean of 3 runs` / `1 run`: what a commit's score rests on (it scores the mean of
    its runs, as the judge does)."""
    return f"mean of {runs} runs" if runs > 1 else "1 run"


# A run whose machine was busy with other work trained fewer steps in its budget than its
# commit would: its value says more about the machine than about the idea (one such run
# among a baseline's four noise runs tripled a session's noise floor). runners.contention
# measures it; the judge leaves such a value out of the noise floor and the bars and runs
# the commit again.
OTHERS_MIN = 0.1  # cores work not cockpit's must use on average to take anything from a run
REDRAWS = 2  # disturbed runs of one commit measured again; past that, counted as they are
BUSY_STREAK = 3  # runs in a row on a busy machine: it stays busy, and runs count as they are


def disturbed(stalled: float | None, others: float | None, share: float) -> str:
    """Why a run's value is the machine's, not its commit's ("": it is its commit's).
    `share`: the share of a run's time tasks may wait for a CPU (0 = never disturbed)."""
    if share <= 0 or stalled is None or others is None:
        return ""
    if stalled < share or others < OTHERS_MIN:  # idle cores, or a run that stalls itself
        return ""
    return (f"the machine was busy with other work while it trained (tasks waited for a CPU "
            f"{stalled:.0%} of the time; work not cockpit's used {others:.1f} cores)")
