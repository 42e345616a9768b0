"""The command agent: small scripts stand in for a coding-agent CLI, driving the real loop."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import git
import pytest
from support import FAKE_TRAIN, make_workspace, read_journal, results_rows

from cockpit.session.coordinator import Coordinator
from cockpit.workspace.config import Config

# A stand-in CLI: reads the prompt (a file argument, or stdin), then behaves as MODE says.
FAKE_CLI = '''\
import pathlib, sys, time
mode, calls = sys.argv[1], pathlib.Path(sys.argv[2])
prompt = pathlib.Path(sys.argv[3]).read_text() if len(sys.argv) > 3 else sys.stdin.read()
calls.write_text(calls.read_text() + "call\\n" if calls.exists() else "call\\n")
pathlib.Path(str(calls) + ".prompt").write_text(prompt)
train = pathlib.Path("train.py")
if mode == "hang":
    time.sleep(60)
if mode == "syntax_first" and calls.read_text().count("call") == 1:
    train.write_text(train.read_text() + "def broken(:\\n")
    sys.exit(0)
if mode == "also_prepare":
    pathlib.Path("prepare.py").write_text("# rewritten by the agent\\n")
    pathlib.Path("notes.txt").write_text("scratch notes\\n")
if mode == "commits":
    import subprocess
    pathlib.Path("extra.py").write_text("x = 1\\n")
    subprocess.run(["git", "add", "extra.py"])
    subprocess.run(["git", "commit", "-qm", "the agent commits", "--no-verify"],
                   env={"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a",
                        "GIT_COMMITTER_EMAIL": "a@b", "PATH": "/usr/bin:/bin"})
    subprocess.run(["git", "branch", "-f", "feature", "HEAD"], env={"PATH": "/usr/bin:/bin"})
train.write_text(train.read_text().replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.003"))
print("HYPOTHESIS: a lower learning rate is closer to the optimum")
print("DESCRIPTION: LR 0.01 -> 0.003 by the CLI")
'''  # noqa: E501 embedded CLI script kept verbatim


def setup(tmp_path, mode: str, stdin: bool = False, **agent):
    prepare = "print('data ready')\n"
    ws = make_workspace(tmp_path / "ws", extra={"prepare.py": prepare})
    cli = tmp_path / "fake_cli.py"
    cli.write_text(FAKE_CLI)
    calls = tmp_path / "calls.txt"
    config = Config()
    config.agent.kind = "command"
    config.agent.command = (f"{sys.executable} {cli} {mode} {calls}"
                            + ("" if stdin else " {prompt_file}"))
    for key, value in agent.items():
        setattr(config.agent, key, value)
    return ws, config, calls


def attempts(ws):
    return [e for e in read_journal(ws, "t") if e["event"] == "attempt"]


def test_cli_edit_becomes_the_proposal(tmp_path):
    ws, config, _calls = setup(tmp_path, "plain")
    loop = Coordinator(ws, config, "t")
    assert loop.run(2).why == "ran 2 experiments as asked"
    exp = loop.state.experiments[1]
    assert exp.description == "LR 0.01 -> 0.003 by the CLI" and exp.status == "keep"
    assert exp.hypothesis == "a lower learning rate is closer to the optimum"
    prompt = (tmp_path / "calls.txt.prompt").read_text()
    assert "Make val_bpb low." in prompt and "editing train.py in place" in prompt
    [attempt] = attempts(ws)
    assert (attempt["accepted"] and attempt["reverted"] == []
            and attempt["prompt_file"].endswith(".prompt.md"))
    assert git.Repo(ws).commit(exp.commit).message.strip() == exp.description


def test_prompt_arrives_on_stdin_without_a_placeholder(tmp_path):
    ws, config, _calls = setup(tmp_path, "plain", stdin=True)
    Coordinator(ws, config, "t").run(2)
    assert "# Research program" in (tmp_path / "calls.txt.prompt").read_text()


def test_other_files_it_touches_are_reverted_and_reported(tmp_path):
    ws, config, _calls = setup(tmp_path, "also_prepare")
    (ws / "program.md").write_text("# program\nMy unsaved words.\n")  # the human's, uncommitted
    lines = []
    loop = Coordinator(ws, config, "t")
    loop.observers.append(lambda m: lines.extend((e["event"], e) for e in m["events"])
                          if m["type"] == "journal" else None)
    loop.run(2)
    assert (ws / "prepare.py").read_text() == "print('data ready')\n"
    assert not (ws / "notes.txt").exists()
    # it worked in a worktree of cockpit's: the human's checkout is as the human left it
    assert (ws / "program.md").read_text() == "# program\nMy unsaved words.\n"
    assert (ws / "train.py").read_text() == FAKE_TRAIN
    [attempt] = attempts(ws)
    assert attempt["accepted"] and attempt["reverted"] == ["notes.txt", "prepare.py"]
    assert loop.state.experiments[1].status == "keep"
    changed = git.Repo(ws).git.show("--name-only", "--format=", loop.state.experiments[1].commit)
    assert changed.split() == ["train.py"]
    assert any(k == "attempt" and d["reverted"] for k, d in lines)


def test_a_syntax_error_is_sent_back_and_never_committed(tmp_path):
    ws, config, _calls = setup(tmp_path, "syntax_first")
    loop = Coordinator(ws, config, "t")
    loop.run(2)
    first, second = attempts(ws)
    assert not first["accepted"] and "train.py would not parse" in first["problem"]
    assert second["accepted"]
    assert "Your previous attempt was refused" in (tmp_path / "calls.txt.prompt").read_text()
    assert "broken" not in (ws / "train.py").read_text()
    assert all("def broken" not in git.Repo(ws).git.show(c.hexsha, "--format=")
               for c in git.Repo(ws).iter_commits())


@pytest.mark.slow
def test_a_hanging_cli_is_killed_and_the_headless_run_pauses(tmp_path):
    ws, config, calls = setup(tmp_path, "hang", max_attempts=1, command_timeout=1)
    start = time.monotonic()
    loop = Coordinator(ws, config, "t")
    why = loop.run(3).why
    assert time.monotonic() - start < 30
    assert why.startswith("paused: 3 proposals in a row failed") and "command_timeout" in why
    assert [a["accepted"] for a in attempts(ws)] == [False, False, False]
    assert (ws / "train.py").read_text() == FAKE_TRAIN and not git.Repo(ws).is_dirty()
    leftover = subprocess.run(["pgrep", "-f", f"fake_cli.py hang {calls}"], capture_output=True,
                              text=True)
    assert leftover.stdout.strip() == ""
    assert len(results_rows(ws)) == 1


def test_missing_cli_is_one_line(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    from support import cockpit

    result = cockpit("run", "--headless", "--agent", "command", "--agent-cmd",
                     "no-such-agent-cli -p", cwd=ws, env={"PATH": os.environ["PATH"]})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "cockpit: command agent: the command agent's program `no-such-agent-cli` is not on PATH; "
        "install it or fix [agent] command"]


def test_commits_and_branches_it_makes_are_dropped_or_reported(tmp_path):
    ws, config, _calls = setup(tmp_path, "commits")
    repo = git.Repo(ws)
    repo.create_head("feature")
    main = repo.commit("main").hexsha
    loop = Coordinator(ws, config, "t")
    loop.run(2)
    [attempt] = attempts(ws)
    reverted = " ".join(attempt["reverted"])
    assert "its commits (dropped" in reverted and "branch refs/heads/feature" in reverted
    exp = loop.state.experiments[1]
    # what it proposed is its change to train.py alone, committed by cockpit on the best
    assert repo.commit(exp.commit).parents[0].hexsha == loop.state.experiments[0].commit
    assert repo.git.show("--name-only", "--format=", exp.commit).split() == ["train.py"]
    assert repo.commit("main").hexsha == main  # the human's checked-out branch: git refuses
