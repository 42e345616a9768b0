"""cockpit's own checkouts: one git worktree per worker (and one for a command agent) under
.cockpit/<tag>/worktrees/, detached at whatever commit they run. The human's checkout is
never used to run anything.

Paths a run needs that git does not track (a .venv, a data folder) are linked into each
worktree from the human's checkout: by default every top-level entry git ignores there,
less cockpit's own records; `[experiment] share` names them instead.
"""
from __future__ import annotations

import os
from pathlib import Path

from cockpit.workspace.history import History

# cockpit's records and caches in the human's checkout: never linked into a worktree
OWN_ENTRIES = {".cockpit", "results.tsv", "experiments.md", "report.md", "progress.png",
               "run.log", "__pycache__", ".pytest_cache", ".git"}


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
            self.history.sync_worktree(path, sha, keep=self.shared_entries())
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
            if self.share == "auto":
                self._shared = [e for e in self.history.ignored_entries()
                                if e not in OWN_ENTRIES]
            else:
                self._shared = [e.strip("/") for e in self.share]
            # a link is not a directory: ignored by name, so no status lists it as a change
            self.history.ignore_locally([f"/{e}" for e in self._shared])
        return self._shared

    def _link_shared(self, tree: Path) -> None:
        checkout = self.history.root
        for entry in self.shared_entries():
            source = checkout / entry
            target = tree / entry
            if not source.exists() or target.exists() or target.is_symlink():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(source, target)
