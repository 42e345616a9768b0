"""The headless loop end to end on real git repos with real subprocesses."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import git
import pytest
from support import (
    FAKE_TRAIN,
    ScriptedAgent,
    cockpit,
    faulty_train,
    make_workspace,
    read_journal,
    results_rows,
)

from cockpit.config import Config
from cockpit.loop import LoopError, ResearchLoop

ROW = re.compile(r"^[0-9a-f]{7}\t\d+\.\d{6}\t\d+\.\d\t(keep|discard|crash)\t[^\t\n]*$")


def run_loop(workspace: Path, experiments: int, agent=None, timeout: int = 0, tag: str = "t"):
    config = Config()
    config.experiment.timeout = timeout
    loop = ResearchLoop(workspace, config, tag, agent=agent)
    why = loop.run(experiments)
    return loop, why


def test_tune_session_records_every_step(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    start = git.Repo(ws).head.commit.hexsha
    loop, why = run_loop(ws, 5)
    assert "ran 5 experiments" in why

    text = (ws / "results.tsv").read_text()
    lines = text.splitlines()
    assert lines[0] == "commit\tval_bpb\tmemory_gb\tstatus\tdescription"
    assert len(lines) == 6 and all(ROW.match(line) for line in lines[1:]), text
    rows = results_rows(ws)
    assert rows[0][3] == "keep" and rows[0][4] == "baseline"
    assert rows[0][0] == start[:7] and rows[0][2] == "2.0"

    repo = git.Repo(ws)
    assert repo.active_branch.name == "autoresearch/t"
    state = loop.state
    best = state.best
    # The branch stands on the best commit and every experiment stays reachable.
    assert repo.head.commit.hexsha == best.commit
    refs = {r.path: r.commit.hexsha for r in repo.refs if r.path.startswith("refs/cockpit/t/")}
    assert refs == {f"refs/cockpit/t/{e.n}": e.commit for e in state.experiments}
    assert not repo.is_dirty()
    # Each non-baseline experiment is a one-line change to train.py, committed before it ran.
    for e in state.experiments[1:]:
        changed = [l for l in e.diff.splitlines() if l[:1] in "+-" and l[:3] not in ("+++", "---")]
        assert len(changed) == 2, e.diff
        assert repo.commit(e.commit).message.strip() == e.description
    # Keep decisions follow the metric: each keep beat the best before it.
    best_so_far = None
    for e in state.experiments:
        if e.status == "keep":
            assert best_so_far is None or e.metric < best_so_far
            best_so_far = e.metric
        else:
            assert e.metric >= best_so_far
    assert state.best.metric < state.baseline.metric  # the tune agent found a real gain

    events = [e["event"] for e in read_journal(ws, "t")]
    assert events[0] == "session" and events.count("result") == 5
    report = (ws / "experiments.md").read_text()
    assert "## 5." in report and "```diff" in report and "Hypothesis" in report
    assert read_journal(ws, "t")[-1]["data_fingerprint"] == "fake0001"


@pytest.mark.parametrize("fault", ["raises", "nan", "no_summary", "hangs"])
def test_faulty_run_becomes_crash_and_loop_goes_on(tmp_path, fault):
    ws = make_workspace(tmp_path / "ws")
    good = FAKE_TRAIN.replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.003")
    agent = ScriptedAgent(faulty_train(fault), good)
    timeout = 3 if fault == "hangs" else 0
    started = time.monotonic()
    loop, why = run_loop(ws, 3, agent=agent, timeout=timeout)
    rows = results_rows(ws)
    assert [r[3] for r in rows] == ["keep", "crash", "keep"]
    assert rows[1][1:3] == ["0.000000", "0.0"]
    crashed = loop.state.experiments[1]
    expected = {"raises": "out of memory", "nan": "val_bpb is nan",
                "no_summary": "without a summary", "hangs": "timed out"}[fault]
    assert expected in crashed.reason
    # After the crash the loop went back to the best commit and tried the next idea on it.
    repo = git.Repo(ws)
    assert repo.head.commit.hexsha == loop.state.experiments[2].commit
    assert repo.commit(loop.state.experiments[2].commit).parents[0].hexsha == \
        loop.state.experiments[0].commit
    if fault == "hangs":
        assert time.monotonic() - started < 30
        # The whole process group went: the `sleep 300` child the script spawned too.
        leftover = subprocess.run(["pgrep", "-f", "sleep 300"], capture_output=True, text=True)
        assert leftover.stdout.strip() == ""


def test_baseline_crash_stops_with_a_reason(tmp_path):
    ws = make_workspace(tmp_path / "ws", train=faulty_train("raises"))
    loop, why = run_loop(ws, 5)
    assert why.startswith("the baseline run crashed") and "out of memory" in why
    assert len(results_rows(ws)) == 1


def test_dirty_tree_is_refused_and_left_alone(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    (ws / "train.py").write_text(FAKE_TRAIN + "# my unsaved idea\n")
    result = cockpit("run", "--headless", "--experiments", "1", cwd=ws)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "cockpit: uncommitted changes to train.py: commit or stash them first "
        "(cockpit never overwrites your work)"]
    assert (ws / "train.py").read_text().endswith("# my unsaved idea\n")
    assert git.Repo(ws).active_branch.name == "main"


def test_secrets_never_reach_the_training_process(tmp_path):
    dump = FAKE_TRAIN.replace("SEED = 42", "SEED = 42\nopen('env.txt', 'w').write('\\n'.join(os.environ))")
    ws = make_workspace(tmp_path / "ws", train=dump)
    env = {"OPENAI_API_KEY": "sk-x", "HF_TOKEN": "hf-x", "AWS_SECRET": "s", "API_KEY": "k",
           "COCKPIT_VISIBLE": "yes"}
    result = cockpit("run", "--headless", "--experiments", "1", "--budget", "7", cwd=ws, env=env)
    assert result.returncode == 0, result.stderr
    names = set((ws / "env.txt").read_text().split("\n"))
    assert not names & {"OPENAI_API_KEY", "HF_TOKEN", "AWS_SECRET", "API_KEY"}
    assert {"COCKPIT_VISIBLE", "PATH"} <= names
    assert "COCKPIT_TIME_BUDGET" in names


def test_higher_is_better_metric(tmp_path):
    acc = FAKE_TRAIN.replace('val_bpb:          {val:.6f}', 'test_acc:         {1 / val:.6f}')
    ws = make_workspace(tmp_path / "ws", train=acc,
                        extra={"cockpit.toml": '[metric]\nname = "test_acc"\ndirection = "higher"\n'})
    result = cockpit("run", "--headless", "--experiments", "4", "--tag", "acc", cwd=ws)
    assert result.returncode == 0, result.stderr
    lines = (ws / "results.tsv").read_text().splitlines()
    assert lines[0] == "commit\ttest_acc\tmemory_gb\tstatus\tdescription"
    kept = [float(r[1]) for r in results_rows(ws) if r[3] == "keep"]
    assert kept == sorted(kept) and len(kept) >= 2


def test_killed_cockpit_resumes_where_it_was(tmp_path):
    # Experiment 2 (the first change of LEARNING_RATE) hangs, so the kill lands mid-run.
    slow = FAKE_TRAIN.replace("SEED = 42", "SEED = 42\nif LEARNING_RATE == 0.02:\n    time.sleep(120)")
    ws = make_workspace(tmp_path / "ws", train=slow)
    proc = subprocess.Popen([sys.executable, "-m", "cockpit", "run", "--headless", "--tag", "k"],
                            cwd=ws, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = ws / ".cockpit" / "k" / "journal.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.exists() and any(e["event"] == "run_pid" and e["n"] == 2
                                    for e in read_journal(ws, "k")):
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("experiment 2 never started")
    orphan = [e for e in read_journal(ws, "k") if e["event"] == "run_pid"][-1]["pid"]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert os.getpgid(orphan) == orphan  # the training run outlived its cockpit

    result = cockpit("run", "--headless", "--experiments", "1", cwd=ws)
    assert result.returncode == 0, result.stderr
    assert "resuming session k" in result.stdout
    rows = results_rows(ws)
    assert [r[3] for r in rows[:2]] == ["keep", "crash"] and len(rows) == 3
    events = read_journal(ws, "k")
    interrupted = [e for e in events if e["event"] == "result" and e["n"] == 2][0]
    assert "interrupted" in interrupted["reason"]
    with pytest.raises(ProcessLookupError):
        for _ in range(50):  # the orphaned run was killed on resume
            os.getpgid(orphan)
            time.sleep(0.1)
    repo = git.Repo(ws)
    best = [e for e in events if e["event"] == "result" and e["status"] == "keep"][-1]
    assert repo.head.commit.hexsha == best["commit"] and not repo.is_dirty()


def test_resume_adds_rows_results_tsv_lost(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    run_loop(ws, 3, tag="r")
    lines = (ws / "results.tsv").read_text().splitlines(keepends=True)
    (ws / "results.tsv").write_text("".join(lines[:-1]))  # killed before the row was written
    run_loop(ws, 1, tag="r")
    after = (ws / "results.tsv").read_text().splitlines(keepends=True)
    assert after[: len(lines)] == lines and len(after) == len(lines) + 1


def test_two_loops_cannot_share_a_workspace(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    first = ResearchLoop(ws, Config(), "a")
    first.open_session()
    try:
        with pytest.raises(LoopError, match="already running"):
            ResearchLoop(ws, Config(), "b").open_session()
    finally:
        first.close_session()


def test_existing_foreign_branch_is_not_taken_over(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    git.Repo(ws).create_head("autoresearch/mine")
    with pytest.raises(LoopError, match="pick another --tag"):
        run_loop(ws, 1, tag="mine")


def test_rejected_proposal_is_journaled_with_the_reason_and_never_runs(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    first = FAKE_TRAIN.replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.5")
    second = FAKE_TRAIN.replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.003")
    asked = []

    def approver(n, proposal, diff):
        asked.append((n, diff))
        return (False, "0.5 is absurd") if len(asked) == 1 else (True, "")

    loop = ResearchLoop(ws, Config(), "ap", agent=ScriptedAgent(first, second), approver=approver)
    loop.run(3)
    assert [n for n, _ in asked] == [2, 3] and "+LEARNING_RATE = 0.5" in asked[0][1]
    statuses = [e.status for e in loop.state.experiments]
    assert statuses == ["keep", "rejected", "keep"]
    assert "0.5 is absurd" in loop.state.experiments[1].reason
    assert [r[3] for r in results_rows(ws)] == ["keep", "keep"]  # a rejected idea never ran
    assert "1 proposals rejected" in (ws / "experiments.md").read_text()
    assert git.Repo(ws).head.commit.parents[0].hexsha == loop.state.experiments[0].commit


def test_real_train_py_through_the_loop(tmp_path, small_data_dir):
    """The shipped workspace end to end: cockpit init, then the real train.py on real data."""
    ws = tmp_path / "research"
    assert cockpit("init", str(ws), cwd=tmp_path).returncode == 0
    env = {"COCKPIT_DATA_DIR": str(small_data_dir)}
    result = cockpit("run", "--headless", "--experiments", "2", "--budget", "3", "--tag", "e2e",
                     cwd=ws, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "preparing data" in result.stdout and "noise floor" in result.stdout
    assert "data ready in" in result.stdout  # prepare.py's progress shows even in a file
    rows = results_rows(ws)
    assert [r[4] for r in rows][0] == "baseline" and len(rows) == 2
    assert all(ROW.match("\t".join(r)) for r in rows)
    import prepare

    # even 3 s of training beats a model of token frequencies alone
    assert 0 < float(rows[0][1]) < prepare.unigram_bpb(small_data_dir)
    events = read_journal(ws, "e2e")
    first = next(e for e in events if e["event"] == "result")
    assert {"val_bpb", "training_seconds", "total_seconds", "peak_vram_mb", "mfu_percent",
            "total_tokens_M", "num_steps", "num_params_M", "depth"} <= set(first["summary"])
    assert first["data_fingerprint"] and first["summary"]["training_seconds"] >= 3
    assert git.Repo(ws).active_branch.name == "autoresearch/e2e"


def test_stopping_during_the_baseline_is_a_stop_not_a_broken_setup(tmp_path):
    import threading

    ws = make_workspace(tmp_path / "ws", train=faulty_train("hangs"))
    loop = ResearchLoop(ws, Config(), "s")
    threading.Timer(1.5, loop.request_stop, kwargs={"now": True}).start()
    assert loop.run(3) == "stopped"
    assert results_rows(ws)[0][3] == "crash" and "stopped by the human" in loop.state.experiments[0].reason
