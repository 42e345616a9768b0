"""The subprocess runner: streaming, the watchdog nothing escapes, the allow-listed
environment, and what a finished run's log says (bounded reads, exit signals)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from cockpit.runners.environment import training_env
from cockpit.runners.local import LocalRunner, reaper_available, split_command
from cockpit.runners.outcome import crash_cause, parse_summary
from cockpit.runners.processes import kill_leftovers, marked_processes
from cockpit.workspace.logs import read_tail

UNIQUE = f"{os.getpid()}-{time.time_ns()}"  # run ids no other test session uses


def py(code: str, where) -> str:
    """A command running `code` as a script (real files, as train.py would be)."""
    script = where / f"script{len(list(where.glob('script*.py')))}.py"
    script.write_text(code)
    return f"python {script}"


def test_streams_output_to_log_and_callback(tmp_path):
    chunks = []
    code = ("import sys\nfor i in range(3): print(f'line {i}', flush=True)\n"
            "sys.stderr.write('err\\n')")
    result = LocalRunner().run(py(code, tmp_path), cwd=tmp_path, log_path=tmp_path / "run.log",
                               timeout=30, on_output=chunks.append)
    assert result.returncode == 0 and not result.timed_out
    log = (tmp_path / "run.log").read_text()
    assert log == "line 0\nline 1\nline 2\nerr\n"
    assert "".join(chunks) == log


@pytest.mark.slow
def test_watchdog_escalates_to_sigkill_for_a_run_that_ignores_sigterm(tmp_path):
    code = ("import signal, time, subprocess\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "child = subprocess.Popen(['sleep', '300'])\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(300)")
    started = time.monotonic()
    result = LocalRunner(kill_grace=0.5).run(py(code, tmp_path), cwd=tmp_path,
                                             log_path=tmp_path / "run.log", timeout=1)
    assert result.timed_out and result.returncode == -9
    assert time.monotonic() - started < 10
    child = int((tmp_path / "run.log").read_text().split()[0])
    time.sleep(0.2)
    assert not alive(child)


def test_stop_ends_the_run_now(tmp_path):
    runner = LocalRunner()
    threading.Timer(0.5, runner.stop).start()
    result = runner.run(py("import time; time.sleep(60)", tmp_path), cwd=tmp_path,
                        log_path=tmp_path / "run.log", timeout=60)
    assert result.stopped and not result.timed_out and result.seconds < 10


def test_a_command_that_cannot_start_is_reported(tmp_path):
    result = LocalRunner().run("no-such-program-xyz train.py", cwd=tmp_path,
                               log_path=tmp_path / "run.log", timeout=5)
    assert result.returncode is None and "cannot start" in result.error


def test_a_relative_program_is_found_from_the_runs_directory(tmp_path, monkeypatch):
    """`.venv/bin/python train.py` means the run's .venv, wherever cockpit was started:
    neither found nor refused by what cockpit's own directory holds."""
    run_dir, elsewhere = tmp_path / "tree", tmp_path / "elsewhere"
    (run_dir / ".venv" / "bin").mkdir(parents=True)
    elsewhere.mkdir()
    os.symlink(sys.executable, run_dir / ".venv" / "bin" / "python")
    (run_dir / "train.py").write_text("print('val_bpb: 1.5')\n")
    monkeypatch.chdir(elsewhere)
    result = LocalRunner().run(".venv/bin/python train.py", cwd=run_dir,
                               log_path=tmp_path / "run.log", timeout=30)
    assert result.returncode == 0 and "val_bpb: 1.5" in (tmp_path / "run.log").read_text()
    (elsewhere / ".venv" / "bin").mkdir(parents=True)  # only here, not in the run's tree
    os.symlink(sys.executable, elsewhere / ".venv" / "bin" / "python")
    missing = LocalRunner().run(".venv/bin/python train.py", cwd=tmp_path,
                                log_path=tmp_path / "missing.log", timeout=30)
    assert missing.error.startswith("cannot start")


def test_bare_python_means_this_python():
    assert split_command("python train.py --x 'a b'") == [sys.executable, "train.py", "--x", "a b"]
    assert split_command("uv run train.py")[0] == "uv"


SECRETS = [
    "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GITHUB_TOKEN", "GH_TOKEN", "GITLAB_TOKEN",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "DATABASE_URL", "PGPASSWORD", "PGUSER", "MYSQL_PWD", "REDIS_URL", "MONGODB_URI",
    "SSH_AUTH_SOCK", "SSH_AGENT_PID", "GPG_AGENT_INFO", "DBUS_SESSION_BUS_ADDRESS",
    "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "WANDB_API_KEY", "NPM_TOKEN", "TWINE_PASSWORD",
    "DOCKER_PASSWORD", "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_CLIENT_SECRET",
    "AZURE_STORAGE_CONNECTION_STRING", "SLACK_WEBHOOK_URL", "SENTRY_DSN", "VAULT_TOKEN",
    "KUBECONFIG", "CI_JOB_TOKEN", "PIP_INDEX_URL", "UV_INDEX_URL", "UV_PUBLISH_TOKEN",
    "GIT_ASKPASS", "NETRC", "MY_SECRET", "STRIPE_SECRET_KEY",
    # names an allowed prefix would let through, and values that carry a password
    "NVIDIA_API_KEY", "COCKPIT_TOKEN", "TORCH_HUB_TOKEN", "UV_INDEX_PRIVATE_PASSWORD",
    "CUDA_AUTH", "CONDA_CREDENTIALS", "HF_HOME",
]


def test_training_env_is_an_allow_list_that_drops_secrets(monkeypatch):
    for name in SECRETS:
        monkeypatch.setenv(name, "postgres://user:hunter2@db/x" if name == "HF_HOME" else "s3cr3t")
    kept = {"PATH": "/usr/bin", "HOME": "/home/u", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "VIRTUAL_ENV": "/v", "CUDA_VISIBLE_DEVICES": "0", "OMP_NUM_THREADS": "4",
            "TORCHINDUCTOR_CACHE_DIR": "/c", "TRITON_CACHE_DIR": "/t",
            "TOKENIZERS_PARALLELISM": "true", "UV_CACHE_DIR": "/uv", "COCKPIT_DATA_DIR": "/d"}
    for name, value in kept.items():
        monkeypatch.setenv(name, value)
    env = training_env({"COCKPIT_TIME_BUDGET": "60"})
    assert len(SECRETS) >= 30
    assert not set(SECRETS) & set(env), set(SECRETS) & set(env)
    assert not any("s3cr3t" in value or "hunter2" in value for value in env.values())
    assert {name: env.get(name) for name in kept} == kept
    assert env["COCKPIT_TIME_BUDGET"] == "60" and env["PYTHONUNBUFFERED"] == "1"


def test_passthrough_and_extra_come_after_the_checks(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "k")
    monkeypatch.setenv("SOME_SETTING", "v")
    env = training_env({"SOME_SETTING": "mine"}, passthrough=["WANDB_API_KEY", "NOT_SET_ANYWHERE"])
    assert env["WANDB_API_KEY"] == "k"  # the human asked for it by name
    assert env["SOME_SETTING"] == "mine" and "NOT_SET_ANYWHERE" not in env
    assert "WANDB_API_KEY" not in training_env()


# -- the watchdog: hostile runs -----------------------------------------------------------

def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting for its parent is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pids_in(log) -> list[int]:
    return [int(line.split()[1]) for line in log.read_text().splitlines()
            if line.startswith("pid ")]


ESCAPE = textwrap.dedent("""\
    import os, signal, sys, time
    def say(line):  # one write: lines of processes sharing the pipe never interleave
        os.write(1, (line + "\\n").encode())
    def escape():
        # a double fork into a session of its own that keeps the output pipe open
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                say(f"pid {os.getpid()}")
                while True:
                    say("still here")
                    time.sleep(0.2)
            os._exit(0)
        os.wait()
""")


@pytest.mark.slow
def test_a_setsid_child_that_holds_the_pipe_cannot_outlive_the_hard_timeout(tmp_path):
    code = ESCAPE + textwrap.dedent("""\
        escape()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say(f"pid {os.getpid()}")
        time.sleep(300)
    """)
    started = time.monotonic()
    result = LocalRunner(kill_grace=0.5).run(py(code, tmp_path), cwd=tmp_path,
                                             log_path=tmp_path / "run.log", timeout=1,
                                             run_id=f"escape-1-{UNIQUE}")
    assert result.timed_out and result.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 5  # timeout 1 s + grace 0.5 s, not 300 s
    pids = pids_in(tmp_path / "run.log")
    assert len(pids) == 2 and not any(alive(pid) for pid in pids)
    assert marked_processes(f"escape-1-{UNIQUE}") == []


def test_leftovers_of_a_run_that_exited_are_killed(tmp_path):
    code = ESCAPE + "escape()\nsay(f'pid {os.getpid()}')\n"
    result = LocalRunner().run(py(code, tmp_path), cwd=tmp_path, log_path=tmp_path / "run.log",
                               timeout=30, run_id=f"exited-1-{UNIQUE}")
    assert result.returncode == 0 and not result.timed_out and result.seconds < 5
    assert not any(alive(pid) for pid in pids_in(tmp_path / "run.log"))
    assert marked_processes(f"exited-1-{UNIQUE}") == []


@pytest.mark.slow
@pytest.mark.skipif(not reaper_available(), reason="no subreaper on this platform")
@pytest.mark.parametrize("how", ["exits", "times out"])
def test_an_unmarked_escape_dies_with_the_run(tmp_path, how):
    """env -i drops the marker and setsid the group, the parent exits: the reaper still
    holds it (it was the watchdog's blind spot without a sandbox)."""
    (tmp_path / "escapee.py").write_text(
        "import os, time\nprint('pid', os.getpid(), flush=True)\ntime.sleep(60)\n")
    code = ("import subprocess, sys, time\n"
            f"subprocess.Popen(['setsid', 'sh', '-c', f'env -i {{sys.executable}} "
            f"{tmp_path / 'escapee.py'} &'])\n"
            + ("time.sleep(0.5)\n" if how == "exits" else "time.sleep(60)\n"))
    runner = LocalRunner(drain_grace=0.3, kill_grace=0.3)
    result = runner.run(py(code, tmp_path), cwd=tmp_path, log_path=tmp_path / "run.log",
                        timeout=30 if how == "exits" else 1)
    (escaped,) = pids_in(tmp_path / "run.log")
    assert result.seconds < 5 and result.timed_out == (how != "exits")
    assert result.returncode == (0 if how == "exits" else -signal.SIGTERM)
    assert not alive(escaped), Path(f"/proc/{escaped}/cmdline").read_text()


@pytest.mark.slow
def test_a_flood_of_output_cannot_hold_off_the_hard_timeout(tmp_path):
    code = ("import signal, sys\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "while True: sys.stdout.write('\\rstep 1 | loss 3.0' * 1000)\n")
    seen = []
    started = time.monotonic()
    result = LocalRunner(kill_grace=0.3).run(py(code, tmp_path), cwd=tmp_path,
                                             log_path=tmp_path / "run.log", timeout=1,
                                             on_output=lambda text: seen.append(len(text)))
    assert result.timed_out and result.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 5 and sum(seen) > 0
    (tmp_path / "run.log").unlink()


def test_stop_kills_a_setsid_child_too(tmp_path):
    code = ESCAPE + "escape()\nimport time; time.sleep(60)\n"
    runner = LocalRunner()
    threading.Timer(0.5, runner.stop).start()
    result = runner.run(py(code, tmp_path), cwd=tmp_path, log_path=tmp_path / "run.log",
                        timeout=60, run_id=f"stop-1-{UNIQUE}")
    assert result.stopped and not result.timed_out and result.seconds < 10
    assert marked_processes(f"stop-1-{UNIQUE}") == []


@pytest.mark.parametrize("timeout", [1e11, float("inf"), float("nan")])
def test_a_huge_timeout_does_not_crash_the_runner(tmp_path, timeout):
    result = LocalRunner().run(py("print('ok')", tmp_path), cwd=tmp_path,
                               log_path=tmp_path / "run.log", timeout=timeout)
    assert result.returncode == 0 and not result.timed_out


def test_every_process_carries_the_run_marker(tmp_path):
    code = ("import os, subprocess, sys\nprint(os.environ['COCKPIT_RUN'])\n"
            "subprocess.run([sys.executable, '-c', "
            "'import os; print(os.environ[\"COCKPIT_RUN\"])'])")
    result = LocalRunner().run(py(code, tmp_path), cwd=tmp_path, log_path=tmp_path / "run.log",
                               timeout=30, run_id="marked-7")
    assert result.run_id == "marked-7"
    assert (tmp_path / "run.log").read_text().split() == ["marked-7", "marked-7"]
    fresh = LocalRunner().run(py("pass", tmp_path), cwd=tmp_path, log_path=tmp_path / "b.log",
                              timeout=30)
    assert len(fresh.run_id) == 32  # a fresh uuid when the caller names none


def test_a_run_killed_by_a_realtime_signal_is_a_crash_with_its_number(tmp_path):
    code = "import os\nprint('Traceback: about to die', flush=True)\nos.kill(os.getpid(), 40)"
    result = LocalRunner().run(py(code, tmp_path), cwd=tmp_path, log_path=tmp_path / "run.log",
                               timeout=30)
    assert result.returncode == -40
    text = read_tail(tmp_path / "run.log")
    reason = crash_cause(result, text, parse_summary(text), "val_bpb", 60)[1]
    assert reason == "killed by signal 40: Traceback: about to die"
    killed = LocalRunner().run(py("import os\nos.kill(os.getpid(), 9)", tmp_path), cwd=tmp_path,
                               log_path=tmp_path / "k.log", timeout=30)
    assert crash_cause(killed, "", {}, "val_bpb", 60)[1] == "killed by SIGKILL: no output"


# -- leftovers of an interrupted run (a restarted cockpit cleans up) ----------------------

LEFTOVERS = ESCAPE + textwrap.dedent("""\
    import subprocess
    escape()  # a setsid grandchild
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    say(f"pid {worker.pid}")  # a child in the group; its leader exits now
""")


def start_interrupted_run(tmp_path, run_id: str) -> tuple[int, list[int]]:
    """A run whose cockpit died: its group's leader has exited, two processes remain."""
    script = tmp_path / "leftovers.py"
    script.write_text(LEFTOVERS)
    leader = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                              start_new_session=True, env={**os.environ, "COCKPIT_RUN": run_id})
    pids = []
    while len(pids) < 2:
        line = leader.stdout.readline()
        pids += [int(line.split()[1])] if line.startswith(b"pid ") else []
    leader.wait()
    leader.stdout.close()
    return leader.pid, pids


def test_kill_leftovers_finds_a_group_without_its_leader_and_escaped_children(tmp_path):
    pgid, pids = start_interrupted_run(tmp_path, f"interrupted-1-{UNIQUE}")
    assert all(alive(pid) for pid in pids)
    assert kill_leftovers(f"interrupted-1-{UNIQUE}", pgid) == 2
    time.sleep(0.1)
    assert not any(alive(pid) for pid in pids)
    assert kill_leftovers(f"interrupted-1-{UNIQUE}", pgid) == 0


def test_kill_leftovers_never_touches_a_process_without_the_marker(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             start_new_session=True,
                             env={**os.environ, "COCKPIT_RUN": "someone-else"})
    try:
        # its pid as if a journaled run's group id had been reused
        assert kill_leftovers(f"interrupted-2-{UNIQUE}", other.pid) == 0
        assert kill_leftovers("someone-els", other.pid) == 0  # a prefix is not the marker
        time.sleep(0.1)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


# -- a run's log: bounded reads ---------------------------------------------------------

FLOOD_DRIVER = textwrap.dedent("""\
    import json, sys
    from pathlib import Path
    from cockpit.runners.local import LocalRunner
    from cockpit.runners.outcome import crash_cause, parse_summary
    from cockpit.workspace.logs import read_tail
    def peak_rss_mb():
        # This process's own high-water mark. getrusage's ru_maxrss would also count the
        # memory of the (large) test process it was forked from, which exec does not reset.
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    workdir, command = Path(sys.argv[1]), sys.argv[2]
    seen = [0]
    def on_output(text):
        seen[0] += len(text)
    result = LocalRunner().run(command, cwd=workdir, log_path=workdir / "run.log", timeout=120,
                               on_output=on_output)
    text = read_tail(workdir / "run.log")
    summary = parse_summary(text)
    print(json.dumps({"summary": summary, "seen": seen[0], "returncode": result.returncode,
                      "reason": crash_cause(result, text, summary, "val_bpb", 120)[1],
                      "log_bytes": (workdir / "run.log").stat().st_size,
                      "peak_rss_mb": peak_rss_mb()}))
""")
FLOOD = textwrap.dedent("""\
    import sys
    chunk = ("\\rstep 00123 (41.0%) | loss: 3.912345 | tok/sec: 52,480" * 20000).encode()
    for _ in range(300 * 2**20 // len(chunk) + 1):
        sys.stdout.buffer.write(chunk)
    print("\\n---\\nval_bpb:          0.997900\\nnum_steps:        953")
""")


def test_a_300_mb_flood_of_progress_keeps_memory_bounded(tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(FLOOD_DRIVER)
    out = subprocess.run([sys.executable, str(driver), str(tmp_path), py(FLOOD, tmp_path)],
                         capture_output=True, text=True, timeout=120)
    (tmp_path / "run.log").unlink(missing_ok=True)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["log_bytes"] > 300 * 2**20 and report["seen"] > 300 * 2**20
    assert report["summary"] == {"val_bpb": 0.9979, "num_steps": 953.0}
    assert report["returncode"] == 0 and report["reason"] == ""
    assert report["peak_rss_mb"] < 150, report


def test_read_tail_starts_at_a_whole_line(tmp_path):
    log = tmp_path / "run.log"
    log.write_bytes(b"x" * 1000 + b"\rstep 9 | loss 2\n---\nval_bpb: 1.5\n")
    assert read_tail(log, max_bytes=30) == "---\nval_bpb: 1.5\n"
    assert read_tail(log, max_bytes=10**6).startswith("x" * 1000)
    assert read_tail(tmp_path / "missing.log") == ""


def test_the_environment_filter_closes_each_class_of_secret(monkeypatch):
    """Names with a secret's word under an allowed prefix, cockpit's own namespace, any URL,
    a well-known token's shape: none reaches a run. Loader variables never do either."""
    leaks = {
        "TORCH_HUB_PAT": "abc123", "CUDA_JWT": "abc", "NCCL_BEARER": "abc",
        "PYTHON_SESSION": "abc", "OMP_SIG": "abc", "TRITON_SIGNING": "abc",
        "COCKPIT_NTFY": "ntfys://ntfy.sh/my-private-topic", "COCKPIT_NOTIFY_URLS": "x",
        "CONDA_CHANNELS": "https://conda.example.com/t/TOKEN123/main",
        "CONDA_PKGS": "s3://bucket/path", "PYTHONWARNINGS_EXTRA": "tgram://123:TOKEN/456",
        "TORCH_MIRROR": "ghp_0123456789abcdefghij0123456789ABCD",
        "NVIDIA_HOOK": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "MKL_X": "AKIAABCDEFGHIJKLMNOP",
        "CUDA_PEM": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc", "TORCH_G": "AIza" + "x" * 35,
        "NVIDIA_NGC": "nvapi-abcdef", "CONDA_AZ": "DefaultEndpointsProtocol=https;AccountKey=a",
        "PYTHON_PROXY": "user:hunter2@proxy.corp:8080",
    }
    for name, value in leaks.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LD_PRELOAD", "/tmp/evil.so")
    monkeypatch.setenv("LD_LIBRARY_PATH", ":/usr/local/cuda/lib64:lib:.")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-5a6c1e4d-8b1f-4a67-9d3e-6f0a2b4c8d10")
    monkeypatch.setenv("COCKPIT_DATA_DIR", "/data")
    env = training_env(passthrough=["LD_PRELOAD", "TORCH_HUB_PAT"])
    assert not set(leaks) - {"TORCH_HUB_PAT"} & set(env), set(leaks) & set(env)
    assert env["TORCH_HUB_PAT"] == "abc123"  # named by the human: passed as it is
    assert "LD_PRELOAD" not in env  # never, even named
    assert env["LD_LIBRARY_PATH"] == "/usr/local/cuda/lib64"  # no worktree-relative entry
    assert env["CUDA_VISIBLE_DEVICES"].startswith("GPU-") and env["COCKPIT_DATA_DIR"] == "/data"


def test_the_disk_floor_counts_files_too(tmp_path, monkeypatch):
    """A run that creates empty files until none can be made leaves the bytes free: the floor
    looks at the files left as well."""
    import os as real_os

    from cockpit.runners.disk import MB, MIN_FREE_INODES, DiskFloor

    stats = real_os.statvfs(tmp_path)
    floor = DiskFloor([tmp_path], 1 * MB)
    assert floor.short() == ""

    class NoInodes:
        f_bavail, f_frsize, f_files, f_favail = stats.f_bavail, stats.f_frsize, 10**6, 12

    monkeypatch.setattr(real_os, "statvfs", lambda path: NoInodes)
    assert floor.short() == f"12 files left on the disk of {tmp_path}"
    assert MIN_FREE_INODES > 12
