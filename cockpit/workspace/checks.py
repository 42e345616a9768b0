"""Whether a workspace can be run: a directory with its editable file (a file of its own,
none of the human's or git's), committed and parsing."""
from __future__ import annotations

import ast
from pathlib import Path

from cockpit.domain.errors import CockpitError
from cockpit.workspace.history import History, HistoryError
from cockpit.workspace.paths import (
    CONFIG_NAME,
    EXPERIMENTS_NAME,
    PROGRAM_NAME,
    RESULTS_NAME,
    STATE_DIR,
)


class WorkspaceError(CockpitError):
    """Not a usable workspace (one line saying how to make one)."""

# Files the agent may never be pointed at: the human's own, git's, cockpit's.
NOT_EDITABLE = {PROGRAM_NAME, CONFIG_NAME, ".gitignore", RESULTS_NAME, EXPERIMENTS_NAME}

def check_workspace(path: Path, editable: str, fixed: tuple[str, ...] = ()) -> Path:
    """A directory cockpit can run in, whose editable file is a file of its own: one line
    saying what is wrong otherwise."""
    path = path.resolve()
    if not path.is_dir():
        raise WorkspaceError(f"{path} does not exist: create a workspace with "
                             f"`cockpit init {path}`")
    check_editable(path, editable, fixed)
    if not (path / editable).exists():
        raise WorkspaceError(
            f"{path} is not a cockpit workspace (no {editable}): create one with "
            f"`cockpit init DIR`, or run cockpit inside an autoresearch checkout"
        )
    if not (path / editable).is_file():
        raise WorkspaceError(f"[experiment] editable = {editable!r} is not a file; name the "
                             "one file the agent edits, e.g. \"train.py\"")
    return path

def check_editable(workspace: Path, editable: str, fixed: tuple[str, ...] = ()) -> None:
    """The editable file must be a relative path inside the workspace, and none of the files
    the human, git or the evaluation own."""
    relative = Path(editable)
    parts = relative.parts
    if relative.is_absolute() or ".." in parts or not parts:
        raise WorkspaceError(f"[experiment] editable = {editable!r} must be a path inside the "
                             "workspace, e.g. \"train.py\"")
    resolved = (workspace / relative).resolve()
    if not resolved.is_relative_to(workspace.resolve()):
        raise WorkspaceError(f"[experiment] editable = {editable!r} leads outside the workspace "
                             "(a link?); name a file inside it")
    if parts[0] in (".git", STATE_DIR) or relative.as_posix() in NOT_EDITABLE:
        raise WorkspaceError(f"[experiment] editable = {editable!r} is not the agent's to edit: "
                             "name the training script, e.g. \"train.py\"")
    if relative.as_posix() in fixed:
        raise WorkspaceError(f"[experiment] editable = {editable!r} is also listed in [experiment] "
                             "fixed: a file cannot be both")


class GuardError(CockpitError):
    """The session cannot run as configured (one line for the user)."""

# -- the editable file ------------------------------------------------------------------
def check_parses(history: History, commit: str, editable: str) -> None:
    """The session's starting file must be there and parse (a Python one): else nothing can
    be measured or proposed."""
    try:
        text = history.file_at(commit, editable)
    except HistoryError:
        raise GuardError(f"{editable} is not committed (the session starts from your last "
                         "commit): commit it first") from None
    except UnicodeDecodeError:
        raise GuardError(f"{editable} is not UTF-8 text") from None
    if not editable.endswith(".py"):
        return
    try:
        ast.parse(text, filename=editable)
    except SyntaxError as exc:
        raise GuardError(f"{editable} does not parse (line {exc.lineno}: {exc.msg}) in your "
                         "last commit: fix it and commit") from None
