"""The coordinator end to end on real git repos with real subprocesses: one loop for one
worker or several, every run a job on the pool, the human's checkout never touched."""
from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

import git
import pytest
from support import (
    FAKE_TRAIN,
    Decider,
    ScriptedAgent,
    cockpit,
    faulty_train,
    make_workspace,
    read_journal,
    results_rows,
    run_session,
    wait_for,
)

from cockpit.domain.exits import EXIT_FAILED
from cockpit.session.coordinator import Coordinator, SessionError
from cockpit.workspace.config import Config

ROW = re.compile(r"^[0-9a-f]{7}\t\d+\.\d{6}\t\d+\.\d\t(keep|discard|crash)\t[^\t\n]*$")
SLOW = FAKE_TRAIN.replace("SEED = 42",
                         "SEED = 42\ntime.sleep(float(os.environ.get('COCKPIT_SLOW', '0.6')))")


def lr(value: float, train: str = FAKE_TRAIN) -> str:
    return train.replace("LEARNING_RATE = 0.01", f"LEARNING_RATE = {value}")


def in_thread(coordinator: Coordinator, experiments: int) -> threading.Thread:
    thread = threading.Thread(target=coordinator.run, args=(experiments,), daemon=True)
    thread.start()
    return thread


def test_tune_session_records_every_step(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    start = git.Repo(ws).head.commit.hexsha
    coordinator, ending = run_session(ws, 5)
    assert ending.why == "ran 5 experiments as asked" and ending.code == 0

    lines = (ws / "results.tsv").read_text().splitlines()
    assert lines[0] == "commit\tval_bpb\tmemory_gb\tstatus\tdescription"
    assert len(lines) == 6 and all(ROW.match(line) for line in lines[1:]), lines
    rows = results_rows(ws)
    assert rows[0][3] == "keep" and rows[0][4] == "baseline"
    assert rows[0][0] == start[:7] and rows[0][2] == "2.0"

    repo = git.Repo(ws)
    state = coordinator.state
    # The session branch stands on the best; every experiment stays reachable.
    assert repo.commit("autoresearch/t").hexsha == state.best.commit
    refs = {r.path: r.commit.hexsha for r in repo.refs if r.path.startswith("refs/cockpit/t/")}
    assert refs == {f"refs/cockpit/t/{e.n}": e.commit for e in state.experiments}
    # The human's checkout: still on main, at the same commit, clean; no worktree left over.
    assert repo.active_branch.name == "main" and repo.head.commit.hexsha == start
    assert not repo.is_dirty() and len(repo.git.worktree("list").splitlines()) == 1
    for e in state.experiments[1:]:  # one-line changes, committed before they ran
        changed = [line for line in e.diff.splitlines()
                   if line[:1] in "+-" and line[:3] not in ("+++", "---")]
        assert len(changed) == 2, e.diff
        assert repo.commit(e.commit).message.strip() == e.description
    best_so_far = None
    for e in state.experiments:
        if e.status == "keep":
            assert best_so_far is None or e.metric < best_so_far
            best_so_far = e.metric
        else:
            assert e.metric >= best_so_far
    assert state.best.metric < state.baseline.metric
    events = read_journal(ws, "t")
    assert events[0]["event"] == "session" and [e["event"] for e in events].count("result") == 5
    report = (ws / "experiments.md").read_text()
    assert "## 5." in report and "```diff" in report
    assert next(e for e in events if e["event"] == "result")["data_fingerprint"] == "fake0001"


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["raises", "nan", "no_summary", "hangs"])
def test_faulty_run_becomes_crash_and_the_session_goes_on(tmp_path, fault):
    ws = make_workspace(tmp_path / "ws")
    # the hung run's child sleeps a time of its own: no other test's (or suite's) matches it
    child = f"sleep 300.{os.getpid()}{time.monotonic_ns() % 10**6}"
    faulty = faulty_train(fault).replace("'sleep', '300'", repr(child.split())[1:-1])
    assert fault != "hangs" or child.split()[1] in faulty
    agent = ScriptedAgent(faulty, lr(0.003))
    started = time.monotonic()
    coordinator, _ = run_session(ws, 3, agent=agent, timeout=3 if fault == "hangs" else 0)
    rows = results_rows(ws)
    assert [r[3] for r in rows] == ["keep", "crash", "keep"]
    assert rows[1][1:3] == ["0.000000", "0.0"]
    crashed = coordinator.state.experiments[1]
    expected = {"raises": "out of memory", "nan": "val_bpb is nan",
                "no_summary": "without a summary", "hangs": "timed out"}[fault]
    assert expected in crashed.reason
    third = coordinator.state.experiments[2]
    repo = git.Repo(ws)
    assert repo.commit(third.commit).parents[0].hexsha == coordinator.state.experiments[0].commit
    if fault == "hangs":
        assert time.monotonic() - started < 30
        # The run's whole process tree goes (a killed tree takes a moment to be reaped).
        wait_for(lambda: subprocess.run(["pgrep", "-f", re.escape(child)], capture_output=True,
                                        text=True).stdout.strip() == "",
                 timeout=5, what="the hung run's child to be gone")


def test_baseline_crash_ends_the_session_with_a_failure_code(tmp_path):
    ws = make_workspace(tmp_path / "ws", train=faulty_train("raises"))
    _, ending = run_session(ws, 5)
    assert ending.why.startswith("the baseline run crashed") and "out of memory" in ending.why
    assert ending.code == EXIT_FAILED and len(results_rows(ws)) == 1
    result = cockpit("run", "--headless", "--experiments", "2", cwd=ws)
    assert result.returncode == EXIT_FAILED and "baseline run crashed" in result.stdout


@pytest.mark.slow
def test_uncommitted_edits_of_the_human_survive_and_never_block(tmp_path):
    """program.md and cockpit.toml edited and not committed: run and doctor accept them,
    discards never touch them, and the next proposal reads the new program."""
    ws = make_workspace(tmp_path / "ws", train=SLOW,
                        extra={"cockpit.toml": "[judge]\nbaseline_runs = 1\n"})
    (ws / "program.md").write_text("# program\nMy unsaved idea: lower the learning rate.\n")
    (ws / "cockpit.toml").write_text("[judge]\nbaseline_runs = 1\n[experiment]\ntime_budget = 7\n")
    (ws / "notes.txt").write_text("a file of mine, untracked\n")
    doctor = cockpit("doctor", cwd=ws, timeout=180)
    assert "FIX   workspace" not in doctor.stdout, doctor.stdout
    agent = ScriptedAgent(lr(0.5, SLOW), lr(0.003, SLOW), lr(0.9, SLOW))
    coordinator = Coordinator(ws, Config(), "t", agent=agent)
    thread = in_thread(coordinator, 4)
    wait_for(lambda: any(e.status == "discard" for e in coordinator.state.experiments),
             what="a discard")
    (ws / "program.md").write_text("# program\nEdited again, mid-run.\n")  # while #3 runs
    thread.join(60)
    assert [e.status for e in coordinator.state.experiments] == ["keep", "discard", "keep",
                                                                 "discard"]
    assert (ws / "program.md").read_text() == "# program\nEdited again, mid-run.\n"
    assert "time_budget = 7" in (ws / "cockpit.toml").read_text()
    assert (ws / "notes.txt").exists() and (ws / "train.py").read_text() == SLOW
    repo = git.Repo(ws)
    assert repo.active_branch.name == "main"
    assert sorted(repo.git.status("--porcelain").splitlines()) == [
        " M cockpit.toml", " M program.md", "?? notes.txt"]
    programs = [e["text"] for e in read_journal(ws, "t") if e["event"] == "program"]
    assert programs[0].startswith("# program\nMy unsaved idea") and \
        programs[-1] == "# program\nEdited again, mid-run.\n"


@pytest.mark.slow
def test_the_humans_branches_are_the_humans(tmp_path):
    """The human switches branches and commits on main while runs go on: main ends exactly
    where the human left it; experiments land on the session's branch only."""
    ws = make_workspace(tmp_path / "ws", train=SLOW)
    repo = git.Repo(ws)
    actor = git.Actor("human", "human@localhost")
    coordinator = Coordinator(ws, Config(), "t")
    thread = in_thread(coordinator, 4)
    wait_for(lambda: len(coordinator.state.experiments) >= 2, what="experiment 2")
    repo.git.checkout("-b", "feature")
    (ws / "feature.txt").write_text("feature work\n")
    repo.index.add(["feature.txt"])
    feature = repo.index.commit("feature work", author=actor, committer=actor).hexsha
    repo.git.checkout("main")
    (ws / "mine.txt").write_text("my own file\n")
    repo.index.add(["mine.txt"])
    mine = repo.index.commit("my commit on main", author=actor, committer=actor).hexsha
    thread.join(60)
    assert coordinator.ending.code == 0
    assert repo.commit("main").hexsha == mine and repo.commit("feature").hexsha == feature
    assert repo.active_branch.name == "main" and (ws / "mine.txt").exists()
    assert not repo.is_dirty()
    session = [c.hexsha for c in repo.iter_commits("autoresearch/t")]
    assert mine not in session and feature not in session
    assert all(repo.commit(e.commit).message.strip() in (e.description, "initial")
               for e in coordinator.state.experiments)


HOSTILE = FAKE_TRAIN.replace("SEED = 42", '''SEED = 42
import pathlib
gitdir = pathlib.Path(open(".git").read().split("gitdir:")[1].strip()).parent.parent
spy = os.environ["COCKPIT_SPY"]
for hook in ("pre-commit", "post-checkout", "post-commit", "reference-transaction"):
    path = gitdir / "hooks" / hook
    path.write_text("#!/bin/sh\\nenv > " + spy + "." + hook + "\\n")
    path.chmod(0o755)
with open(gitdir / "config", "a") as f:
    f.write("[core]\\n\\tfsmonitor = env > " + spy + ".fsmonitor\\n"
            '[filter "steal"]\\n\\tsmudge = sh -c \\'env > ' + spy + '.smudge; cat\\'\\n')
pathlib.Path(".gitattributes").write_text("* filter=steal\\n")''')


@pytest.mark.parametrize("sandbox", ["auto", "off"])
def test_code_a_run_plants_in_git_never_runs_with_cockpits_rights(tmp_path, monkeypatch,
                                                                   sandbox):
    """In the sandbox the writes are refused; without it, cockpit's git commands still run
    none of what was planted (and put the config back, keeping the planted copy)."""
    from cockpit.runners.sandbox import available

    if sandbox == "auto" and not available()[0]:
        pytest.skip(available()[1])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    monkeypatch.setenv("COCKPIT_SPY", str(tmp_path / "spy"))
    ws = make_workspace(tmp_path / "ws")
    config_before = (ws / ".git" / "config").read_bytes()
    config = Config()
    config.sandbox.mode = sandbox
    config.experiment.env = ["COCKPIT_SPY"]
    agent = ScriptedAgent(lr(0.5, HOSTILE), lr(0.003), lr(0.002))
    coordinator, ending = run_session(ws, 4, agent=agent, config=config)
    assert ending.code == 0, ending.why
    assert not list(tmp_path.glob("spy*")), "a planted hook or config key ran"
    assert (ws / ".git" / "config").read_bytes() == config_before
    crashed = coordinator.state.experiments[1]
    assert crashed.status == "crash"
    events = read_journal(ws, "t")
    tampered = [e for e in events if e["event"] == "tampered"]
    if sandbox == "off":
        assert tampered and "core.fsmonitor" in tampered[0]["keys"]
        assert (ws / tampered[0]["kept"]).exists()  # the planted version is kept, not lost
        assert "modified .git/config" in crashed.reason
    else:
        # refused, or not even visible (a workspace under /tmp is behind the run's private /tmp)
        assert not tampered and ("sandbox refused a write" in crashed.reason
                                 or "No such file" in crashed.reason), crashed.reason
    assert [e.status for e in coordinator.state.experiments[2:]] == ["keep", "discard"]


def plants(body: str) -> str:
    """FAKE_TRAIN that runs `body` first, with `config` the repository's .git/config (found
    through the worktree's .git file)."""
    return FAKE_TRAIN.replace("SEED = 42", """SEED = 42
import pathlib
config = pathlib.Path(open(".git").read().split("gitdir:")[1].strip()).parent.parent / "config"
""" + body)


# Plants a key, then trains on until cockpit has put the config back (or 30 s pass).
PLANTS_AND_WAITS = plants('''with open(config, "a") as f:
    f.write("[core]\\n\\tfsmonitor = true\\n")
deadline = time.time() + 30
while "fsmonitor" in config.read_text() and time.time() < deadline:
    time.sleep(0.05)
print("restored mid-run:", "fsmonitor" not in config.read_text(), flush=True)''')


class SlowScriptedAgent(ScriptedAgent):
    """Takes a second per proposal, so the coordinator asks for the next while runs train."""

    slow = True

    def propose(self, ctx):
        time.sleep(1.0)
        return super().propose(ctx)


def planted_session(tmp_path, train: str):
    """Four experiments, sandbox off, #2 training `train` while the slow agent's next
    proposals arrive: (workspace, its .git/config before, coordinator, ending)."""
    ws = make_workspace(tmp_path / "ws")
    config_before = (ws / ".git" / "config").read_bytes()
    config = Config()
    config.sandbox.mode = "off"
    config.experiment.env = ["COCKPIT_SPY"]
    agent = SlowScriptedAgent(lr(0.5, train), lr(0.003), lr(0.002))
    coordinator, ending = run_session(ws, 4, agent=agent, config=config)
    return ws, config_before, coordinator, ending


@pytest.mark.slow
def test_keys_planted_mid_run_are_put_back_before_cockpits_next_git_command(tmp_path):
    """Sandbox off: a proposal that arrives while the planting run trains runs git; the
    config is put back then (not only when the run ends), the proposal is not lost, and the
    run is judged a crash when it finishes."""
    ws, config_before, coordinator, ending = planted_session(tmp_path, PLANTS_AND_WAITS)
    assert ending.code == 0, ending.why
    assert (ws / ".git" / "config").read_bytes() == config_before
    log = ws / ".cockpit" / "t" / "runs" / "0002" / "run.log"
    assert "restored mid-run: True" in log.read_text()
    events = read_journal(ws, "t")
    tampered = [e for e in events if e["event"] == "tampered"]
    assert len(tampered) == 1 and tampered[0]["by"] == "#2"
    assert tampered[0]["keys"] == ["core.fsmonitor"] and (ws / tampered[0]["kept"]).exists()
    crashed = coordinator.state.experiments[1]
    assert crashed.status == "crash" and "modified .git/config" in crashed.reason
    assert [e.status for e in coordinator.state.experiments[2:]] == ["keep", "discard"]
    assert [e.description for e in coordinator.state.experiments] == [
        "baseline", "scripted change 2", "scripted change 3", "scripted change 4"]


# Plants the key again each time cockpit puts the config back, for 3 s, and ends planted.
KEEPS_PLANTING = plants('''deadline = time.time() + 3
while time.time() < deadline:
    if "fsmonitor" not in config.read_text():
        with open(config, "a") as f:
            f.write("[core]\\n\\tfsmonitor = env > " + os.environ["COCKPIT_SPY"] + "\\n")
    time.sleep(0.01)''')


@pytest.mark.slow
def test_a_run_that_keeps_planting_gets_nothing_and_ends_a_crash(tmp_path, monkeypatch):
    """Sandbox off, the run re-plants the key as soon as it is put back, while proposals
    (and their git commands) arrive: no planted command ever runs, the config ends as it
    was, the run is a crash, the session goes on."""
    monkeypatch.setenv("COCKPIT_SPY", str(tmp_path / "spy"))
    ws, config_before, coordinator, ending = planted_session(tmp_path, KEEPS_PLANTING)
    assert ending.code == 0, ending.why
    assert not list(tmp_path.glob("spy*")), "a planted fsmonitor ran"
    assert (ws / ".git" / "config").read_bytes() == config_before
    assert [e.status for e in coordinator.state.experiments] == [
        "keep", "crash", "keep", "discard"]
    assert "modified .git/config" in coordinator.state.experiments[1].reason
    tampered = [e for e in read_journal(ws, "t") if e["event"] == "tampered"]
    kept = {e["kept"] for e in tampered}
    assert len(kept) == len(tampered) and all((ws / k).exists() for k in kept)  # none lost


def test_putting_the_config_back_is_whole_whatever_a_planter_still_writes(tmp_path):
    """A run that opened .git/config to append before cockpit put it back, and writes after:
    the restored file stays as it was (a restore in place would take the planted line after
    it, or part of it when the planter wrote into the file as it was emptied)."""
    from cockpit.workspace.history import ConfigTampered, History

    ws = make_workspace(tmp_path / "ws")
    path = ws / ".git" / "config"
    before = path.read_bytes()
    history = History(ws)
    with open(path, "a") as planter:
        planter.write("[core]\n\tfsmonitor = touch planted\n")
        planter.flush()
        with pytest.raises(ConfigTampered) as tampered:
            history.check_config()
        kept = history.restore_config(tampered.value, tmp_path / "quarantine")
        planter.write("[core]\n\tfsmonitor = touch again\n")
    assert path.read_bytes() == before
    assert b"touch planted" in kept.read_bytes()  # the tampered copy is kept
    history.check_config()  # nothing planted since the restore


class PaidAgent(ScriptedAgent):
    """A model that bills $1 a proposal and is asked ahead (its first answer is awaited
    while the baseline runs)."""

    slow = True

    def propose(self, ctx):
        ctx.record("attempt", kind="propose", attempt=1, accepted=True, cost_usd=1.0)
        return super().propose(ctx)


@pytest.mark.slow
def test_a_proposal_paid_for_runs_before_the_cost_limit_pauses(tmp_path, monkeypatch):
    """The limit is reached by the proposal made during the (slow) baseline: no more model
    calls, but the paid-for proposal still runs, then the session pauses (exit 3 when no
    human can resume it)."""
    from cockpit.domain.exits import EXIT_PAUSED

    monkeypatch.setenv("COCKPIT_SLOW", "1")
    slow_baseline = SLOW.replace(
        "SEED = 42\n", "SEED = 42\nif LEARNING_RATE != 0.01: os.environ['COCKPIT_SLOW'] = '0'\n")
    ws = make_workspace(tmp_path / "ws", train=slow_baseline)
    config = Config()
    config.agent.max_cost_usd = 0.5
    config.experiment.env = ["COCKPIT_SLOW"]
    agent = PaidAgent(lr(0.003, slow_baseline), lr(0.002, slow_baseline))
    coordinator, ending = run_session(ws, 5, agent=agent, config=config)
    assert ending.code == EXIT_PAUSED and "reached max_cost_usd $0.50" in ending.why
    assert [e.status for e in coordinator.state.experiments] == ["keep", "keep"]
    assert len(agent.sources) == 1  # asked once
    order = [e["event"] for e in read_journal(ws, "t")
             if e["event"] in ("attempt", "run_start", "result", "paused")]
    assert order == ["run_start", "attempt", "result", "run_start", "paused", "result"]


def test_secrets_never_reach_the_training_process(tmp_path):
    dump = FAKE_TRAIN.replace("SEED = 42",
                              "SEED = 42\nprint('ENV', ' '.join(os.environ), flush=True)")
    ws = make_workspace(tmp_path / "ws", train=dump)
    secrets = {"OPENAI_API_KEY": "sk-x", "HF_TOKEN": "hf-x", "AWS_SECRET_ACCESS_KEY": "s",
               "DATABASE_URL": "postgres://u:p@h/db", "PGPASSWORD": "p", "API_KEY": "k",
               "SSH_AUTH_SOCK": "/tmp/agent.sock", "GITHUB_TOKEN": "g"}
    env = {**secrets, "LANG": "C.UTF-8"}
    result = cockpit("run", "--headless", "--experiments", "1", "--budget", "7", cwd=ws, env=env)
    assert result.returncode == 0, result.stderr
    log = (ws / ".cockpit").glob("*/runs/0001/run.log")
    line = next(line for line in next(log).read_text().splitlines() if line.startswith("ENV "))
    names = set(line.split()[1:])
    assert not names & set(secrets)
    assert {"PATH", "COCKPIT_TIME_BUDGET"} <= names


def test_higher_is_better_metric(tmp_path):
    acc = FAKE_TRAIN.replace('val_bpb:          {val:.6f}', 'test_acc:         {1 / val:.6f}')
    ws = make_workspace(tmp_path / "ws", train=acc,
                        extra={"cockpit.toml":
                               '[metric]\nname = "test_acc"\ndirection = "higher"\n'})
    result = cockpit("run", "--headless", "--experiments", "4", "--tag", "acc", cwd=ws)
    assert result.returncode == 0, result.stderr
    lines = (ws / "results.tsv").read_text().splitlines()
    assert lines[0] == "commit\ttest_acc\tmemory_gb\tstatus\tdescription"
    kept = [float(r[1]) for r in results_rows(ws) if r[3] == "keep"]
    assert kept == sorted(kept) and len(kept) >= 2


def test_resume_adds_rows_results_tsv_lost(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    run_session(ws, 3, tag="r")
    lines = (ws / "results.tsv").read_text().splitlines(keepends=True)
    (ws / "results.tsv").write_text("".join(lines[:-1]))  # killed before the row was written
    journal = ws / ".cockpit" / "r" / "journal.jsonl"
    events = journal.read_text().splitlines(keepends=True)
    last_row = max(i for i, line in enumerate(events) if '"event":"row"' in line)
    journal.write_text("".join(events[:last_row] + events[last_row + 1:]))
    run_session(ws, 1, tag="r")
    after = (ws / "results.tsv").read_text().splitlines(keepends=True)
    assert after[: len(lines)] == lines and len(after) == len(lines) + 1


def test_a_row_the_human_edited_or_deleted_stays_as_they_left_it(tmp_path):
    """results.tsv is the human's once a row is written: an edited row is not written again,
    a deleted one does not come back; a row killed between its mark and the file does."""
    ws = make_workspace(tmp_path / "ws")
    run_session(ws, 3, tag="r")
    header, first, _second, third = (ws / "results.tsv").read_text().splitlines(keepends=True)
    edited = first.replace("keep\tbaseline", "keep\tbaseline, checked by hand")
    (ws / "results.tsv").write_text(header + edited + third)  # #2's row deleted on purpose
    run_session(ws, 1, tag="r")
    rows = (ws / "results.tsv").read_text().splitlines(keepends=True)
    assert rows[:3] == [header, edited, third] and len(rows) == 4


def test_stale_git_locks_and_a_torn_journal_line_recover(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    run_session(ws, 2, tag="r")
    rows = results_rows(ws)
    gitdir = ws / ".git"
    for lock in (gitdir / "refs" / "heads" / "autoresearch" / "r.lock",
                 gitdir / "refs" / "cockpit" / "r" / "3.lock"):
        lock.parent.mkdir(parents=True, exist_ok=True)
        lock.write_text("")
        os.utime(lock, (time.time() - 60, time.time() - 60))
    (gitdir / "index.lock").write_text("")  # the human's: never touched
    journal = ws / ".cockpit" / "r" / "journal.jsonl"
    with open(journal, "a") as f:
        f.write('{"event": "result", "n": 9, "sta')  # a kill mid-write
    _coordinator, ending = run_session(ws, 2, tag="r")
    assert ending.code == 0, ending.why
    assert results_rows(ws)[:2] == rows and len(results_rows(ws)) == 4  # no phantom row
    assert all(r[0] != "0000000" for r in results_rows(ws))
    events = read_journal_tolerant(journal)
    cleared = [e for e in events if e["event"] == "locks_cleared"]
    assert cleared and len(cleared[0]["paths"]) == 2
    assert (gitdir / "index.lock").exists()
    assert events[-1]["event"] == "session_end"


def read_journal_tolerant(path: Path) -> list[dict]:
    from cockpit.workspace.journal import Journal

    return Journal(path).read()


def test_existing_foreign_branch_is_not_taken_over(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    git.Repo(ws).create_head("autoresearch/mine")
    with pytest.raises(SessionError, match="pick another --tag"):
        run_session(ws, 1, tag="mine")


def test_rejected_proposal_is_journaled_with_the_reason_and_never_runs(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    coordinator = Coordinator(ws, Config(), "ap", agent=ScriptedAgent(lr(0.5), lr(0.003)),
                              auto_approve=False)
    decider = Decider(coordinator, lambda n: (False, "0.5 is absurd") if n == 2 else (True, ""))
    ending = coordinator.run(2)
    assert ending.code == 0
    assert decider.asked == [2, 3]
    statuses = [e.status for e in coordinator.state.experiments]
    assert statuses == ["keep", "rejected", "keep"]
    assert "0.5 is absurd" in coordinator.state.experiments[1].reason
    assert [r[3] for r in results_rows(ws)] == ["keep", "keep"]  # a rejected idea never ran
    assert "1 proposals rejected" in (ws / "experiments.md").read_text()


def test_commands_name_what_they_act_on(tmp_path, monkeypatch):
    """approve/reject/stop name their experiment and are refused once it is gone."""
    monkeypatch.setenv("COCKPIT_SLOW", "30")
    ws = make_workspace(tmp_path / "ws", train=SLOW.replace(
        "SEED = 42\n",
        "SEED = 42\nif LEARNING_RATE == 0.01: os.environ['COCKPIT_SLOW'] = '0'\n"))
    config = Config()
    config.experiment.env = ["COCKPIT_SLOW"]
    coordinator = Coordinator(ws, config, "c", agent=ScriptedAgent(lr(0.003, SLOW)),
                              auto_approve=False, wait_when_paused=True)
    thread = in_thread(coordinator, 3)
    wait_for(lambda: coordinator.live()["awaiting"] == [2], what="#2 to await approval")
    refused = coordinator.command("approve", n=1)
    assert not refused["ok"] and "#1 does not await approval" in refused["message"]
    assert not coordinator.command("stop_run", n=1)["ok"]
    assert coordinator.command("approve", n=2)["ok"]
    again = coordinator.command("approve", n=2)
    assert not again["ok"] and "does not await approval" in again["message"]
    wait_for(lambda: any(r["n"] == 2 for r in coordinator.live()["running"]), what="#2 runs")
    assert coordinator.command("stop_run", n=2)["message"].startswith("#2 stopped")
    wait_for(lambda: coordinator.state.get(2).finished, what="#2 to end")
    late = coordinator.command("stop_run", n=2)
    assert not late["ok"] and "it ended as a" in late["message"]
    assert coordinator.state.get(2).reason == "stopped by the human"
    assert coordinator.live()["paused"]  # stopping a run pauses the session
    assert coordinator.command("stop")["ok"]
    thread.join(30)
    assert not thread.is_alive()


@pytest.mark.slow
def test_stopping_during_the_baseline_is_a_stop_not_a_broken_setup(tmp_path):
    ws = make_workspace(tmp_path / "ws", train=faulty_train("hangs"))
    coordinator = Coordinator(ws, Config(), "s")
    threading.Timer(1.5, coordinator.interrupt).start()
    ending = coordinator.run(3)
    assert ending.why.startswith("stopped") and ending.code == 0
    assert results_rows(ws)[0][3:] == ["crash", "baseline (stopped by the human)"]
    assert coordinator.state.experiments[0].reason == "stopped by the human"


def test_a_row_says_why_a_run_has_no_result_and_stays_one_row_of_five_columns():
    from cockpit.domain.causes import SESSION_ENDED
    from cockpit.domain.state import Experiment
    from cockpit.workspace.records import tsv_row
    exp = Experiment(n=3, description="DEPTH 4 -> 2", status="crash", commit="a" * 40,
                     cause=SESSION_ENDED, reason="ended with the session:\tkilled\nat 3%")
    row = tsv_row(exp)
    assert row.count("\n") == 1 and row.rstrip("\n").split("\t")[3:] == [
        "crash", "DEPTH 4 -> 2 (ended with the session: killed at 3%)"]


@pytest.mark.slow
def test_two_workers_run_at_once_and_share_the_best(tmp_path):
    pinned = FAKE_TRAIN.replace(
        "SEED = 42", "SEED = 42\nprint('device:', os.environ.get('CUDA_VISIBLE_DEVICES'), "
        "flush=True)\ntime.sleep(0.3)")
    ws = make_workspace(tmp_path / "ws", train=pinned)
    config = Config()
    config.judge.baseline_runs = 0
    coordinator, ending = run_session(ws, 7, config=config, workers=2)
    assert ending.why == "ran 7 experiments as asked"
    events = read_journal(ws, "t")
    workers = {e["n"]: e["worker"] for e in events if e["event"] == "run_start"}
    assert set(workers.values()) == {0, 1}
    for n, worker in workers.items():
        log = (ws / ".cockpit" / "t" / "runs" / f"{n:04d}" / "run.log").read_text()
        assert f"device: {worker}" in log
    running, overlapped = set(), False
    for e in events:
        if e["event"] == "run_start":
            overlapped |= bool(running)
            running.add(e["n"])
        elif e["event"] == "result":
            running.discard(e["n"])
    assert overlapped
    repo = git.Repo(ws)
    assert repo.commit("autoresearch/t").hexsha == coordinator.state.best.commit
    assert {"autoresearch/t-gpu0", "autoresearch/t-gpu1"} <= {h.name for h in repo.heads}
    assert repo.active_branch.name == "main" and not repo.is_dirty()
    assert len(repo.git.worktree("list").splitlines()) == 1
    # each experiment's commit sits on the best known when it ran (carried if it moved)
    for e in coordinator.state.experiments[1:]:
        assert repo.commit(e.commit).parents[0].hexsha in {
            x.commit for x in coordinator.state.experiments if x.status == "keep"}


@pytest.mark.slow
def test_re_runs_are_pool_jobs_and_results_wait_for_their_bar(tmp_path):
    """Noise and keep re-runs run on the workers beside experiments; a result that comes
    back while the best is being re-measured is judged once the re-runs are in."""
    noisy = FAKE_TRAIN.replace("print(\"---\")", "import random\nval += random.gauss(0, 0.002)\n"
                                                 "time.sleep(0.3)\nprint(\"---\")")
    ws = make_workspace(tmp_path / "ws", train=noisy)
    config = Config()
    config.judge.baseline_runs = 3
    _coordinator, ending = run_session(ws, 6, config=config, workers=2)
    assert ending.code == 0, ending.why
    events = read_journal(ws, "t")
    kinds = [e["event"] for e in events]
    noise_at = kinds.index("noise")
    first_judged = next(i for i, e in enumerate(events) if e["event"] == "result"
                        and e["n"] > 1)
    assert noise_at < first_judged  # never judged before the noise floor was in
    measures = [e for e in events if e["event"] == "measure_start"]
    assert {m["purpose"] for m in measures} >= {"noise"}
    assert {m["worker"] for m in measures} <= {0, 1}
    # while a re-run ran on one worker, an experiment ran on the other
    busy = {}
    overlapped = False
    for e in events:
        if e["event"] in ("run_start", "measure_start"):
            if any(kind != e["event"] for kind in busy.values()):
                overlapped = True
            busy[e["worker"]] = e["event"]
        elif e["event"] in ("result", "measure"):
            busy.pop(e.get("worker", 0), None)
    assert overlapped
    for e in events:
        if e["event"] == "result" and e["status"] in ("keep", "discard") and e["n"] > 1:
            keeps_before = [m for m in events[:events.index(e)]
                            if m["event"] == "measure_start" and m["purpose"] == "keep"]
            done_before = [m for m in events[:events.index(e)] if m["event"] == "measure"
                           and m["purpose"] == "keep"]
            assert len(done_before) == len(keeps_before), "judged while the bar was re-measured"


@pytest.mark.slow
def test_cli_workers_and_runner_config(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    result = cockpit("run", "--headless", "--workers", "2", "--experiments", "4", "--tag", "w",
                     cwd=ws)
    assert result.returncode == 0, result.stderr
    assert "2 workers (gpus runner)" in result.stdout and "[gpu1] #" in result.stdout
    assert len(results_rows(ws)) == 4
    (ws / "cockpit.toml").write_text('[runner]\nkind = "gpu"\n')
    bad = cockpit("run", "--headless", cwd=ws)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"cockpit: {ws / 'cockpit.toml'}: [runner] kind = 'gpu' is not allowed; "
        "use one of: local, gpus, ray"]
    (ws / "cockpit.toml").write_text('[runner]\nworkers = 4\n')
    bad = cockpit("run", "--headless", cwd=ws)
    assert bad.returncode == 2 and "needs kind = \"gpus\" or \"ray\"" in bad.stderr


def test_a_checkout_on_the_session_branch_is_refused_in_one_line(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    assert cockpit("run", "--headless", "--experiments", "1", "--tag", "mine",
                   cwd=ws).returncode == 0
    git.Repo(ws).git.checkout("autoresearch/mine")
    result = cockpit("run", "--headless", "--experiments", "1", "--tag", "mine", cwd=ws)
    assert result.returncode == 2
    assert "your checkout is on autoresearch/mine" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
