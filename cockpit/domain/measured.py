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
