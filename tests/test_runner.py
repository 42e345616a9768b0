"""The subprocess runner: streaming, its own process group, the watchdog's TERM then KILL."""
from __future__ import annotations

import os
import sys
import threading
import time

from cockpit.runners.local import LocalRunner, split_command, training_env


def py(code: str, where) -> str:
    """A command running `code` as a script (real files, as train.py would be)."""
    script = where / f"script{len(list(where.glob('script*.py')))}.py"
    script.write_text(code)
    return f"python {script}"


def test_streams_output_to_log_and_callback(tmp_path):
    chunks = []
    code = "import sys\nfor i in range(3): print(f'line {i}', flush=True)\nsys.stderr.write('err\\n')"
    result = LocalRunner().run(py(code, tmp_path), cwd=tmp_path, log_path=tmp_path / "run.log",
                               timeout=30, on_output=chunks.append)
    assert result.returncode == 0 and not result.timed_out
    log = (tmp_path / "run.log").read_text()
    assert log == "line 0\nline 1\nline 2\nerr\n"
    assert "".join(chunks) == log


def test_watchdog_escalates_to_sigkill_for_a_run_that_ignores_sigterm(tmp_path):
    code = ("import signal, time, subprocess\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "child = subprocess.Popen(['sleep', '300'])\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(300)")
    started = time.monotonic()
    result = LocalRunner(kill_grace=0.5).run(py(code, tmp_path), cwd=tmp_path, log_path=tmp_path / "run.log",
                                              timeout=1)
    assert result.timed_out and result.returncode == -9
    assert time.monotonic() - started < 10
    child = int((tmp_path / "run.log").read_text().split()[0])
    time.sleep(0.2)
    assert not os.path.exists(f"/proc/{child}") or "Z" in open(f"/proc/{child}/stat").read().split()[2]


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


def test_bare_python_means_this_python():
    assert split_command("python train.py --x 'a b'") == [sys.executable, "train.py", "--x", "a b"]
    assert split_command("uv run train.py")[0] == "uv"


def test_training_env_drops_secrets(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    monkeypatch.setenv("GITHUB_TOKEN", "x")
    monkeypatch.setenv("MY_SECRET", "x")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")  # not a secret: keeps its value
    env = training_env({"COCKPIT_TIME_BUDGET": "60"})
    assert not {"ANTHROPIC_API_KEY", "GITHUB_TOKEN", "MY_SECRET"} & set(env)
    assert env["TOKENIZERS_PARALLELISM"] == "true" and env["COCKPIT_TIME_BUDGET"] == "60"
