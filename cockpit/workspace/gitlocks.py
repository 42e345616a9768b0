"""Git lock files a killed process left behind, cleared: only in cockpit's part of the
repository (its refs, its worktrees, packed-refs, its index), only when no live process
holds them. The human's own index.lock is never touched."""
from __future__ import annotations

import os
import time
from pathlib import Path

LOCK_AGE = 2.0  # seconds: a younger .lock may belong to a git command still running

def _held_open(path: Path) -> bool:
    """Whether a live process has `path` open (Linux: /proc; elsewhere the age decides)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return False
    target = str(path)
    for fd_dir in proc.glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                if os.readlink(fd) == target:
                    return True
        except OSError:
            continue
    return False


def clear_stale_locks(git_dir: Path) -> list[str]:
    """Remove git lock files a killed process left in cockpit's part of the repository
    (its refs, its worktrees, packed-refs) when no live process holds them. Returns the
    paths removed. The human's own index.lock is never touched."""
    candidates = [git_dir / "packed-refs.lock"]
    for root in (git_dir / "refs" / "heads" / "autoresearch",
                 git_dir / "refs" / "cockpit",
                 git_dir / "worktrees"):
        if root.is_dir():
            candidates += root.rglob("*.lock")
    candidates += git_dir.glob("cockpit-index-*.lock")
    removed = []
    now = time.time()
    for path in candidates:
        try:
            if now - path.stat().st_mtime < LOCK_AGE or _held_open(path):
                continue
            path.unlink()
        except OSError:
            continue
        removed.append(str(path.relative_to(git_dir)))
    return removed
