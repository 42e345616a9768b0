"""The repository's history, spoken of as experiments: the one module that knows git.

A session lives on branch autoresearch/<tag> (the best so far); with several workers each
has its own branch autoresearch/<tag>-gpu<k> too. Every experiment's commit also gets
refs/cockpit/<tag>/<n>, so discarded ideas stay reachable. Commits are written as objects
(no index, no working tree), experiments run in cockpit's own worktrees under .cockpit/, and
the human's checkout, its HEAD and its branches are never touched.

Code of an experiment may have written into the repository (a hook, a config key that runs a
command). So cockpit's own git commands run with hooks, fsmonitor, pagers, editors and
external diffs switched off on the command line, without the global or system config, in an
environment with no secrets; and before each one the repository's config is checked for keys
that would run a command (filters, textconv, includes) planted since the session began.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import git

from cockpit.workspace.errors import HistoryError
from cockpit.workspace.gitconfig import ConfigGuard, ConfigTampered
from cockpit.workspace.gitlocks import clear_stale_locks

BRANCH_PREFIX = "autoresearch/"
NO_COMMIT = "0" * 40  # as an expected value: the ref must not exist yet
REF_PREFIX = "refs/cockpit/"
COMMITTER = ("cockpit", "cockpit@localhost")
GIT_TIMEOUT = 120  # seconds: a git command that takes longer is stuck on something
# Configuration that could make a git command run a program, switched off for ours.
SAFE_CONFIG = (
    "core.hooksPath=/dev/null", "core.fsmonitor=false", "core.pager=cat", "core.editor=true",
    "sequence.editor=true", "core.attributesFile=/dev/null", "core.askPass=",
    "core.sshCommand=false", "credential.helper=", "diff.external=", "commit.gpgSign=false",
    "tag.gpgSign=false", "gc.auto=0", "maintenance.auto=false", "core.untrackedCache=false",
    "protocol.allow=never", "safe.directory=*", "advice.detachedHead=false",
)
# The variables a git command needs; nothing else of cockpit's environment reaches it.
GIT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")


class History:
    def __init__(self, workspace: Path):
        try:
            self.repo = git.Repo(workspace)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise HistoryError(
                f"{workspace} is not a git repository: run `cockpit init {workspace}` "
                "(or `git init` and commit your files)"
            ) from None
        work_tree = self.repo.working_tree_dir  # None for a bare one
        if self.repo.bare or work_tree is None:
            raise HistoryError(f"{workspace} is a bare repository; use a checkout")
        self.root = Path(work_tree)
        self.git_dir = Path(self.repo.common_dir).resolve()  # shared by every worktree
        self.config_guard = ConfigGuard(self.git_dir / "config")
        # Called instead of raising ConfigTampered before a git command, when set: the
        # session puts the config back and goes on (it knows which runs may have done it).
        self.on_planted: Callable[[ConfigTampered], None] | None = None

    def close(self) -> None:
        self.repo.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state (read only: refs and objects through git itself, in a session of its own,
    # so a Ctrl-C at the terminal never kills a reader cockpit still needs) -------------
    def has_commits(self) -> bool:
        return self.rev("HEAD") is not None

    def head(self) -> str:
        """The commit the human's checkout stands on."""
        sha = self.rev("HEAD")
        if sha is None:
            raise HistoryError(f"{self.root} has no commits yet: commit your files first")
        return sha

    def rev(self, name: str) -> str | None:
        """The commit a name (a ref, a sha) stands for, or None."""
        try:
            return self.git("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}").strip() \
                or None
        except HistoryError:
            return None

    def current_branch(self) -> str | None:
        """The branch checked out in the human's checkout (None when detached)."""
        return None if self.repo.head.is_detached else self.repo.active_branch.name

    def dirty_files(self) -> list[str]:
        """Tracked files of the human's checkout with uncommitted changes (for doctor's
        information only: cockpit never needs that tree to be clean)."""
        if not self.has_commits():
            return []
        out = self.git("status", "--porcelain", "--untracked-files=no", cwd=self.root)
        return sorted(line[3:] for line in out.splitlines() if line.strip())

    def branch_exists(self, name: str) -> bool:
        return self.branch_commit(name) is not None

    def branch_commit(self, name: str) -> str | None:
        return self.rev(f"refs/heads/{name}")

    def file_at(self, sha: str, path: str) -> str:
        """A file's exact text at a commit."""
        return self.blob_at(sha, path).decode("utf-8")

    def blob_at(self, sha: str, path: str) -> bytes:
        try:
            return self.git_bytes("cat-file", "blob", f"{sha}:{path}")
        except HistoryError:
            raise HistoryError(f"{path} is not in commit {short(sha)}") from None

    def tree_files(self, sha: str) -> dict[str, bytes]:
        """Every tracked file of a commit, path -> bytes: a commit shipped to another machine."""
        listing = self.git_bytes("ls-tree", "-r", "-z", sha).split(b"\0")
        entries = []
        for entry in filter(None, listing):
            info, _, name = entry.partition(b"\t")
            _, kind, blob = info.split()
            if kind == b"blob":
                entries.append((name.decode("utf-8", errors="surrogateescape"), blob))
        data = self.git_bytes("cat-file", "--batch",
                              input=b"".join(blob + b"\n" for _, blob in entries))
        files: dict[str, bytes] = {}
        at = 0
        for path, _ in entries:  # each: "<sha> blob <size>\n<content>\n"
            header_end = data.index(b"\n", at)
            size = int(data[at:header_end].split()[2])
            files[path] = data[header_end + 1:header_end + 1 + size]
            at = header_end + 1 + size + 1
        return files

    def is_ancestor(self, older: str, newer: str) -> bool:
        try:
            self.git("merge-base", "--is-ancestor", older, newer)
        except HistoryError:
            return False
        return True

    # -- writing experiments (objects and refs only) ------------------------------------
    @staticmethod
    def branch_for(tag: str) -> str:
        return BRANCH_PREFIX + tag

    def commit_file(self, parent: str, path: str, text: str, message: str) -> str:
        """A new commit: `parent` with one file's content replaced. No working tree or index
        of anyone's is touched (a temporary index does the tree)."""
        blob = self.write_blob(text)
        index = self.git_dir / f"cockpit-index-{os.getpid()}"
        try:
            env = {"GIT_INDEX_FILE": str(index)}
            self.git("read-tree", parent, env=env)
            self.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = self.git("write-tree", env=env).strip()
        finally:
            index.unlink(missing_ok=True)
        return self.commit_tree(tree, parent, message)

    def write_blob(self, text: str) -> str:
        """The text stored as a git blob (as it is: no filter runs); its id."""
        return self.git("hash-object", "-w", "--no-filters", "--stdin",
                        input=text.encode("utf-8")).strip()

    def commit_tree(self, tree: str, parent: str, message: str) -> str:
        """A commit of `tree` (a tree or a commit's tree) on `parent`, in the human's name
        when git knows it."""
        name, email = self.identity()
        env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
               "GIT_COMMITTER_NAME": COMMITTER[0], "GIT_COMMITTER_EMAIL": COMMITTER[1]}
        return self.git("commit-tree", f"{tree}^{{tree}}", "-p", parent, "-F", "-",
                        input=message.encode("utf-8"), env=env).strip()

    def set_branch(self, name: str, sha: str, expected: str | None = None) -> None:
        """Create or move one of cockpit's own branches (never one the human has out). With
        `expected`, only from there: a branch someone else moved raises BranchMoved."""
        if not name.startswith(BRANCH_PREFIX):
            raise HistoryError(f"refusing to move branch {name}: cockpit moves only its own "
                               f"{BRANCH_PREFIX}* branches")
        if self.current_branch() == name:
            raise HistoryError(f"your checkout is on {name}, the session's branch: check out "
                               "another branch there (cockpit runs experiments in its own "
                               "worktrees)")
        if expected is None:
            self.git("update-ref", f"refs/heads/{name}", sha)
            return
        try:
            self.git("update-ref", f"refs/heads/{name}", sha, expected)
        except HistoryError:
            now = self.branch_commit(name)
            if now == expected or (now is None and expected == NO_COMMIT):
                raise  # it failed for another reason
            raise BranchMoved(name, now) from None

    def changed_files(self, old: str, new: str) -> list[str]:
        """The files that differ between two commits."""
        return self.git("diff", "--name-only", "--no-renames", "--no-ext-diff", old, new,
                        "--").split("\n")[:-1] or []

    def subject(self, sha: str) -> str:
        """A commit's first line."""
        return self.git("log", "-1", "--format=%s", sha).strip()

    def recreate_ref(self, ref: str, sha: str) -> None:
        """Put back a branch or tag that was deleted (never over one that exists now)."""
        self.git("update-ref", ref, sha, NO_COMMIT)

    def set_ref(self, ref: str, sha: str) -> None:
        """A ref of cockpit's own (refs/cockpit/...)."""
        if not ref.startswith(REF_PREFIX):
            raise HistoryError(f"refusing to write {ref}: cockpit writes only {REF_PREFIX}*")
        self.git("update-ref", ref, sha)

    def create_branch(self, name: str, sha: str) -> None:
        """A new branch for the human (finalize); refuses names git refuses or that exist."""
        check = subprocess.run(["git", "check-ref-format", "--branch", name],
                               capture_output=True, text=True, env=git_env())
        if check.returncode != 0 or name == "HEAD" or name.startswith("-"):
            raise HistoryError(f"{name!r} is not a valid branch name: use letters, digits, "
                               "'/', '.', '_' or '-' (e.g. autoresearch/nov24-final)")
        if self.branch_exists(name):
            raise HistoryError(f"branch {name} already exists: delete it or pass --branch NAME")
        self.git("update-ref", f"refs/heads/{name}", sha, NO_COMMIT)

    def keep_ref(self, tag: str, n: int, sha: str) -> None:
        self.git("update-ref", f"{REF_PREFIX}{tag}/{n}", sha)

    def identity(self) -> tuple[str, str]:
        """The human's name and email as git knows them, else cockpit's."""
        reader = self.repo.config_reader()
        name = reader.get_value("user", "name", default="") or COMMITTER[0]
        email = reader.get_value("user", "email", default="") or COMMITTER[1]
        return str(name), str(email)

    # -- cockpit's worktrees ---------------------------------------------------------------
    def add_worktree(self, path: Path, sha: str) -> None:
        """A detached checkout of sha at path (created, or reset if it is already one)."""
        if (path / ".git").is_file():
            try:
                self.sync_worktree(path, sha)
                return
            except HistoryError:
                self.remove_worktree(path)  # half-made by a killed cockpit: start over
        elif path.exists() or path.is_symlink():
            remove_tree(path)
        if path.exists():
            raise HistoryError(f"{path} cannot be removed (a run left something there that "
                               "cannot be deleted): remove it by hand")
        self.git("worktree", "prune")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.git("worktree", "add", "--detach", "--force", str(path), sha)

    def sync_worktree(self, path: Path, sha: str, keep: Sequence[str] = ()) -> None:
        """Put a worktree at sha and nothing else: tracked files restored, whatever an earlier
        run left (outputs, checkpoints, ignored or not) removed, but the top-level entries
        in `keep` (the links to shared paths). Each run of a commit is then a measurement of
        its own, never a continuation of the last."""
        excluded = [arg for entry in keep for arg in ("-e", f"/{entry}")]
        # clean first: a file a run planted (a .gitattributes) must not steer the checkout
        self.git("clean", "-ffdxq", *excluded, cwd=path)
        self.git("checkout", "--force", "--detach", "--quiet", sha, cwd=path)
        self.git("clean", "-ffdxq", *excluded, cwd=path)

    def clean_worktree(self, path: Path, keep: Sequence[str] = ()) -> None:
        """Remove what a run left in a worktree (untracked files, ignored or not) but the
        top-level entries in `keep`. Only unlinks: it works on a full disk."""
        excluded = [arg for entry in keep for arg in ("-e", f"/{entry}")]
        self.git("clean", "-ffdxq", *excluded, cwd=path)

    def worktree_head(self) -> str:
        """The commit this checkout (a worktree of cockpit's, here) stands on."""
        return self.git("rev-parse", "HEAD").strip()

    def changed_paths(self) -> list[str]:
        """Files of this checkout that differ from its HEAD, untracked ones included (not
        those git ignores, like the links to shared paths)."""
        out = self.git("status", "--porcelain", "--untracked-files=all")
        return sorted(line[3:].split(" -> ")[-1] for line in out.splitlines() if line.strip())

    def reset_worktree(self, sha: str) -> None:
        """This checkout (a worktree of cockpit's) exactly at sha: tracked files restored,
        untracked ones removed (ignored ones, like links to shared paths, stay)."""
        self.git("checkout", "--force", "--detach", "--quiet", sha)
        self.git("clean", "-fdq")

    def branch_refs(self) -> dict[str, str]:
        """Every branch and tag of the repository, name -> commit."""
        out = self.git("for-each-ref", "--format=%(refname) %(objectname)", "refs/heads",
                       "refs/tags")
        return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)

    def remove_worktree(self, path: Path) -> None:
        try:
            self.git("worktree", "remove", "--force", "--force", str(path))
        except HistoryError:
            remove_tree(path)
        self.git("worktree", "prune")

    # -- the human's checkout: only cockpit's own lines in .git/info/exclude ---------------
    def ignore_locally(self, patterns: list[str]) -> None:
        """Keep cockpit's files out of `git status` without touching any tracked file."""
        exclude = self.git_dir / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        present = exclude.read_text().splitlines() if exclude.exists() else []
        missing = [p for p in patterns if p not in present]
        if missing:
            text = exclude.read_text() if exclude.exists() else ""
            with open(exclude, "a") as f:
                f.write(("\n" if text and not text.endswith("\n") else "")
                        + "".join(f"{p}\n" for p in missing))

    def ignored_entries(self) -> list[str]:
        """Top-level entries of the checkout that git ignores (a .venv, a data folder)."""
        out = self.git("status", "--porcelain", "--ignored", "--untracked-files=normal",
                       cwd=self.root)
        return sorted({line[3:].rstrip("/").split("/")[0]
                       for line in out.splitlines() if line.startswith("!! ")})

    # -- safety ------------------------------------------------------------------------
    def git(self, *args: str, cwd: Path | None = None, input: bytes | None = None,
            env: dict[str, str] | None = None) -> str:
        """Run one of cockpit's git commands, safely (see the module's docstring)."""
        return self.git_bytes(*args, cwd=cwd, input=input, env=env).decode(
            "utf-8", errors="replace")

    def git_bytes(self, *args: str, cwd: Path | None = None, input: bytes | None = None,
                  env: dict[str, str] | None = None) -> bytes:
        """git(), its output as bytes (file contents, exactly)."""
        with self.config_guard.lock:
            try:
                self.check_config()
            except ConfigTampered as exc:
                if self.on_planted is None:
                    raise
                self.on_planted(exc)  # it puts the config back: git runs over the old one
        command = ["git"]
        for item in SAFE_CONFIG:
            command += ["-c", item]
        try:
            done = subprocess.run(command + list(args), cwd=cwd or self.root, input=input,
                                  capture_output=True, timeout=GIT_TIMEOUT,
                                  env={**git_env(), **(env or {})},
                                  start_new_session=True)  # a Ctrl-C is cockpit's to handle
        except subprocess.TimeoutExpired:
            raise HistoryError(f"`git {args[0]}` took over {GIT_TIMEOUT} s; is the repository "
                               "on a stuck filesystem?") from None
        if done.returncode != 0 and self.clear_stale_locks():
            done = subprocess.run(command + list(args), cwd=cwd or self.root, input=input,
                                  capture_output=True, timeout=GIT_TIMEOUT,
                                  env={**git_env(), **(env or {})}, start_new_session=True)
        if done.returncode != 0:
            message = done.stderr.decode(errors="replace").strip().splitlines()
            raise HistoryError(f"`git {args[0]}` failed: {message[-1] if message else 'no output'}")
        return done.stdout

    def check_config(self) -> None:
        """Refuse to run git over a config that gained a key that runs a command since the
        session began (see workspace.gitconfig)."""
        self.config_guard.check()

    def restore_config(self, tampered: ConfigTampered, keep_in: Path) -> Path:
        """Put .git/config back as it was, keeping the tampered copy (nothing is lost)."""
        return self.config_guard.restore(tampered, keep_in)

    def clear_stale_locks(self) -> list[str]:
        """Remove git lock files a killed process left in cockpit's part of the repository
        (see workspace.gitlocks); the paths removed."""
        return clear_stale_locks(self.git_dir)


class BranchMoved(HistoryError):
    """One of cockpit's branches is not where cockpit left it: someone committed on it."""

    def __init__(self, name: str, now: str | None) -> None:
        super().__init__(f"{name} moved to {short(now)} outside cockpit")
        self.name, self.now = name, now


def remove_tree(path: Path) -> None:
    """Remove a directory a run may have filled with anything (a tree thousands of levels
    deep, unreadable modes): `rm -rf`, which goes as deep as it must, where there is one;
    never raises (what is left is found by the caller)."""
    try:
        done = subprocess.run(["rm", "-rf", "--", str(path)], capture_output=True,
                              timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL)
        if done.returncode == 0:
            return
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        shutil.rmtree(path, ignore_errors=True)
    except (OSError, RecursionError):
        pass


def git_env() -> dict[str, str]:
    """What a git command of cockpit's sees of the environment: no secrets, no global or
    system config, no prompts."""
    env = {k: os.environ[k] for k in GIT_ENV if k in os.environ}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0",
               GIT_OPTIONAL_LOCKS="0")
    return env


def short(sha: str | None) -> str:
    return (sha or "0" * 7)[:7]
