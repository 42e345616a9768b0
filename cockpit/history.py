"""The workspace's git history, spoken of as experiments: the one module that knows git.

A session lives on branch autoresearch/<tag>. Each experiment is committed before it
runs; keep leaves the branch there, discard and crash reset it to the best commit. Every
experiment's commit also gets refs/cockpit/<tag>/<n>, so discarded ideas stay reachable.
"""
from __future__ import annotations

from pathlib import Path

import git

from cockpit.errors import CockpitError

BRANCH_PREFIX = "autoresearch/"
COMMITTER = git.Actor("cockpit", "cockpit@localhost")


class HistoryError(CockpitError):
    """The repository is not in a state the loop can work from (one line for the user)."""


class History:
    def __init__(self, workspace: Path):
        try:
            self.repo = git.Repo(workspace)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise HistoryError(
                f"{workspace} is not a git repository: run `cockpit init {workspace}` "
                "(or `git init` and commit your files)"
            ) from None
        if self.repo.bare:
            raise HistoryError(f"{workspace} is a bare repository; use a checkout")
        self.root = Path(self.repo.working_tree_dir)

    # -- state ---------------------------------------------------------------------
    def has_commits(self) -> bool:
        try:
            self.repo.head.commit
        except ValueError:
            return False
        return True

    def dirty_files(self) -> list[str]:
        """Tracked files with uncommitted changes (untracked files are not ours to judge)."""
        if not self.has_commits():
            return []
        changed = {d.a_path for d in self.repo.index.diff(None)}
        changed |= {d.a_path for d in self.repo.index.diff("HEAD")}
        return sorted(changed)

    def head(self) -> str:
        return self.repo.head.commit.hexsha

    def current_branch(self) -> str | None:
        return None if self.repo.head.is_detached else self.repo.active_branch.name

    def branch_exists(self, name: str) -> bool:
        return name in self.repo.heads

    # -- sessions ------------------------------------------------------------------
    @staticmethod
    def branch_for(tag: str) -> str:
        return BRANCH_PREFIX + tag

    def start_branch(self, name: str) -> str:
        """Create branch `name` at HEAD, or switch to it if it exists; returns its head."""
        if name in self.repo.heads:
            self.repo.heads[name].checkout()
        else:
            self.repo.create_head(name).checkout()
        return self.head()

    def ignore_locally(self, patterns: list[str]) -> None:
        """Keep cockpit's files out of `git status` without touching any tracked file."""
        exclude = Path(self.repo.git_dir) / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        present = exclude.read_text().splitlines() if exclude.exists() else []
        missing = [p for p in patterns if p not in present]
        if missing:
            with open(exclude, "a") as f:
                f.write("".join(f"{p}\n" for p in missing))

    # -- experiments ---------------------------------------------------------------
    def commit_file(self, path: str, message: str) -> str:
        """Commit the current content of one file; returns the new commit's sha."""
        self.repo.index.add([path])
        commit = self.repo.index.commit(message, author=self._author(), committer=COMMITTER)
        return commit.hexsha

    def reset_to(self, sha: str) -> None:
        """git reset --hard sha on the current branch."""
        self.repo.head.reset(sha, index=True, working_tree=True)

    def keep_ref(self, tag: str, n: int, sha: str) -> None:
        ref = f"refs/cockpit/{tag}/{n}"
        git.Reference.create(self.repo, ref, sha, force=True)

    def experiment_refs(self, tag: str) -> dict[int, str]:
        prefix = f"refs/cockpit/{tag}/"
        refs = {}
        for ref in git.Reference.iter_items(self.repo, common_path=prefix.rstrip("/")):
            if ref.path.startswith(prefix) and ref.path[len(prefix) :].isdigit():
                refs[int(ref.path[len(prefix) :])] = ref.commit.hexsha
        return refs

    def commit_tree(self, source: str, parent: str, message: str) -> str:
        """A new commit with `source`'s tree on top of `parent`, touching no working tree."""
        commit = git.Commit.create_from_tree(
            self.repo, self.repo.commit(source).tree, message,
            parent_commits=[self.repo.commit(parent)], head=False,
            author=self._author(), committer=COMMITTER)
        return commit.hexsha

    def create_branch(self, name: str, sha: str) -> None:
        self.repo.create_head(name, sha)

    def add_worktree(self, path: str, sha: str) -> None:
        """A detached checkout of sha at path, to run a commit without moving the branch."""
        self.repo.git.worktree("add", "--detach", "--force", path, sha)

    def remove_worktree(self, path: str) -> None:
        self.repo.git.worktree("remove", "--force", path)

    def add_branch_worktree(self, path: str, branch: str, sha: str) -> None:
        """A checkout of `branch` (created or moved to sha) at path: a parallel worker's own tree."""
        self.repo.git.worktree("prune")  # a worktree deleted by hand must not block its branch
        self.repo.git.worktree("add", "--force", "-B", branch, path, sha)

    def tree_files(self, sha: str) -> dict[str, bytes]:
        """Every tracked file of a commit, path -> bytes: a commit shipped to another machine."""
        files = {}
        for blob in self.repo.commit(sha).tree.traverse():
            if blob.type == "blob":
                files[blob.path] = blob.data_stream.read()
        return files

    def diff(self, old: str, new: str, path: str) -> str:
        return self.repo.git.diff(old, new, "--", path)

    def show_file(self, sha: str, path: str) -> str:
        return self.repo.git.show(f"{sha}:{path}")

    def file_at(self, sha: str, path: str) -> str:
        """A file's exact text at a commit (show_file strips the last newline)."""
        return (self.repo.commit(sha).tree / path).data_stream.read().decode("utf-8")

    # -- what an external agent touched ------------------------------------------------
    def changed_paths(self) -> set[str]:
        """Tracked files that differ from HEAD, and untracked files git does not ignore."""
        return set(self.dirty_files()) | set(self.repo.untracked_files)

    def is_tracked(self, path: str) -> bool:
        try:
            self.repo.head.commit.tree / path
        except KeyError:
            return False
        return True

    def restore(self, path: str) -> None:
        """Put a tracked file back as HEAD has it (in the index and the working tree)."""
        self.repo.git.checkout("HEAD", "--", path)

    def uncommit_to(self, sha: str) -> None:
        """Move the branch back to sha, keeping the working tree (undo someone's commits)."""
        self.repo.head.reset(sha, index=True, working_tree=False)

    def _author(self) -> git.Actor:
        # The human's identity when git knows it, so `git log` reads naturally.
        reader = self.repo.config_reader()
        name = reader.get_value("user", "name", default="") or COMMITTER.name
        email = reader.get_value("user", "email", default="") or COMMITTER.email
        return git.Actor(name, email)


def short(sha: str) -> str:
    return sha[:7]
