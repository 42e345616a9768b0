"""Workspaces: finding one, scaffolding a new one, naming its sessions."""
from __future__ import annotations

import shutil
from pathlib import Path

import git

from cockpit.workspace.checks import WorkspaceError
from cockpit.workspace.config import template
from cockpit.workspace.paths import CONFIG_NAME

TEMPLATES = ("program.md", "train.py", "prepare.py", "evaluate.py")
GITIGNORE = """\
# written by the research loop, never committed
.cockpit/
results.tsv
experiments.md
progress.png
report.md
run.log
model.pt2
__pycache__/
"""


def template_dir() -> Path:
    """The shipped workspace files (TEMPLATES): inside the wheel, or the source checkout."""
    package = Path(__file__).resolve().parent.parent  # cockpit/
    packaged = package / "templates"
    if (packaged / "train.py").exists():
        return packaged
    return package.parent


def init_workspace(target: Path) -> list[str]:
    """Scaffold TEMPLATES, cockpit.toml and a git repo in `target`.

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
        (target / CONFIG_NAME).write_text("# cockpit.toml: every key is optional; these are "
                                          "the defaults.\n\n" + template())
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
            # str(): git config values that look like numbers are read as numbers
            author = git.Actor(str(reader.get_value("user", "name", default="") or actor.name),
                               str(reader.get_value("user", "email", default="") or actor.email))
            repo.index.commit("cockpit workspace", author=author, committer=actor)
            done.append("committed them")
    return done


