"""Every user mistake is one line on stderr and exit code 2, never a traceback: a sweep of
bad arguments for every command and bad values for every config key."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from support import FAKE_TRAIN, make_workspace

from cockpit.cli.main import main
from cockpit.workspace.config import Config

# (arguments, words the line must contain)
BAD_ARGUMENTS = [
    (["run", "--headless", "--experiments", "0"], "--experiments must be at least 1"),
    (["run", "--headless", "--experiments", "-1"], "--experiments must be at least 1"),
    (["run", "--headless", "--budget", "abc"], "invalid int value"),
    (["run", "--headless", "--budget", "0"], "time_budget must be between"),
    (["run", "--headless", "--budget", "99999999999"], "time_budget must be between"),
    (["run", "--headless", "--timeout", "-5"], "timeout must be between"),
    (["run", "--headless", "--timeout", "99999999999"], "timeout must be between"),
    (["run", "--headless", "--workers", "-1"], "workers must be between"),
    (["run", "--headless", "--runner", "nope"], "invalid choice"),
    (["run", "--headless", "--agent", "nope"], "invalid choice"),
    (["run", "--headless", "--tag", "a b"], "not usable in a branch name"),
    (["run", "--headless", "--tag", ".."], "not usable in a branch name"),
    (["run", "--headless", "--tag", "x.lock"], "not usable in a branch name"),
    (["run", "--headless", "--detach"], "not allowed with argument"),
    (["run", "--headless", "--agent", "llm"], "the llm agent needs a model"),
    (["run", "--headless", "--agent", "command"], "the command agent needs a command"),
    (["-C", "train.py", "status"], "not a directory"),
    (["-C", "no/such/dir", "run"], "does not exist"),
    (["approve", "abc"], "invalid int value"),
    (["approve", "3"], "no cockpit session is running"),
    (["reject", "--reason"], "expected one argument"),
    (["steer"], "the following arguments are required"),
    (["notes", "--drop", "x"], "invalid int value"),
    (["pause"], "no cockpit session is running"),
    (["stop", "--later"], "unrecognized arguments"),
    (["confirm", "--runs", "1"], "--runs must be at least 2"),
    (["confirm"], "no session"),
    (["noise", "--runs", "-2"], "--runs must be at least 2"),
    (["confirm", "--top", "-1"], "--top must be 0 or more"),
    (["finalize", "--branch", "bad name"], "no session"),
    (["replay", "--tag", "a b"], "not usable in a branch name"),
    (["report", "--tag", "nope"], "no session named nope"),
    (["status", "--bogus"], "unrecognized arguments"),
    (["frobnicate"], "unrecognized arguments"),
    (["init"], "the following arguments are required"),
    (["init", "train.py"], "exists and is not a directory"),
    (["doctor", "--agent", "gpt"], "invalid choice"),
]


def one_line(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return make_workspace(tmp_path_factory.mktemp("mistakes") / "ws", train=FAKE_TRAIN)


@pytest.mark.parametrize("args, words", BAD_ARGUMENTS, ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_bad_arguments_are_one_line(ws, capsys, monkeypatch, args, words):
    monkeypatch.chdir(ws)
    code = main(args)
    captured = capsys.readouterr()
    assert code == 2, (code, captured.out, captured.err)
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert words in lines[0], lines[0]


# (section, key) -> values that must each be refused in one line naming the key
BAD_VALUES = {
    "experiment": {"train_command": ["", 3, []], "time_budget": [0, -1, 1.5, "60", 10**12, True],
                   "timeout": [-1, 10**12, "x"], "editable": ["", 5, "../outside.py",
                                                          "/etc/passwd", ".git/config",
                                                          "program.md", "prepare.py"],
                   "prepare_command": [1], "fixed": ["prepare.py", [1]], "data_dir": [1],
                   "evaluator": [1, True],
                   "share": ["all", [3]], "env": ["X", ["1BAD"], ["A-B"]],
                   "max_log_mb": [0, -1, 1.5, "16"], "min_free_mb": [-1, "100", 10**9]},
    "metric": {"name": ["", 1], "direction": ["down", 1], "min": ["low", True],
               "max": [float("nan"), "high"]},
    "agent": {"kind": ["gpt"], "model": [1], "api_base": [2], "temperature": [-1, 3, "hot"],
              "request_timeout": [0, float("inf")], "retries": [-1, 1000], "backoff": [-1],
              "max_output_tokens": [0], "prompt_tokens": [10], "max_attempts": [0],
              "repair_attempts": [-1], "max_cost_usd": [-1, float("nan")], "command": [1],
              "command_timeout": [0], "concurrency": [0, 100]},
    "judge": {"baseline_runs": [-1, 10**6], "min_delta": [-1, "x", float("nan"), True],
              "noise_multiple": [-1, float("nan")], "keep_reruns": [-1],
              "second_look": [-0.1, 1.5, "half"], "disturbed": [-0.1, 1.5, "busy"],
              "trust": ["printed", 1]},
    "early_stop": {"enabled": ["yes", 1], "shadow": ["no", 1], "min_progress": [-1, 101],
                   "margin": [-1, float("inf")]},
    "sandbox": {"mode": ["strict", True], "network": ["yes"], "read_only": ["/data"],
                "writable": [5]},
    "runner": {"kind": ["gpu"], "workers": [-1, 10**5], "address": [1]},
    "notify": {"urls": ["json://x", [1]], "events": [["sometimes"], "best"],
               "crash_streak": [-1, 10**6], "stalled_experiments": [-1],
               "stalled_hours": [-1, float("nan")], "approval_minutes": [-1],
               "summary_at": ["8am", 8], "min_interval": [-1], "retries": [-1, 1000],
               "backoff": [-1]},
    "research": {"plateau": [-1, "x", 1.5, True, 10**9]},
    "tracking": {"tensorboard": ["yes", 1], "wandb": ["true"], "wandb_project": ["", 1],
                 "wandb_mode": ["cloud", True], "mlflow": [1], "mlflow_uri": [5]},
    "serve": {"host": ["", 1], "port": [-1, 70000, "80"]},
}
CASES = [(section, key, value) for section, keys in BAD_VALUES.items()
         for key, values in keys.items() for value in values]


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value != value:
        return "nan"
    if value == float("inf"):
        return "inf"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)


def test_every_config_key_is_swept():
    swept = {(s, k) for s, keys in BAD_VALUES.items() for k in keys}
    config = Config()
    every = {(f.name, g.name) for f in dataclasses.fields(config) if f.name != "keys"
             for g in dataclasses.fields(getattr(config, f.name))}
    assert every <= swept, every - swept


@pytest.mark.parametrize("section, key, value", CASES,
                         ids=[f"{s}.{k}={v!r}" for s, k, v in CASES])
def test_bad_config_values_are_one_line(ws, capsys, monkeypatch, section, key, value):
    monkeypatch.chdir(ws)
    (ws / "cockpit.toml").write_text(f"[{section}]\n{key} = {toml_value(value)}\n")
    try:
        code = main(["run", "--headless", "--experiments", "1"])
    finally:
        (ws / "cockpit.toml").unlink()
    captured = capsys.readouterr()
    assert code == 2, (code, captured.out[-500:])
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert key in lines[0], lines[0]


@pytest.mark.slow
def test_a_directory_named_cockpit_toml(ws):
    (ws / "cockpit.toml").mkdir()
    try:
        result = subprocess.run([sys.executable, "-m", "cockpit", "doctor"], cwd=ws,
                                capture_output=True, text=True, timeout=120)
        assert "cockpit.toml is a directory" in result.stdout
        line = one_line(subprocess.run([sys.executable, "-m", "cockpit", "run", "--headless"],
                                       cwd=ws, capture_output=True, text=True, timeout=60))
        assert "is a directory" in line
    finally:
        (ws / "cockpit.toml").rmdir()


def test_a_train_py_that_does_not_parse(tmp_path):
    ws = make_workspace(tmp_path / "ws", train=FAKE_TRAIN + "def broken(:\n")
    line = one_line(subprocess.run([sys.executable, "-m", "cockpit", "run", "--headless"],
                                   cwd=ws, capture_output=True, text=True, timeout=60))
    assert "train.py does not parse (line" in line and "fix it and commit" in line


@pytest.mark.slow
def test_finalize_refuses_branch_names_git_refuses(tmp_path):
    from support import cockpit

    ws = make_workspace(tmp_path / "ws", train=FAKE_TRAIN)
    assert cockpit("run", "--headless", "--experiments", "4", "--tag", "f", cwd=ws).returncode == 0
    for name in ("bad name", "HEAD", "-x", "a..b", "main", "x.lock", "a/"):
        line = one_line(cockpit("finalize", "--branch", name, cwd=ws))
        assert "branch" in line, line
    import git

    assert "HEAD" not in [h.name for h in git.Repo(ws).heads]


@pytest.mark.slow
def test_records_left_malformed_are_repaired_not_glued(tmp_path):
    """results.tsv without its final newline, journal lines that are JSON but no events."""
    from support import cockpit, results_rows

    ws = make_workspace(tmp_path / "ws", train=FAKE_TRAIN)
    assert cockpit("run", "--headless", "--experiments", "2", "--tag", "r", cwd=ws).returncode == 0
    results = ws / "results.tsv"
    results.write_text(results.read_text().rstrip("\n"))  # a human's editor dropped it
    journal = ws / ".cockpit" / "r" / "journal.jsonl"
    with open(journal, "a") as f:
        f.write("42\nnull\n{}\n[1, 2]\n")
    result = cockpit("run", "--headless", "--experiments", "1", cwd=ws)
    assert result.returncode == 0, result.stderr
    rows = results_rows(ws)
    assert all(len(row) == 5 for row in rows) and len(rows) == 3, rows
    assert len({tuple(r) for r in rows}) == len(rows)  # no row written twice
    from cockpit.workspace.journal import Journal

    assert [e["event"] for e in Journal(journal).read()].count("session") >= 2


# Settings that would undo a protection: refused in one line by `run`, a FIX in doctor.
FOOTGUNS = [
    ('[sandbox]\nwritable = ["/"]\n', "[sandbox] writable = '/'"),
    ('[sandbox]\nwritable = ["~"]\n', "[sandbox] writable = '~'"),
    ('[sandbox]\nwritable = ["~/.config/x"]\n', "plant code your shell"),
    ('[sandbox]\nwritable = ["."]\n', "change your checkout"),
    ('[sandbox]\nwritable = [".git"]\n', "change the repository"),
    ('[sandbox]\nread_only = ["."]\n', "the session's key, socket and journal"),
    ('[sandbox]\nread_only = [".cockpit"]\n', "the session's key, socket and journal"),
    ('[experiment]\nshare = [".git"]\n', "[experiment] share = '.git'"),
    ('[experiment]\nshare = [".cockpit"]\n', "[experiment] share = '.cockpit'"),
    ('[experiment]\nshare = ["../elsewhere"]\n', "a path outside"),
    ('[experiment]\ndata_dir = "/"\n', "[experiment] data_dir = '/' is not a data folder"),
    ('[experiment]\ndata_dir = "."\n', "is not a data folder"),
    ('[experiment]\nenv = ["LD_PRELOAD"]\n', "load a library into the process that isolates"),
    # the same, spelled otherwise
    ('[experiment]\nshare = ["./.git"]\n', "[experiment] share = './.git'"),
    ('[experiment]\nshare = [".cockpit/."]\n', "[experiment] share = '.cockpit/.'"),
    ('[experiment]\nshare = ["cockpit.toml"]\n', "[experiment] share = 'cockpit.toml'"),
    ('[sandbox]\nwritable = ["~/.cache/uv"]\n', "a package manager's cache"),
    ('[sandbox]\nwritable = ["~/miniconda3/pkgs"]\n', "a package manager's cache"),
    # values no filesystem takes
    ('[sandbox]\nwritable = ["a\\u0000b"]\n', "NUL character"),
    ('[experiment]\ndata_dir = "a\\u0000b"\n', "NUL character"),
    ('[experiment]\nfixed = ["a\\u0000b"]\n', "NUL character"),
    (f'[experiment]\nshare = ["{"a" * 5000}"]\n', "too long for a filesystem"),
]


@pytest.mark.slow
@pytest.mark.parametrize("toml, says", FOOTGUNS)
def test_settings_that_undo_a_protection_are_refused(tmp_path, toml, says):
    ws = make_workspace(tmp_path / "ws", extra={"cockpit.toml": toml})
    result = subprocess.run([sys.executable, "-m", "cockpit", "run", "--headless"], cwd=ws,
                            capture_output=True, text=True, timeout=60)
    assert one_line(result).count(says) == 1, result.stderr
    assert not (ws / ".cockpit").exists() or not list((ws / ".cockpit").glob("*/journal.jsonl"))


@pytest.mark.slow
def test_doctor_names_the_footguns_and_warns_of_secrets_passed_on(tmp_path):
    toml = ('[sandbox]\nwritable = ["~"]\n'
            '[experiment]\nenv = ["AWS_SECRET_ACCESS_KEY", "LD_PRELOAD"]\n')
    ws = make_workspace(tmp_path / "ws", extra={"cockpit.toml": toml})
    doctor = subprocess.run([sys.executable, "-m", "cockpit", "doctor"], cwd=ws,
                            capture_output=True, text=True, timeout=180)
    lines = doctor.stdout.splitlines()
    assert doctor.returncode == 1
    assert any(x.startswith("FIX") and "writable = '~'" in x for x in lines)
    assert any(x.startswith("FIX") and "'LD_PRELOAD'" in x for x in lines)
    assert any(x.startswith("warn") and "AWS_SECRET_ACCESS_KEY" in x and "passes a secret" in x
               for x in lines)
    (ws / "cockpit.toml").write_text('[experiment]\nenv = ["WANDB_API_KEY"]\n'
                                     '[judge]\nbaseline_runs = 0\n[sandbox]\nmode = "off"\n')
    run = subprocess.run([sys.executable, "-m", "cockpit", "run", "--headless",
                          "--experiments", "1"], cwd=ws, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert "warning: [experiment] env = ['WANDB_API_KEY'] passes a secret" in run.stderr
