"""Every number cockpit judges is one it measured: the real train.py, handing its model
over to the real evaluator, through a real session. Training code that cheats in each way
the measurement used to allow ends as a crash with its reason, never as a keep; an honest
change is judged as before."""
from __future__ import annotations

from pathlib import Path

import pytest
from support import FAKE_TRAIN, ScriptedAgent, cockpit, make_workspace, run_session

from cockpit.domain import causes, clock
from cockpit.domain.measured import MEASURED_BY_COCKPIT, REPORTED_BY_TRAIN
from cockpit.runners.sandbox import available
from cockpit.workspace.config import Config
from cockpit.workspace.scaffold import init_workspace

REPO = Path(__file__).resolve().parent.parent
TRAIN = (REPO / "train.py").read_text()
HAND_OVER = "val_bpb = hand_over(raw_model)\n"
SANDBOXED = available()[0]


def edit(old: str, new: str, source: str = TRAIN) -> str:
    assert old in source, old
    return source.replace(old, new, 1)


def after_imports(code: str) -> str:
    return edit("from evaluate import hand_over\n", "from evaluate import hand_over\n" + code)


# The ways training code could cheat a measurement it makes itself.
FAKE_NUMBER = edit(HAND_OVER, HAND_OVER + "val_bpb = 0.001  # what it would like to be\n")
PATCHED_EVAL = edit(HAND_OVER, HAND_OVER + (
    "import prepare, evaluate\n"
    "prepare.evaluate_bpb = lambda *args, **kwargs: 0.001\n"
    "evaluate.measure = lambda *args, **kwargs: {'val_bpb': 0.001}\n"
    "val_bpb = prepare.evaluate_bpb(raw_model, tokenizer, 32)\n"))
PAST_BUDGET = after_imports("TIME_BUDGET = 600  # train longer than asked\n")
READS_VAL = edit('train_loader = make_dataloader(tokenizer, BATCH_SIZE, MAX_SEQ_LEN, "train"',
                 'train_loader = make_dataloader(tokenizer, BATCH_SIZE, MAX_SEQ_LEN, "val"')
NON_CAUSAL = edit("is_causal=True", "is_causal=False")
STASH = "os.path.join(os.environ['TORCHINDUCTOR_CACHE_DIR'], 'stash.pt')"
LEAVES_WEIGHTS = edit(HAND_OVER, HAND_OVER + (
    "os.makedirs(os.environ['TORCHINDUCTOR_CACHE_DIR'], exist_ok=True)\n"
    f"torch.save(raw_model.state_dict(), {STASH})\n"))
LOADS_WEIGHTS = edit("raw_model = model\n", f"model.load_state_dict(torch.load({STASH}))\n"
                     "raw_model = model\n")
NO_ARTIFACT = edit(HAND_OVER, "val_bpb = None  # never hands over\n")
SEED_ONLY = edit("SEED = 42", "SEED = 7")
HONEST = edit("LEARNING_RATE = 1e-2", "LEARNING_RATE = 2e-2")


@pytest.fixture
def data(small_data_dir, monkeypatch):
    monkeypatch.setenv("COCKPIT_DATA_DIR", str(small_data_dir))
    return small_data_dir


def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    init_workspace(ws)
    return ws


def config(budget: int = 2) -> Config:
    config = Config()
    config.experiment.time_budget = budget
    config.judge.baseline_runs = 1
    return config


@pytest.mark.slow
def test_training_code_that_cheats_is_a_crash_and_honest_code_is_measured(tmp_path, data,
                                                                          monkeypatch):
    monkeypatch.setattr(clock, "ALLOWANCE_FLOOR", 20.0)  # the test's runs start in seconds
    ws = workspace(tmp_path)
    settings = config()
    settings.experiment.timeout = 600  # the clock stops the run past its budget, on a slow
    # machine too (its allowance is twice the baseline's startup), before the hard limit
    # the seed change first: its diff is against the baseline, the seed line alone
    attacks = [SEED_ONLY, FAKE_NUMBER, PATCHED_EVAL, PAST_BUDGET, READS_VAL, NON_CAUSAL,
               LEAVES_WEIGHTS, LOADS_WEIGHTS, NO_ARTIFACT, HONEST]
    coordinator, ending = run_session(ws, 1 + len(attacks), agent=ScriptedAgent(*attacks),
                                      config=settings)
    assert ending.code == 0, ending.why
    state = coordinator.state
    assert state.trust == "measured" and state.seeds
    baseline, seed, fake, patched, budget, val, causal, leaves, loads, none, honest = \
        state.experiments
    assert baseline.status == "keep" and baseline.measured == MEASURED_BY_COCKPIT
    measured = baseline.metric
    # the data's fingerprint is read although the run cannot see the val split
    assert baseline.data_fingerprint and baseline.data_fingerprint != "None"
    assert measured is not None and 0.0 < measured < 20.0

    for exp in (fake, patched):
        assert (exp.status, exp.cause) == ("crash", causes.MISREPORTED), exp.reason
        assert "printed val_bpb 0.001000, cockpit measured" in exp.reason
    assert (budget.status, budget.cause) == ("crash", causes.OVER_BUDGET), budget.reason
    assert "trained past its budget" in budget.reason and "on a 2 s budget" in budget.reason
    assert budget.seconds < 2 + clock.ALLOWANCE_FACTOR * baseline.seconds + 10
    if SANDBOXED:  # without a sandbox nothing hides the split from the run (README)
        assert val.status == "crash", (val.status, val.metric, val.reason)
        assert "validation split" in val.reason, val.reason
    assert (causal.status, causal.cause) == ("crash", causes.NOT_MEASURED), causal.reason
    assert "causality probe failed" in causal.reason
    assert leaves.status in ("keep", "discard") and leaves.metric is not None
    assert loads.status == "crash" and "stash.pt" in loads.reason, loads.reason
    assert (none.status, none.cause) == ("crash", causes.NO_ARTIFACT)
    assert "hand_over(model)" in none.reason
    assert (seed.status, seed.cause) == ("discard", causes.SEED_CHANGE), seed.verdict
    assert honest.status in ("keep", "discard") and honest.cause == ""
    assert honest.measured == MEASURED_BY_COCKPIT
    cheats = [fake, patched, budget, causal, loads, none, seed] + ([val] if SANDBOXED else [])
    assert not any(e.status == "keep" for e in cheats)
    # nothing of the runs stays: their artifacts and the evaluators' folders are gone
    assert not any((ws / ".cockpit" / "t" / "scratch").iterdir())
    assert (ws / ".cockpit" / "t" / "runs" / "0001" / "evaluate.log").exists()


def test_a_train_py_without_an_artifact_is_reported_and_labelled_so(tmp_path):
    ws = make_workspace(tmp_path / "ws", train=FAKE_TRAIN)
    coordinator, ending = run_session(ws, 1, config=Config())
    assert ending.code == 0, ending.why
    assert coordinator.state.trust == "reported"
    [baseline] = coordinator.state.experiments
    assert baseline.measured == REPORTED_BY_TRAIN and baseline.metric is not None
    assert "reported by train.py" in (ws / "experiments.md").read_text()


def test_trust_measured_without_an_evaluator_is_one_line(tmp_path):
    ws = make_workspace(tmp_path / "ws", train=FAKE_TRAIN,
                        extra={"cockpit.toml": "[judge]\ntrust = \"measured\"\n"})
    out = cockpit("run", "--headless", "--experiments", "1", cwd=ws)
    assert out.returncode != 0
    assert "trust = \"measured\" but the workspace has no evaluator" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_a_broken_evaluator_is_said_before_the_baseline_runs(tmp_path, data):
    ws = workspace(tmp_path)
    (ws / "evaluate.py").write_text("import sys\nsys.exit(0)  # says nothing\n")
    import git

    git.Repo(ws).git.commit("-qam", "an evaluator that says nothing")
    coordinator, ending = run_session(ws, 1, config=config())
    assert ending.code != 0
    assert "the evaluator is not ready" in ending.why and "printed nothing" in ending.why
    assert not coordinator.state.experiments  # no budget was spent on the baseline


# A train.py that hands over a file, and an evaluator that takes its time: enough to kill
# cockpit while it measures.
HANDS_OVER = '''\
import os
SEED = 42
open(os.environ["COCKPIT_ARTIFACT"], "wb").write(b"x" * 1_000_000)
print("---")
print("training_seconds: 0.1")
'''
SLOW_EVALUATOR = '''\
import sys, time
if sys.argv[1:] == ["--check"]:
    print("evaluator ready")
    sys.exit(0)
if "-e1-" in sys.argv[1]:  # the first experiment's artifact: long enough to be killed
    time.sleep(60)
print("---")
print("val_bpb: 1.5")
'''


def test_cockpit_killed_while_it_measures_leaves_no_artifact_behind(tmp_path):
    """A kill -9 of cockpit during an evaluation: the resumed session removes what the run
    handed over (it may be gigabytes) and the evaluator's folder; nothing of it runs on."""
    import os
    import signal
    import subprocess
    import sys
    import time

    ws = make_workspace(tmp_path / "ws", train=HANDS_OVER,
                        extra={"evaluate.py": SLOW_EVALUATOR,
                               "cockpit.toml": "[judge]\nbaseline_runs = 0\n"})
    session = ws / ".cockpit" / "k"
    first = subprocess.Popen([sys.executable, "-m", "cockpit", "run", "--headless", "--tag", "k"],
                             cwd=ws, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list(session.glob("scratch/*/evaluate/evaluate.py")):
            assert time.monotonic() < deadline and first.poll() is None, "never measured"
            time.sleep(0.1)
        handed = list(session.glob("scratch/*/handover/model.pt2"))
        assert handed, "the artifact is where the run was told to write it"
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    again = cockpit("run", "--headless", "--experiments", "1", "--tag", "k", cwd=ws, timeout=120)
    assert "Traceback" not in again.stderr, again.stderr
    assert "#1 crash  interrupted" in again.stdout and "val_bpb 1.500000  keep" in again.stdout
    assert not handed[0].exists(), "the killed run's artifact is still on disk"
    assert not list(session.glob("scratch/*")), "the killed run's scratch is left"
    running = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert not [line for line in running.splitlines()
                if "evaluate.py" in line and str(session) in line], running


@pytest.mark.parametrize("old, new, only_the_seed", [
    ("SEED = 42  # random seed", "SEED = 7  # random seed", True),
    ("torch.manual_seed(42)", "torch.manual_seed(1)", True),
    ("data_seed = 3", "data_seed = 4", True),
    ("SEED_WARMUP_STEPS = 100", "SEED_WARMUP_STEPS = 200", False),  # named like one, not one
    ("seed = int(os.environ.get('COCKPIT_SEED', SEED))", "seed = 3", False),
    ("SEED = 42\nLR = 1", "SEED = 7\nLR = 2", False),
])
def test_a_change_of_the_seed_alone_is_told_from_an_idea(old, new, only_the_seed):
    from cockpit.domain.diffs import seed_only, unified_diff

    assert seed_only(unified_diff(old + "\n", new + "\n", "train.py")) is only_the_seed


def test_a_measurement_stopped_by_the_sessions_end_is_not_the_ideas_crash(tmp_path):
    """A run that trained and handed over, whose evaluation the session's end (or the
    human) stopped: ended with the session (or stopped), never `not_measured`, which would
    count against the idea and never be tried again."""
    from cockpit.runners.evaluation import Evaluation
    from cockpit.runners.local import RunResult
    from cockpit.runners.pool import Finished, Job
    from cockpit.session.judging import read_run

    log = tmp_path / "run.log"
    log.write_text("step 00099 (100.0%) | loss: 2.5\n")
    evaluation = Evaluation("python", "evaluate.py", {}, tmp_path / "eval", tmp_path / "a.pt2",
                            tmp_path / "evaluate.log", 60.0)
    for stop_cause, expected in (("the session's time is up", causes.SESSION_ENDED),
                                 ("", causes.STOPPED)):
        job = Job(n=3, worker=0, commit="c" * 40, command="python train.py", cwd=tmp_path,
                  log_path=log, timeout=60.0, evaluation=evaluation)
        killed = RunResult(-15, 4.0, stopped=True)
        result = RunResult(0, 30.0, handed_over=True, evaluation=killed)
        outcome = read_run(Finished(job, result), Config(), None, stop_cause, "measured")
        assert outcome.cause == expected, (stop_cause, outcome)
        assert outcome.value is None
