"""Where everything of a workspace lives: the one place that spells out `.cockpit`, the
journal's name, the runs' logs and the other paths of a session."""
from __future__ import annotations

import os
from pathlib import Path


STATE_DIR = ".cockpit"

def session_dir(workspace: Path, tag: str) -> Path:
    return workspace / STATE_DIR / tag


def config_path(text: str, workspace: Path) -> Path:
    """A path cockpit.toml names: `~` expanded, a relative one inside the workspace."""
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else workspace / path


# What cockpit writes in the human's checkout (untracked, kept out of `git status`).
RESULTS_NAME = "results.tsv"
EXPERIMENTS_NAME = "experiments.md"
REPORT_NAME = "report.md"
PLOT_NAME = "progress.png"
OWN_RECORDS = [f"{STATE_DIR}/", RESULTS_NAME, EXPERIMENTS_NAME, "run.log", PLOT_NAME,
               REPORT_NAME]
