"""What stands between agent-written code and what it must not touch.

- The sandbox each run gets (when this machine can isolate: see cockpit.runners.sandbox).
- After each run, whether it changed what the session's results rest on: the fixed files
  (prepare.py: the evaluation) in its worktree, and the data it reads. A run that did is a
  crash; fixed files come back from git, but changed data ends the session, since no later
  result could be judged on it.
- Whether a metric is a result at all: a value outside its plausible range (negative bits
  per byte, 1e308) is a broken run, never the best.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cockpit.workspace.checks import GuardError
from cockpit.workspace.config import Config
from cockpit.workspace.paths import NEVER_SHARED, STATE_DIR, compile_cache, config_path
from cockpit.workspace.worktrees import entry_name

if TYPE_CHECKING:
    from cockpit.runners.sandbox import SandboxPolicy

CACHE_DIR = "cache"  # under .cockpit/: compilers' caches, kept from run to run


@dataclass
class Sandboxing:
    """Whether runs are isolated, and why not when they are not."""

    on: bool
    why: str


def sandboxing(config: Config) -> Sandboxing:
    """Decide once per session: on, or off with the reason (an error where it must be on)."""
    mode = config.sandbox.mode
    if mode == "off":
        return Sandboxing(False, "[sandbox] mode = \"off\"")
    from cockpit.runners.sandbox import available

    ok, why = available()
    if not ok and mode == "on":
        raise GuardError(f"[sandbox] mode = \"on\" but runs cannot be isolated here: {why}; "
                         "set mode = \"auto\" to run without isolation")
    return Sandboxing(ok, why)


def policy_for(config: Config, workspace: Path, tree: Path, data_dir: Path | None,
               shared: Sequence[str] = (), *, hidden: Sequence[Path] = (),
               handover: Path | None = None, cache_layer: bool = False) -> SandboxPolicy:
    """The sandbox of one run in `tree` (a worktree of cockpit's). The human's checkout is
    concealed (the session's lock, key, socket, journal and logs live in it, the other
    runs' worktrees, cockpit.toml); the run sees its worktree, the paths linked into it
    (`shared`), the data but what is `hidden` (the validation split), and the session's
    runtime directory not at all. It may write its artifact into `handover`; the compile
    cache is a layer whose writes are thrown away when `cache_layer`."""
    from cockpit.runners.sandbox import SandboxPolicy
    from cockpit.workspace.lock import runtime_dir

    policy = SandboxPolicy.for_run(tree, fixed=tuple(config.experiment.fixed), data_dir=data_dir,
                                   compile_cache=compile_cache(workspace),
                                   cache_layer=cache_layer, network=config.sandbox.network)
    policy.read_only += [config_path(p, workspace) for p in config.sandbox.read_only]
    policy.writable += [config_path(p, workspace) for p in config.sandbox.writable]
    if handover is not None:
        policy.writable.append(handover)
    policy.hidden += list(hidden)
    policy.concealed += [workspace, runtime_dir()]
    policy.exposed += [workspace / entry for entry in shared]
    if Path(config.experiment.train_command.split()[0]).name == "uv":
        # `uv run` in the sandbox: the .venv as it is (synced before, outside), a cache in
        # its own /tmp (uv's cache holds hard links into environments: never writable)
        policy.setenv.update(UV_NO_SYNC="1", UV_CACHE_DIR="/tmp/uv-cache")
    return policy


def evaluation_policy(config: Config, workspace: Path, cwd: Path, artifact_dir: Path,
                      data_dir: Path | None, shared: Sequence[str] = ()) -> SandboxPolicy:
    """The sandbox of the evaluator: its own directory, the artifact and the data (the
    validation split too) read-only, no network, no compile cache, the checkout concealed
    but for the linked paths (a .venv)."""
    from cockpit.runners.sandbox import SandboxPolicy
    from cockpit.workspace.lock import runtime_dir

    policy = SandboxPolicy.for_run(cwd, fixed=(), data_dir=data_dir, network=False)
    policy.read_only += [config_path(p, workspace) for p in config.sandbox.read_only]
    policy.concealed += [workspace, runtime_dir()]
    policy.exposed += [artifact_dir, *(workspace / entry for entry in shared)]
    return policy


# -- settings that would undo a protection -----------------------------------------------------
# Top-level directories of the machine: a run may never write into one.
SYSTEM_DIRS = ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/opt",
               "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var")
# Files of the home directory that run code or hold keys: a run may never write them.
HOME_STARTUP = (".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshrc", ".zprofile",
                ".zshenv", ".config", ".local/bin", ".ssh", ".gnupg", ".aws", ".kube",
                ".docker", ".netrc", ".git-credentials", ".gitconfig")
# Names a worktree must never link from the checkout: the repository, the session's state,
# the human's settings and cockpit's records.
# Caches whose files are hard links into environments: writable, they would make a .venv
# writable too.
LINKING_CACHES = ("uv", "conda", "mamba", "pkgs", "rattler", "pixi")
LOADER_VARIABLES = ("LD_PRELOAD", "LD_AUDIT", "LD_DEBUG_OUTPUT", "LD_PROFILE",
                    "DYLD_INSERT_LIBRARIES", "DYLD_LIBRARY_PATH")


def footguns(config: Config, workspace: Path, home: Path | None = None
             ) -> tuple[list[str], list[str]]:
    """Settings that would undo what keeps runs in their place: (refused, warned), one
    line each naming the key and what to do."""
    from cockpit.runners.environment import SECRET_WORD

    home = Path(os.path.realpath(home or Path.home()))
    ws = Path(os.path.realpath(workspace))
    refused, warned = [], []

    def real(text: str) -> Path:
        return Path(os.path.realpath(config_path(text, workspace)))

    def inside_state(path: Path) -> bool:
        return any(path == ws / name or path.is_relative_to(ws / name)
                   for name in (".git", STATE_DIR))

    for text in config.sandbox.writable:
        path = real(text)
        why = ""
        if str(path) in SYSTEM_DIRS or path in home.parents or path == home:
            why = "a run could change the machine or your home (your shell's startup files)"
        elif path == ws or path in ws.parents:
            why = "a run could change your checkout and the session's state"
        elif inside_state(path):
            why = "a run could change the repository or the session's state"
        elif any(path == home / name or (home / name).is_relative_to(path)
                 or path.is_relative_to(home / name) for name in HOME_STARTUP):
            why = "a run could plant code your shell or your tools run, or read your keys"
        elif any(part in LINKING_CACHES for part in path.parts) or path.name == "pkgs":
            why = ("a package manager's cache shares its files with your environments (uv "
                   "and conda link them): a run writing the cache writes your .venv; runs do "
                   "not need it (a sandboxed `uv run` syncs nothing and caches in its /tmp)")
        if why:
            refused.append(f"[sandbox] writable = {text!r}: {why}; name a directory of its "
                           "own, e.g. \"~/scratch\"")
    for text in config.sandbox.read_only:
        path = real(text)
        if path == ws or inside_state(path):
            refused.append(f"[sandbox] read_only = {text!r} would show runs the session's "
                           "key, socket and journal; name the folder they need")
    data = config.experiment.data_dir
    if data not in ("auto", ""):
        path = real(data)
        if str(path) in SYSTEM_DIRS or path in (home, ws) or path in home.parents \
                or path in ws.parents or inside_state(path):
            refused.append(f"[experiment] data_dir = {data!r} is not a data folder (every run "
                           "would read, and cockpit check, all of it): name the folder "
                           "prepare.py writes")
    if config.experiment.share != "auto":
        for entry in config.experiment.share:
            name = entry_name(entry)
            path = Path(os.path.realpath(ws / name))
            if name in NEVER_SHARED or Path(entry).is_absolute() or ".." in Path(entry).parts \
                    or len(Path(entry).parts) != 1 or path == ws or inside_state(path) \
                    or path in (ws / n for n in NEVER_SHARED) or not path.is_relative_to(ws):
                refused.append(f"[experiment] share = {entry!r}: only untracked top-level "
                               "entries of your checkout (a .venv, a data folder) may be "
                               f"linked into runs, never {' '.join(NEVER_SHARED[:3])} or a "
                               "path outside")
    for name in config.experiment.env:
        if name in LOADER_VARIABLES:
            refused.append(f"[experiment] env = [{name!r}]: it would load a library into the "
                           "process that isolates each run, before it is isolated")
        elif SECRET_WORD.search(name):
            warned.append(f"[experiment] env = [{name!r}] passes a secret to code the agent "
                          "wrote: every run can read it (and print it)")
    return refused, warned


def check_footguns(config: Config, workspace: Path) -> list[str]:
    """Raise GuardError with the first refused setting; the warnings, one line each."""
    refused, warned = footguns(config, workspace)
    if refused:
        raise GuardError(f"{workspace / 'cockpit.toml'}: {refused[0]}")
    return warned
