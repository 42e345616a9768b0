"""cockpit's own checkouts: one git worktree per worker (and one for a command agent) under
.cockpit/<tag>/worktrees/, detached at whatever commit they run. The human's checkout is
never used to run anything.

Paths a run needs that git does not track (a .venv, a data folder) are linked into each
worktree from the human's checkout: by default every top-level directory git ignores
there, less cockpit's own and anything named like a secret (a file such as `.env` is
linked only when `[experiment] share` names it); `share` names them instead. Before each
run every link is checked: one a run replaced (a directory of its own where the .venv link
was) is removed and linked again.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from cockpit.workspace.history import History, HistoryError, remove_tree
from cockpit.workspace.paths import NEVER_SHARED, RUN_LOG_NAME

# cockpit's records and caches in the human's checkout: never linked into a worktree
OWN_ENTRIES = {*NEVER_SHARED, RUN_LOG_NAME, "__pycache__", ".pytest_cache"}
# what "auto" never links: names that hold keys, tokens and the like
SECRET_NAME = re.compile(r"^\.env|secret|token|credential|passw|\.pem$|\.key$|\.p12$|"
                         r"^id_(rsa|ed25519|ecdsa)|netrc|\.kube|\.aws|\.ssh|\.gnupg",
                         re.IGNORECASE)


class Worktrees:
    def __init__(self, history: History, root: Path, share: list[str] | str = "auto") -> None:
        self.history = history
        self.root = root  # .cockpit/<tag>/worktrees
        self.share = share
        self.at: dict[str, str] = {}  # worktree name -> the commit it holds
        self._shared: list[str] | None = None

    def path(self, name: str) -> Path:
        return self.root / name

    def checkout(self, name: str, sha: str) -> Path:
        """The worktree `name` holding sha's tracked files (made on first use)."""
        path = self.path(name)
        if name not in self.at:
            self.history.add_worktree(path, sha)
        elif self.at[name] != sha or not (path / ".git").exists():
            try:
                self.history.sync_worktree(path, sha, keep=self.shared_entries())
            except HistoryError:  # a run left what git cannot clean (a tree too deep)
                self.history.remove_worktree(path)
                self.history.add_worktree(path, sha)
        self._link_shared(path)
        self.at[name] = sha
        return path

    def forget(self, name: str) -> None:
        """A worktree whose files may have changed under us: the next checkout resyncs it."""
        if name in self.at:
            self.at[name] = ""

    def remove_all(self) -> None:
        for name in list(self.at):
            self.history.remove_worktree(self.path(name))
        self.at.clear()

    def shared_entries(self) -> list[str]:
        """What is linked into each worktree (found once per session)."""
        if self._shared is None:
            checkout = self.history.root
            if self.share == "auto":
                self._shared = [e for e in self.history.ignored_entries()
                                if e not in OWN_ENTRIES and not SECRET_NAME.search(e)
                                and (checkout / e).is_dir()]
            else:
                self._shared = [entry_name(e) for e in self.share]
            # a link is not a directory: ignored by name, so no status lists it as a change
            self.history.ignore_locally([f"/{e}" for e in self._shared])
        return self._shared

    def _link_shared(self, tree: Path) -> None:
        """Each shared entry as a link to the checkout's, and nothing else in its place."""
        checkout = self.history.root
        for entry in self.shared_entries():
            source = checkout / entry
            target = tree / entry
            if target.is_symlink() and os.readlink(target) == str(source):
                continue
            if target.exists() or target.is_symlink():  # a run put something of its own
                if target.is_dir() and not target.is_symlink():
                    remove_tree(target)
                else:
                    target.unlink()
            if not source.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(source, target)


def entry_name(entry: str) -> str:
    """A `share` entry as the top-level name it stands for (`./.venv/` is `.venv`)."""
    parts = Path(entry).parts
    return parts[0] if len(parts) == 1 else entry.strip("/")
