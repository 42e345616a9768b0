"""What the command line names: the workspace (-C), checked in one line."""
from __future__ import annotations

from pathlib import Path

from cockpit.workspace.checks import WorkspaceError


def workspace_of(args) -> Path:
    """The workspace directory a command names (-C), or one line saying what is wrong."""
    path = args.workspace.expanduser()
    if path.exists() and not path.is_dir():
        raise WorkspaceError(f"-C {args.workspace}: not a directory (give the workspace's "
                             "directory)")
    if not path.exists():
        raise WorkspaceError(f"{path.resolve()} does not exist: create a workspace with "
                             f"`cockpit init {args.workspace}`")
    return path.resolve()
