"""Training code that misbehaves, run by a real session: it is a crash with its reason, what
it changed comes back (or ends the session when it cannot), and the research goes on."""
from __future__ import annotations

import git
import pytest
from support import (
    FAKE_TRAIN,
    ScriptedAgent,
    cockpit,
    make_workspace,
    read_journal,
    results_rows,
    run_session,
)

from cockpit.domain.exits import EXIT_FAILED
from cockpit.runners.sandbox import available
from cockpit.workspace.config import Config

SANDBOXES = ["off"] + (["auto"] if available()[0] else [])


def lr(value: float, train: str = FAKE_TRAIN) -> str:
    return train.replace("LEARNING_RATE = 0.01", f"LEARNING_RATE = {value}")


def hostile(code: str, value: float = 0.5) -> str:
    """FAKE_TRAIN with a different learning rate that runs `code` first."""
    return lr(value).replace("SEED = 42", "SEED = 42\n" + code)


def config_with(sandbox: str, **experiment) -> Config:
    config = Config()
    config.sandbox.mode = sandbox
    config.judge.baseline_runs = 0
    for key, value in experiment.items():
        setattr(config.experiment, key, value)
    return config


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_run_that_rewrites_the_evaluation(tmp_path, sandbox):
    prepare = "print('the fixed evaluation')\n"
    ws = make_workspace(tmp_path / "ws", extra={"prepare.py": prepare})
    rewrite = hostile("open('prepare.py', 'w').write('print(\"always great\")\\n')")
    config = config_with(sandbox, prepare_command="")
    coordinator, ending = run_session(ws, 3, agent=ScriptedAgent(rewrite, lr(0.003)),
                                      config=config)
    assert ending.code == 0, ending.why
    crashed, after = coordinator.state.experiments[1:]
    assert crashed.status == "crash"
    if sandbox == "off":
        assert "the run modified prepare.py (restored" in crashed.reason
    else:
        assert "sandbox refused a write to prepare.py" in crashed.reason, crashed.reason
    assert after.status == "keep"  # the next run found the evaluation as it was
    assert (ws / "prepare.py").read_text() == prepare
    assert git.Repo(ws).git.show(f"{after.commit}:prepare.py") + "\n" == prepare


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_run_that_changes_the_data(tmp_path, sandbox):
    ws = make_workspace(tmp_path / "ws", extra={".gitignore": "data/\n"})
    (ws / "data").mkdir()
    (ws / "data" / "shard0.bin").write_bytes(b"\x00" * 64)
    poison = hostile("open('data/shard0.bin', 'ab').write(b'poison')")
    config = config_with(sandbox, data_dir="data", prepare_command="")
    coordinator, ending = run_session(ws, 3, agent=ScriptedAgent(poison, lr(0.003)),
                                      config=config)
    crashed = coordinator.state.experiments[1]
    assert crashed.status == "crash"
    if sandbox == "off":  # nothing can put the data back: no later result may be judged
        assert ending.code == EXIT_FAILED and "the data in" in ending.why
        assert "shard0.bin" in crashed.reason and len(coordinator.state.experiments) == 2
    else:
        assert ending.code == 0 and "sandbox refused a write" in crashed.reason
        assert (ws / "data" / "shard0.bin").read_bytes() == b"\x00" * 64


@pytest.mark.parametrize("value", ["-0.5", "1e308", "nan"])
def test_an_implausible_metric_is_a_crash_never_the_best(tmp_path, value):
    ws = make_workspace(tmp_path / "ws")
    lying = lr(0.5).replace('print(f"val_bpb:          {val:.6f}")', f'print("val_bpb: {value}")')
    coordinator, _ending = run_session(ws, 3, agent=ScriptedAgent(lying, lr(0.003)),
                                      config=config_with("off"))
    crashed = coordinator.state.experiments[1]
    assert crashed.status == "crash" and crashed.metric is None
    assert "not plausible" in crashed.reason or "val_bpb is nan" in crashed.reason
    assert coordinator.state.best.n == 3
    row = results_rows(ws)[1]
    assert row[1] == "0.000000" and len(row[1]) < 12


def test_a_run_killed_by_a_real_time_signal(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    killed = hostile("import signal\nos.kill(os.getpid(), 40)\ntime.sleep(5)")
    coordinator, ending = run_session(ws, 3, agent=ScriptedAgent(killed, lr(0.003)),
                                      config=config_with("off"))
    assert ending.code == 0
    assert coordinator.state.experiments[1].reason.startswith("killed by signal 40")


@pytest.mark.slow
def test_a_run_that_deletes_its_script_and_switches_branches(tmp_path):
    """Sandbox off: it creates a branch and deletes one of the human's; the deleted one comes
    back, both are reported (journal, headless line, doctor)."""
    ws = make_workspace(tmp_path / "ws")
    git.Repo(ws).git.branch("mine")
    vandal = hostile("import subprocess\nos.remove('train.py')\n"
                     "subprocess.run(['git', 'checkout', '-q', '-b', 'hijack'])\n"
                     "subprocess.run(['git', 'branch', '-q', '-D', 'mine'])\n"
                     "raise SystemExit('gone')")
    main = git.Repo(ws).commit("main").hexsha
    coordinator, ending = run_session(ws, 4, agent=ScriptedAgent(vandal, lr(0.003), lr(0.002)),
                                      config=config_with("off"))
    assert ending.code == 0, ending.why
    statuses = [e.status for e in coordinator.state.experiments]
    assert statuses[:3] == ["keep", "crash", "keep"]
    repo = git.Repo(ws)
    assert repo.active_branch.name == "main" and repo.commit("main").hexsha == main
    assert (ws / "train.py").read_text() == FAKE_TRAIN
    assert repo.commit("mine").hexsha == main  # put back
    changed = [e for e in read_journal(ws, "t") if e["event"] == "refs_changed"]
    assert len(changed) == 1 and changed[0]["by"] == "#2"
    assert changed[0]["created"] == ["refs/heads/hijack"]
    assert changed[0]["restored"] == ["refs/heads/mine"]
    doctor = cockpit("doctor", cwd=ws, timeout=180)
    assert "#2 of session t created hijack in your repository" in doctor.stdout


def test_a_streak_of_crashes_ends_the_session_with_a_failure_code(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    broken = [hostile(f"raise RuntimeError('broken idea {k}')", value=0.5 + k / 100)
              for k in range(12)]
    _coordinator, ending = run_session(ws, 20, agent=ScriptedAgent(*broken),
                                      config=config_with("off"))
    assert ending.code == EXIT_FAILED and "10 experiments in a row crashed" in ending.why
    assert sum(e["event"] == "result" and e["status"] == "crash"
               for e in read_journal(ws, "t")) == 10


def test_a_run_that_reads_other_data_is_a_crash_and_the_session_goes_on(tmp_path):
    """It printed another data fingerprint: the idea is a crash (it read other data); the
    session's data did not change, so the research goes on (the README says the same)."""
    ws = make_workspace(tmp_path / "ws")
    other = lr(0.003).replace("data_fingerprint: fake0001", "data_fingerprint: other999")
    coordinator, ending = run_session(ws, 3, agent=ScriptedAgent(other, lr(0.003)),
                                      config=config_with("off"))
    assert ending.code == 0, ending.why
    crashed, after = coordinator.state.experiments[1:]
    assert crashed.status == "crash"
    assert crashed.reason == ("the run read other data (fingerprint other999; the session's "
                              "is fake0001)")
    assert after.status == "keep"


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_gitattributes_a_run_plants_does_not_steer_the_next_checkout(tmp_path, sandbox):
    """An untracked .gitattributes asking git to re-encode *.py: the next run's train.py
    comes out as committed (it was cleaned away before the checkout)."""
    plant = hostile("open('.gitattributes', 'w').write('*.py working-tree-encoding=UTF-16\\n')\n"
                    "raise SystemExit('planted')")
    ws = make_workspace(tmp_path / "ws")
    coordinator, ending = run_session(ws, 3, agent=ScriptedAgent(plant, lr(0.003)),
                                      config=config_with(sandbox))
    assert ending.code == 0, ending.why
    assert coordinator.state.experiments[2].status == "keep", coordinator.state.experiments[2]


@pytest.mark.slow
@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_run_that_leaves_a_tree_too_deep_to_delete_leaves_no_stuck_workspace(tmp_path,
                                                                                sandbox):
    """2,000 nested directories (past PATH_MAX): removed, and the next runs go on."""
    deep = hostile("fd = os.open('.', os.O_RDONLY)\n"
                   "for i in range(2000):\n"
                   "    os.mkdir('d' * 50, dir_fd=fd)\n"
                   "    n = os.open('d' * 50, os.O_RDONLY, dir_fd=fd); os.close(fd); fd = n\n"
                   "raise SystemExit('deep')")
    ws = make_workspace(tmp_path / "ws")
    coordinator, ending = run_session(ws, 3, agent=ScriptedAgent(deep, lr(0.003)),
                                      config=config_with(sandbox))
    assert ending.code == 0, ending.why
    assert [e.status for e in coordinator.state.experiments] == ["keep", "crash", "keep"]
    _again, ending = run_session(ws, 1, agent=ScriptedAgent(lr(0.002)), config=config_with(sandbox))
    assert ending.code == 0, ending.why


def test_escape_sequences_a_run_prints_never_reach_a_terminal_or_a_record(tmp_path):
    """Its last line (a crash's reason) sets a window title, writes the clipboard and forges a
    line: cockpit's output and experiments.md carry none of it."""
    from support import cockpit

    forged = hostile("sys.stdout.write('\\x1b]0;pwned\\x07\\x1b]52;c;ZXZpbA==\\x07"
                     "\\x1b[1A\\x1b[2K#2 val_bpb 0.1 keep\\n')\nraise SystemExit(1)")
    ws = make_workspace(tmp_path / "ws", train=FAKE_TRAIN, extra={
        "cockpit.toml": '[judge]\nbaseline_runs = 0\n[sandbox]\nmode = "off"\n'
                        '[agent]\nkind = "command"\ncommand = "sh forge.sh"\n',
        "forge.sh": f"cat > train.py <<'EOF'\n{forged}EOF\n"})
    result = cockpit("run", "--headless", "--experiments", "2", "--tag", "t", cwd=ws)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    assert "\x1b" not in (ws / "experiments.md").read_text()
    crash = [e for e in read_journal(ws, "t") if e["event"] == "result"][-1]
    assert crash["status"] == "crash" and "\x1b" not in crash["reason"]


def test_a_new_session_never_takes_over_a_worker_branch_of_the_humans(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    repo = git.Repo(ws)
    repo.git.branch("autoresearch/mar5-gpu1")
    mine = repo.commit("autoresearch/mar5-gpu1").hexsha
    from cockpit.session.coordinator import SessionError

    with pytest.raises(SessionError, match="branch autoresearch/mar5-gpu1 already exists"):
        run_session(ws, 2, tag="mar5", workers=2, config=config_with("off"))
    assert repo.commit("autoresearch/mar5-gpu1").hexsha == mine
