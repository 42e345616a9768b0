"""The sessions of a workspace: their tags (a branch name's part), the latest of them, a
fresh one."""
from __future__ import annotations

import re
import time
from pathlib import Path

from cockpit.workspace.checks import WorkspaceError
from cockpit.workspace.paths import all_journals

TAG_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

def validate_tag(tag: str) -> str:
    if not TAG_PATTERN.match(tag) or ".." in tag or tag.endswith((".lock", ".")):
        raise WorkspaceError(
            f"--tag {tag!r} is not usable in a branch name: use letters, digits, '.', '_' or '-'"
        )
    return tag

def latest_session(workspace: Path) -> str | None:
    """The most recently active session's tag, if any."""
    journals = all_journals(workspace)
    if not journals:
        return None
    return max(journals, key=lambda p: p.stat().st_mtime).parent.name

def fresh_tag(branch_exists) -> str:
    """A tag like the reference's (`nov23`), suffixed when that branch is taken."""
    now = time.localtime()
    base = time.strftime("%b", now).lower() + str(now.tm_mday)
    tag, k = base, 2
    while branch_exists("autoresearch/" + tag):
        tag, k = f"{base}-{k}", k + 1
    return tag
