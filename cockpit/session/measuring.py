"""How a session's results are measured, decided once at its start: by cockpit's own
evaluator (the workspace's evaluate.py, on the model each run hands over) or as train.py
prints them; whether re-runs vary the seed; and, per run, what it is given to hand over
and what measures it.

- trust "measured": every result comes from the evaluator; a run that hands over nothing
  is a crash. "reported": a run that hands over nothing is judged on what it printed (an
  autoresearch checkout's train.py), labelled so. "auto": measured when the workspace has
  its evaluator and the runs happen on this machine.
- The evaluator's files are written, as committed, into a directory of their own: nothing
  a run left beside its code is importable there.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from cockpit.runners.evaluation import Evaluation
from cockpit.runners.pool import Capabilities
from cockpit.session.errors import SessionError
from cockpit.workspace.config import Config
from cockpit.workspace.history import History, HistoryError
from cockpit.workspace.paths import EVALUATOR_NAME, config_path

SEED_VARIABLE = "COCKPIT_SEED"
EVAL_TIMEOUT = 600  # seconds the evaluator gets at the least (more for longer budgets)
PRINTED_AGREES = 2e-3  # a printed metric within this share of the measured one agrees


@dataclass(frozen=True)
class Measuring:
    evaluator: str  # the evaluator's file in the workspace ("" = none)
    trust: str  # "measured" | "reported"
    seeds: bool  # train.py honours COCKPIT_SEED: re-runs vary it
    why: str  # in words, for the journal and the screens

    @property
    def measures(self) -> bool:
        return bool(self.evaluator)


def seed_of(key: int) -> int:
    """The seed of re-run `key`: a different one for each (train.py's own is 42)."""
    return 1000 + key


def evaluator_of(config: Config, history: History, commit: str) -> str:
    """The evaluator file the session would use ("" = none): "auto" is evaluate.py when
    the commit tracks it."""
    setting = config.experiment.evaluator
    if setting == "":
        return ""
    name = EVALUATOR_NAME if setting == "auto" else setting
    try:
        history.blob_at(commit, name)
    except HistoryError:
        if setting != "auto":
            raise SessionError(f"[experiment] evaluator = {setting!r} is not a file committed "
                               "in your checkout: commit it, or set evaluator = \"\"") from None
        return ""
    return name


def decide(config: Config, history: History, commit: str, capabilities: Capabilities,
           editable_source: str) -> Measuring:
    """How this session measures (SessionError in one line for a setting it cannot keep)."""
    trust = config.judge.trust
    evaluator = evaluator_of(config, history, commit)
    seeds = SEED_VARIABLE in editable_source
    if evaluator and not capabilities.measures:
        if trust == "measured":
            raise SessionError("[judge] trust = \"measured\" but this runner does not measure "
                               "runs itself (the ray runner hands back no artifact yet): use "
                               "the local or gpus runner, or trust = \"reported\"")
        evaluator = ""
    if trust == "measured" and not evaluator:
        raise SessionError(f"[judge] trust = \"measured\" but the workspace has no evaluator "
                           f"({EVALUATOR_NAME}; `cockpit init` writes one): add it, or set "
                           "trust = \"reported\"")
    decided = "measured" if evaluator and trust != "reported" else "reported"
    if decided == "measured":
        why = f"measured by cockpit: {evaluator} on the model each run hands over"
    elif evaluator:
        why = (f"measured by cockpit when a run hands over its model ({evaluator}), else as "
               "train.py reports it")
    else:
        why = "reported by train.py (no evaluator: its printed summary is the result)"
    return Measuring(evaluator, decided, seeds, why)


def evaluator_python(config: Config, workspace: Path) -> str:
    """The Python the evaluator runs with: the one train.py runs with."""
    words = config.experiment.train_command.split()
    first = words[0] if words else "python"
    if first in ("python", "python3"):
        return sys.executable
    if Path(first).name.startswith("python"):
        return str(config_path(first, workspace))
    venv = workspace / ".venv" / "bin" / "python"
    if Path(first).name == "uv" and venv.exists():
        return str(venv)
    return sys.executable


def evaluation(config: Config, workspace: Path, history: History, commit: str,
               measuring: Measuring, where: Path, artifact: Path, log: Path) -> Evaluation:
    """What measures one run of `commit`: the evaluator and the fixed files, as committed,
    to be written into `where`."""
    names = [measuring.evaluator, *config.experiment.fixed]
    files = {}
    for name in dict.fromkeys(names):
        try:
            files[name] = history.blob_at(commit, name)
        except HistoryError:
            continue
    timeout = max(EVAL_TIMEOUT, config.experiment.time_budget)
    return Evaluation(python=evaluator_python(config, workspace), script=measuring.evaluator,
                      files=files, cwd=where, artifact=artifact, log_path=log,
                      timeout=timeout)


def disagrees(printed: float, measured: float) -> bool:
    """Whether a metric train.py printed is not the one cockpit measured."""
    return abs(printed - measured) > PRINTED_AGREES * max(abs(measured), 1e-9)


def misreported(name: str, printed: float, measured: float) -> str:
    return (f"train.py printed {name} {printed:.6f}, cockpit measured {measured:.6f}: a run "
            "reports what cockpit measures or nothing")


NO_ARTIFACT = ("handed over no model: under [judge] trust = \"measured\" train.py must end "
               "with hand_over(model) (from evaluate import hand_over)")
