"""Where everything of a workspace lives: the one place that spells out `.cockpit`, the
journal's name, the runs' logs and the other paths of a session."""
from __future__ import annotations

import os
from pathlib import Path

# --- the human's checkout -------------------------------------------------------------
CONFIG_NAME = "cockpit.toml"  # the session's settings, the human's file
PROGRAM_NAME = "program.md"   # what the human asks of the agent, the human's file
EVALUATOR_NAME = "evaluate.py"  # what measures a run's artifact, a fixed file
ARTIFACT_NAME = "model.pt2"   # what a run hands over, in the folder cockpit gives it
VAL_SPLIT_NAME = "val.bin"    # prepare.py's validation split, in the data dir: the evaluator's
STATE_DIR = ".cockpit"        # everything cockpit keeps, one folder per session tag

# What cockpit writes in the human's checkout (untracked, kept out of `git status`).
RESULTS_NAME = "results.tsv"
EXPERIMENTS_NAME = "experiments.md"
REPORT_NAME = "report.md"
PLOT_NAME = "progress.png"
RUN_LOG_NAME = "run.log"  # a run's output, in its own folder (and the reference's habit)
OWN_RECORDS = [f"{STATE_DIR}/", RESULTS_NAME, EXPERIMENTS_NAME, RUN_LOG_NAME, PLOT_NAME,
               REPORT_NAME]
# Names no worktree links from the checkout and no run may write: the repository, the
# session's state, the human's settings and cockpit's records.
NEVER_SHARED = (".git", STATE_DIR, CONFIG_NAME, RESULTS_NAME, EXPERIMENTS_NAME, REPORT_NAME,
                PLOT_NAME)

# --- inside .cockpit/ -----------------------------------------------------------------
JOURNAL_NAME = "journal.jsonl"   # the session's one record: everything else is read from it
SESSION_LOG_NAME = "session.log"  # a background session's own output
SOCKET_NAME = "session.sock"     # where clients reach the session (in a private run dir)
KEY_NAME = "session.key"         # what a client proves it may read before it is answered
COMPILE_CACHE = "cache"          # compilers' caches, kept from run to run
TENSORBOARD_NAME = "tensorboard"  # a session's TensorBoard runs: `tensorboard --logdir` it
TRACKED_NAME = "tracked.json"    # which experiments each tracker has been given


def session_dir(workspace: Path, tag: str) -> Path:
    return workspace / STATE_DIR / tag


def journal_path(workspace: Path, tag: str) -> Path:
    return session_dir(workspace, tag) / JOURNAL_NAME


def session_log(workspace: Path, tag: str) -> Path:
    return session_dir(workspace, tag) / SESSION_LOG_NAME


def tensorboard_dir(workspace: Path, tag: str) -> Path:
    """The session's TensorBoard logdir: one run per experiment, and the session's own."""
    return session_dir(workspace, tag) / TENSORBOARD_NAME


def tracking_scratch(workspace: Path, tag: str) -> Path:
    """Where an experiment's TensorBoard run is written before it is moved in whole."""
    return session_dir(workspace, tag) / f"{TENSORBOARD_NAME}.partial"


def tracked_marker(workspace: Path, tag: str) -> Path:
    return session_dir(workspace, tag) / TRACKED_NAME


def mlflow_store(workspace: Path, tag: str) -> Path:
    """MLflow's file store when [tracking] mlflow_uri names none."""
    return session_dir(workspace, tag) / "mlruns"


def wandb_dir(workspace: Path, tag: str) -> Path:
    """Where W&B keeps its (offline) runs: a wandb/ folder inside it."""
    return session_dir(workspace, tag)


def all_journals(workspace: Path) -> list[Path]:
    return list((workspace / STATE_DIR).glob(f"*/{JOURNAL_NAME}"))


def worktrees_dir(session: Path) -> Path:
    return session / "worktrees"


def run_log(session: Path, kind: str, key: int) -> Path:
    """An experiment's log (runs/0007/run.log) or a measurement's (measure/0007/run.log)."""
    return session / ("runs" if kind == "experiment" else "measure") / f"{key:04d}" / RUN_LOG_NAME


def scratch_root(session: Path) -> Path:
    """What runs leave for cockpit while they are in flight: nothing in it outlives its
    run (a session that starts removes what a killed one left)."""
    return session / "scratch"


def run_scratch(session: Path, run_id: str) -> Path:
    """One run's scratch: its artifact, its evaluator's folder, its private caches."""
    return scratch_root(session) / run_id


def handover_dir(session: Path, run_id: str) -> Path:
    """Where one run writes its artifact."""
    return run_scratch(session, run_id) / "handover"


def evaluation_dir(session: Path, run_id: str) -> Path:
    """Where the evaluator of one run is staged: its files and nothing else."""
    return run_scratch(session, run_id) / "evaluate"


def eval_log(run_log_path: Path) -> Path:
    """The evaluator's output, beside the run's log."""
    return run_log_path.with_name("evaluate.log")


def agent_scratch(workspace: Path) -> Path:
    """Where a command agent works when the session gives it no checkout of its own."""
    return workspace / STATE_DIR / "agent"


def compile_cache(workspace: Path) -> Path:
    return workspace / STATE_DIR / COMPILE_CACHE


def config_path(text: str, workspace: Path) -> Path:
    """A path cockpit.toml names: `~` expanded, a relative one inside the workspace."""
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else workspace / path
