"""The human's files and commits are never overwritten or dropped: a file of theirs named
like one of cockpit's records is refused in one line, a commit of theirs on a session's
branch is measured as a change of theirs (or refused, naming it), before a session, between
two, or while one runs."""
from __future__ import annotations

import git
import pytest
from support import FAKE_TRAIN, ScriptedAgent, cockpit, make_workspace, read_journal, run_session

from cockpit.workspace.config import Config

QUICK = "[judge]\nbaseline_runs = 0\n[sandbox]\nmode = \"off\"\n"
MINE = "# My experiments\n\nnotes I keep by hand\n"


def commit(ws, message: str, **files: str) -> str:
    repo = git.Repo(ws)
    for name, text in files.items():
        (ws / name).write_text(text)
    repo.index.add(list(files))
    actor = git.Actor("human", "human@localhost")
    return repo.index.commit(message, author=actor, committer=actor).hexsha


@pytest.mark.slow
@pytest.mark.parametrize("tracked", [True, False])
def test_an_experiments_md_of_the_humans_is_never_replaced(tmp_path, tracked):
    ws = make_workspace(tmp_path / "ws", extra={"cockpit.toml": QUICK})
    (ws / "experiments.md").write_text(MINE)
    if tracked:
        commit(ws, "my notes", **{"experiments.md": MINE})
    result = cockpit("run", "--headless", "--experiments", "1", cwd=ws)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "experiments.md is not cockpit's" in result.stderr and "move it away" in result.stderr
    assert (ws / "experiments.md").read_text() == MINE
    (ws / "experiments.md").rename(ws / "my-experiments.md")
    assert cockpit("run", "--headless", "--experiments", "1", cwd=ws).returncode == 0
    ours = (ws / "experiments.md").read_text()
    assert ours.startswith("<!-- written by cockpit") and "# Experiments: autoresearch/" in ours
    again = cockpit("run", "--headless", "--experiments", "2", cwd=ws)  # its own: rewritten
    assert again.returncode == 0, again.stderr


def test_an_earlier_cockpits_experiments_md_is_recognised(tmp_path):
    ws = make_workspace(tmp_path / "ws", extra={"cockpit.toml": QUICK})
    (ws / "experiments.md").write_text("# Experiments: autoresearch/nov3\n\n1 experiments\n")
    assert cockpit("run", "--headless", "--experiments", "1", cwd=ws).returncode == 0
    assert (ws / "experiments.md").read_text().startswith("<!-- written by cockpit")


def test_a_file_of_the_humans_put_there_mid_session_is_left_alone(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    config = Config()
    config.judge.baseline_runs = 0

    class Replacing(ScriptedAgent):
        def propose(self, ctx):
            (ws / "experiments.md").write_text(MINE)  # the human, between two results
            return super().propose(ctx)

    better = FAKE_TRAIN.replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.003")
    _coordinator, ending = run_session(ws, 3, agent=Replacing(better, better.replace(
        "0.003", "0.002")), config=config)
    assert ending.code == 0 and (ws / "experiments.md").read_text() == MINE
    said = [e for e in read_journal(ws, "t") if e["event"] == "not_ours"]
    assert len(said) == 1 and "experiments.md is yours now" in said[0]["why"]


@pytest.mark.slow
def test_report_never_replaces_the_humans_report_or_plot(tmp_path):
    ws = make_workspace(tmp_path / "ws", extra={"cockpit.toml": QUICK})
    assert cockpit("run", "--headless", "--experiments", "2", cwd=ws).returncode == 0
    assert cockpit("report", cwd=ws).returncode == 0  # its own files: written, then again
    assert cockpit("report", cwd=ws).returncode == 0
    (ws / "report.md").write_text("# My report\n")
    refused = cockpit("report", cwd=ws)
    assert refused.returncode == 2 and "report.md is not cockpit's" in refused.stderr
    assert "--out DIR" in refused.stderr and (ws / "report.md").read_text() == "# My report\n"
    (ws / "report.md").unlink()
    (ws / "progress.png").write_bytes(b"\x89PNG\r\n\x1a\nthe human's own plot")
    refused = cockpit("report", cwd=ws)
    assert refused.returncode == 2 and "progress.png is not cockpit's" in refused.stderr
    out = tmp_path / "elsewhere"
    out.mkdir()
    assert cockpit("report", "--out", str(out), cwd=ws).returncode == 0
    assert (out / "report.md").exists() and (out / "progress.png").exists()
    assert (ws / "progress.png").read_bytes().endswith(b"the human's own plot")


# -- the human's commits on a session's branch ----------------------------------------------
def test_a_commit_of_the_humans_on_the_session_branch_is_measured_as_theirs(tmp_path):
    ws = make_workspace(tmp_path / "ws", extra={"cockpit.toml": QUICK})
    assert cockpit("run", "--headless", "--experiments", "2", "--tag", "h", cwd=ws).returncode == 0
    repo = git.Repo(ws)
    best = repo.commit("autoresearch/h").hexsha
    mine = repo.commit(best).tree["train.py"].data_stream.read().decode().replace(
        "BATCH_SIZE = 16", "BATCH_SIZE = 32")
    repo.git.worktree("add", "-q", "--detach", str(tmp_path / "mine"), "autoresearch/h")
    (tmp_path / "mine" / "train.py").write_text(mine)
    side = git.Repo(tmp_path / "mine")
    side.index.add(["train.py"])
    actor = git.Actor("human", "human@localhost")
    theirs = side.index.commit("batch 32, by hand", author=actor, committer=actor).hexsha
    repo.git.update_ref("refs/heads/autoresearch/h", theirs)  # as `git commit` on it would
    again = cockpit("run", "--headless", "--experiments", "1", "--tag", "h", cwd=ws)
    assert again.returncode == 0, again.stderr
    exp = [e for e in read_journal(ws, "h") if e["event"] == "proposal"][-1]
    assert exp["description"] == f"your commit {theirs[:7]}: batch 32, by hand"
    commits = {e["n"]: e["commit"] for e in read_journal(ws, "h") if e["event"] == "commit"}
    assert commits[exp["n"]] == theirs  # run as it is: the very commit
    assert repo.git.rev_parse(f"refs/cockpit/h/{exp['n']}") == theirs
    assert repo.git.rev_parse(f"refs/cockpit/h/yours/{theirs}") == theirs
    result = [e for e in read_journal(ws, "h") if e["event"] == "result"][-1]
    branch = repo.commit("autoresearch/h").hexsha
    assert branch == (theirs if result["status"] == "keep" else best)


def test_a_commit_of_the_humans_that_touches_more_is_refused_naming_it(tmp_path):
    ws = make_workspace(tmp_path / "ws", extra={"cockpit.toml": QUICK})
    assert cockpit("run", "--headless", "--experiments", "1", "--tag", "h", cwd=ws).returncode == 0
    repo = git.Repo(ws)
    repo.git.checkout("-q", "autoresearch/h")
    theirs = commit(ws, "new program", **{"program.md": "# mine\n"})
    repo.git.checkout("-q", "main")
    refused = cockpit("run", "--headless", "--experiments", "1", "--tag", "h", cwd=ws)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert f"{theirs[:7]} (\"new program\")" in refused.stderr
    assert "changes program.md" in refused.stderr and "git branch my-work" in refused.stderr
    assert repo.commit("autoresearch/h").hexsha == theirs  # nothing moved, nothing lost


def test_a_commit_of_the_humans_made_while_the_session_runs_is_kept_and_measured(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    config = Config()
    config.judge.baseline_runs = 0
    config.sandbox.mode = "off"
    repo = git.Repo(ws)
    better = FAKE_TRAIN.replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.003")
    made = {}

    class Human(ScriptedAgent):
        def propose(self, ctx):
            if not made:  # the human commits on the session's branch, mid-session
                best = repo.commit("autoresearch/t").hexsha
                tree = repo.commit(best).tree
                source = tree["train.py"].data_stream.read().decode().replace(
                    "BATCH_SIZE = 16", "BATCH_SIZE = 32")
                repo.git.worktree("add", "-q", "--detach", str(tmp_path / "mine"), best)
                (tmp_path / "mine" / "train.py").write_text(source)
                side = git.Repo(tmp_path / "mine")
                side.index.add(["train.py"])
                actor = git.Actor("human", "human@localhost")
                sha = side.index.commit("by hand", author=actor, committer=actor).hexsha
                repo.git.update_ref("refs/heads/autoresearch/t", sha)
                made["sha"] = sha
            return super().propose(ctx)

    coordinator, ending = run_session(ws, 4, agent=Human(better, better.replace(
        "0.003", "0.002"), better.replace("0.003", "0.004")), config=config)
    assert ending.code == 0, ending.why
    sha = made["sha"]
    assert repo.git.rev_parse(f"refs/cockpit/t/yours/{sha}") == sha
    theirs = [e for e in coordinator.state.experiments if e.commit == sha]
    assert theirs and theirs[0].description.startswith(f"your commit {sha[:7]}")
    assert theirs[0].status in ("keep", "discard")
