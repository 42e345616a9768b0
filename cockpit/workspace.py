"""Workspaces: finding one, scaffolding a new one, naming its sessions."""
from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import git

from cockpit.config import CONFIG_NAME, DEFAULT_TOML
from cockpit.errors import CockpitError
from cockpit.journal import STATE_DIR

TEMPLATES = ("program.md", "train.py", "prepare.py")
TAG_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
GITIGNORE = """\
# written by the research loop, never committed
.cockpit/
results.tsv
experiments.md
progress.png
report.md
run.log
__pycache__/
"""


class WorkspaceError(CockpitError):
    """Not a usable workspace (one line saying how to make one)."""


def template_dir() -> Path:
    """The shipped program.md/train.py/prepare.py: inside the wheel, or the source checkout."""
    packaged = Path(__file__).parent / "templates"
    if (packaged / "train.py").exists():
        return packaged
    return Path(__file__).resolve().parent.parent


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


# Files the agent may never be pointed at: the human's own, git's, cockpit's.
NOT_EDITABLE = {"program.md", "cockpit.toml", ".gitignore", "results.tsv", "experiments.md"}


def check_workspace(path: Path, editable: str, fixed: tuple[str, ...] = ()) -> Path:
    """A directory cockpit can run in, whose editable file is a file of its own: one line
    saying what is wrong otherwise."""
    path = path.resolve()
    if not path.is_dir():
        raise WorkspaceError(f"{path} does not exist: create a workspace with `cockpit init {path}`")
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
    if parts[0] in (".git", ".cockpit") or relative.as_posix() in NOT_EDITABLE:
        raise WorkspaceError(f"[experiment] editable = {editable!r} is not the agent's to edit: "
                             "name the training script, e.g. \"train.py\"")
    if relative.as_posix() in fixed:
        raise WorkspaceError(f"[experiment] editable = {editable!r} is also listed in [experiment] "
                             "fixed: a file cannot be both")


def init_workspace(target: Path) -> list[str]:
    """Scaffold program.md, train.py, prepare.py, cockpit.toml and a git repo in `target`.

    Files that already exist are left alone (an autoresearch checkout keeps its own).
    Returns what was done, one line each.
    """
    target = target.resolve()
    if target.exists() and not target.is_dir():
        raise WorkspaceError(f"{target} exists and is not a directory")
    target.mkdir(parents=True, exist_ok=True)
    done = []
    source = template_dir()
    created = []
    for name in TEMPLATES:
        if not (target / name).exists():
            shutil.copyfile(source / name, target / name)
            created.append(name)
    if not (target / CONFIG_NAME).exists():
        (target / CONFIG_NAME).write_text(DEFAULT_TOML)
        created.append(CONFIG_NAME)
    if not (target / ".gitignore").exists():
        (target / ".gitignore").write_text(GITIGNORE)
        created.append(".gitignore")
    if created:
        done.append("created " + ", ".join(created))
    try:
        repo = git.Repo(target)
    except git.InvalidGitRepositoryError:
        repo = git.Repo.init(target, initial_branch="main")
        done.append("initialised a git repository")
    if created or not repo.head.is_valid():
        repo.index.add([n for n in created if (target / n).exists()])
        if repo.index.entries or repo.head.is_valid():
            actor = git.Actor("cockpit", "cockpit@localhost")
            reader = repo.config_reader()
            author = git.Actor(reader.get_value("user", "name", default="") or actor.name,
                               reader.get_value("user", "email", default="") or actor.email)
            repo.index.commit("cockpit workspace", author=author, committer=actor)
            done.append("committed them")
    return done


def validate_tag(tag: str) -> str:
    if not TAG_PATTERN.match(tag) or ".." in tag or tag.endswith((".lock", ".")):
        raise WorkspaceError(
            f"--tag {tag!r} is not usable in a branch name: use letters, digits, '.', '_' or '-'"
        )
    return tag


def latest_session(workspace: Path) -> str | None:
    """The most recently active session's tag, if any."""
    journals = list((workspace / STATE_DIR).glob("*/journal.jsonl"))
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
