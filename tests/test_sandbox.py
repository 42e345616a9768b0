"""The sandbox around a run, for real: bubblewrap, a TCP server on 127.0.0.1, a git
repository, a fake HOME with a key in it, and hostile training scripts."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

from cockpit.runners.local import LocalRunner
from cockpit.runners.outcome import crash_cause, parse_summary
from cockpit.runners.processes import marked_processes
from cockpit.runners.sandbox import SandboxPolicy, available, default_hidden, describe, wrap
from cockpit.workspace.logs import read_tail

ISOLATION, WHY = available()
pytestmark = pytest.mark.skipif(not ISOLATION, reason=f"no sandbox on this machine: {WHY}")


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A run's worktree: a git repository with the fixed prepare.py."""
    work = tmp_path / "work"
    work.mkdir()
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    (work / "prepare.py").write_text("FIXED = True\n")
    return work


@pytest.fixture
def home(tmp_path) -> Path:
    """A fake HOME with an SSH key and a cloud credential in it."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (home / ".netrc").write_text("machine example.com password hunter2\n")
    (home / "notes.txt").write_text("not a secret\n")
    return home


def policy_for(workdir: Path, home: Path, **options) -> SandboxPolicy:
    policy = SandboxPolicy.for_run(workdir, home=home, **options)
    policy.read_only.append(home)  # a real HOME is visible (read-only), except its secrets
    return policy


def train(workdir: Path, code: str, policy: SandboxPolicy | None, timeout: float = 30,
          home: Path | None = None):
    """Run `code` as the run's train.py; the result, the crash reason and the log."""
    (workdir / "train.py").write_text(textwrap.dedent(code))
    env = {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1",
           "HOME": str(home or Path.home())}
    log = workdir.parent / "run.log"
    result = LocalRunner(kill_grace=0.5).run("python train.py", cwd=workdir, log_path=log,
                                             timeout=timeout, env=env, sandbox=policy)
    text = read_tail(log)
    return result, crash_cause(result, text, parse_summary(text), "val_bpb", int(timeout))[1], text


@pytest.fixture
def server():
    """A TCP server on 127.0.0.1 that counts the connections it accepts."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn.recv(100))
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], accepted
    listener.close()


DIAL = """\
    import socket
    s = socket.create_connection(("127.0.0.1", {port}), timeout=5)
    s.sendall(b"hello from the run")
    s.close()
    print("connected")
"""


def test_the_network_is_refused(workdir, home, server):
    port, accepted = server
    result, reason, _ = train(workdir, DIAL.format(port=port), policy_for(workdir, home))
    assert result.returncode == 1 and result.sandboxed and result.offline
    assert reason.startswith("exit code 1: the sandbox refused a network connection: ")
    assert "Connection refused" in reason
    assert accepted == []


def test_network_true_allows_the_loopback_connection(workdir, home, server):
    port, accepted = server
    result, _, text = train(workdir, DIAL.format(port=port),
                            policy_for(workdir, home, network=True))
    assert result.returncode == 0 and "connected" in text
    assert accepted == [b"hello from the run"]


READ_KEY = """\
    import os
    print(open(os.path.expanduser("~/notes.txt")).read().strip())
    print(open(os.path.expanduser("~/.netrc")).read() or "an empty .netrc")
    print(os.listdir(os.path.expanduser("~/.ssh")))
    print(open(os.path.expanduser("~/.ssh/id_rsa")).read())
"""


def test_the_humans_secrets_are_not_visible(workdir, home):
    result, reason, text = train(workdir, READ_KEY, policy_for(workdir, home), home=home)
    assert result.returncode == 1
    assert "not a secret" in text and "an empty .netrc" in text and "[]" in text
    assert "PRIVATE KEY" not in text and "hunter2" not in text
    assert reason.startswith(f"exit code 1: the sandbox hides {home}/.ssh/id_rsa: ")
    # The same script outside the sandbox reads the key: the test can tell the difference.
    unsandboxed, _, text = train(workdir, READ_KEY, None, home=home)
    assert unsandboxed.returncode == 0 and "PRIVATE KEY" in text


@pytest.mark.parametrize("target", [".git/config", "prepare.py"])
def test_git_and_the_fixed_files_are_read_only(workdir, home, target):
    before = (workdir / target).read_bytes()
    code = f"open({target!r}, 'a').write('[core]\\n    hooksPath = /tmp/evil\\n')\n"
    result, reason, _ = train(workdir, code, policy_for(workdir, home))
    assert result.returncode == 1
    assert reason.startswith(f"exit code 1: the sandbox refused a write to {target}: ")
    assert "Read-only file system" in reason
    assert (workdir / target).read_bytes() == before


def test_the_workdir_and_a_private_tmp_are_writable(workdir, home, tmp_path):
    code = """\
        import os, tempfile
        open("checkpoint.pt", "w").write("weights")
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write("scratch")
        print("tmp:", f.name)
        print("---\\nval_bpb: 1.5")
    """
    result, reason, text = train(workdir, code, policy_for(workdir, home))
    assert result.returncode == 0 and reason == ""
    assert (workdir / "checkpoint.pt").read_text() == "weights"
    scratch = next(line.split()[1] for line in text.splitlines() if line.startswith("tmp:"))
    assert scratch.startswith("/tmp/") and not Path(scratch).exists()  # it was private


def test_compilers_write_their_cache_where_it_is_kept(workdir, home, tmp_path):
    code = """\
        import os
        for name in ("TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR"):
            os.makedirs(os.environ[name], exist_ok=True)
            open(os.path.join(os.environ[name], "kernel"), "w").write(name)
    """
    cache = tmp_path / "compile-cache"
    result, _, _ = train(workdir, code, policy_for(workdir, home, compile_cache=cache))
    assert result.returncode == 0
    assert (cache / "triton" / "kernel").read_text() == "TRITON_CACHE_DIR"
    result, _, _ = train(workdir, code, policy_for(workdir, home))  # no cache: a private /tmp
    assert result.returncode == 0


def test_a_setsid_child_without_the_marker_dies_with_the_run(workdir, home):
    # env -i drops the marker: only the PID namespace can find this child.
    token = f"cockpit-sandbox-orphan-{os.getpid()}-{time.time_ns()}"
    code = f"""\
        import subprocess, sys, time
        subprocess.Popen(["env", "-i", sys.executable, "-c",
                          "import os, time; os.setsid(); time.sleep(60)", {token!r}],
                         stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        print("---\\nval_bpb: 1.5")
    """
    result, reason, _ = train(workdir, code, policy_for(workdir, home))
    assert result.returncode == 0 and reason == ""
    time.sleep(0.2)
    assert processes_with(token) == []
    assert marked_processes(result.run_id) == []


@pytest.mark.slow
def test_a_hung_run_in_the_sandbox_ends_at_the_hard_timeout(workdir, home):
    code = """\
        import os, signal, time
        if os.fork() == 0:
            os.setsid()
            time.sleep(60)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(60)
    """
    started = time.monotonic()
    result, reason, _ = train(workdir, code, policy_for(workdir, home), timeout=1)
    assert result.timed_out and reason.startswith("timed out")
    assert time.monotonic() - started < 5
    assert marked_processes(result.run_id) == []


def test_a_signal_inside_the_sandbox_reads_as_one_outside(workdir, home):
    result, reason, _ = train(workdir, "import os\nos.kill(os.getpid(), 40)\n",
                              policy_for(workdir, home))
    assert result.returncode == -40 and reason.startswith("killed by signal 40")
    result, reason, _ = train(workdir, "import os\nos.kill(os.getpid(), 9)\n",
                              policy_for(workdir, home))
    assert result.returncode == -signal.SIGKILL and reason.startswith("killed by SIGKILL")


def test_wrap_puts_the_protections_after_the_writable_worktree(workdir, home):
    argv = wrap(["python", "train.py"], policy_for(workdir, home))
    joined = " ".join(argv)
    for flag in ("--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                 "--unshare-net", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert argv[-3:] == ["--", "python", "train.py"]
    assert joined.index(f"--bind {workdir} ") < joined.index(f"--ro-bind {workdir}/.git ")
    assert joined.index(f"--ro-bind {home} ") < joined.index(f"--tmpfs {home}/.ssh ")
    assert "--unshare-net" not in wrap(["true"], policy_for(workdir, home, network=True))
    argv = wrap(["true"], SandboxPolicy(workdir=workdir, hidden=[workdir.parent, workdir]))
    tmpfs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--tmpfs"]
    assert tmpfs == ["/tmp", "/dev/shm"]  # hiding an ancestor would hide the worktree


def test_describe_says_what_is_and_is_not_isolated(workdir, home):
    lines = describe(policy_for(workdir, home))
    text = "\n".join(lines)
    assert ".git" in text and "prepare.py" in text and ".ssh" in text
    assert "network: none" in text and "not isolated" in text
    assert home / ".ssh" in default_hidden(home) and home / ".aws" in default_hidden(home)
    assert ISOLATION and WHY.startswith("isolated with ")


def processes_with(token: str) -> list[int]:
    """Processes whose command line contains `token`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if token.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found
