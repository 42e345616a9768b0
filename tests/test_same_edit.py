"""The same edit on other bests, on a real session whose runs print values the test scripts:
a near-miss whose edit was a near-miss on an earlier best too is kept on the two together;
one whose edit was behind there is not; nothing pools past a run that was stopped early."""
from __future__ import annotations

from pathlib import Path

import pytest
from support import ScriptedAgent, make_workspace, read_journal, run_session

from cockpit.domain.diffs import edit_key
from cockpit.domain.judge import Evidence, KeepPolicy, NoiseFloor, pooled
from cockpit.domain.state import Experiment, SessionState
from cockpit.session.judging import Judge
from cockpit.workspace.config import Config

# A run prints the next value scripted for its configuration (CHOICE, OTHER), so the same
# edit (CHOICE "a" -> "b") made on two bests is the same lines in two diffs.
TRAIN = '''\
import pathlib
CHOICE = "a"
OTHER = 1
queue = pathlib.Path(VALUES) / f"{CHOICE}-{OTHER}.txt"
values = queue.read_text().split()
queue.write_text(" ".join(values[1:]))
print("---")
print(f"val_bpb:          {float(values[0]):.6f}")
print("peak_vram_mb:     512.0")
'''
# Four baseline runs: mean 1.0, std 0.0082; a one-run keep needs a gain of 0.030.
BASELINE = "1.00 1.01 0.99 1.00"
KEEP = "0.95 0.95"  # OTHER 1 -> 2: clearly kept (then its keep re-run)


def source(values: Path, choice: str = "a", other: int = 1) -> str:
    return (TRAIN.replace("VALUES", repr(str(values))).replace('"a"', f'"{choice}"')
            .replace("OTHER = 1", f"OTHER = {other}"))


def session(tmp_path, first: str, again: str):
    """Baseline; CHOICE b on it (`first`); OTHER 2, kept; CHOICE b on that (`again`)."""
    values = tmp_path / "values"
    values.mkdir()
    for name, text in {"a-1": BASELINE, "b-1": first, "a-2": KEEP, "b-2": again}.items():
        (values / f"{name}.txt").write_text(text)
    ws = make_workspace(tmp_path / "ws", train=source(values))
    config = Config()
    config.sandbox.mode = "off"  # the runs read the test's value files
    config.judge.baseline_runs = 4
    config.judge.second_look = 0.0  # each measurement one run: the pooling alone decides
    agent = ScriptedAgent(source(values, "b"), source(values, "a", 2), source(values, "b", 2))
    coordinator, ending = run_session(ws, 4, agent=agent, config=config)
    assert ending.code == 0, ending.why
    return coordinator, {e["n"]: e for e in read_journal(ws, "t") if e["event"] == "result"}


def test_a_near_miss_on_two_bests_is_kept_on_both_together(tmp_path):
    coordinator, results = session(tmp_path, first="0.98", again="0.93 0.93")
    assert [e.status for e in coordinator.state.experiments] == [
        "keep", "discard", "keep", "keep"]
    assert "near-miss" in results[2]["verdict"]
    # Alone, #4's gain of 0.02 is short of its bar; with #2's 0.02 on the baseline it is not.
    assert results[4]["threshold"] < 0.02 < coordinator.judge.policy.threshold(
        coordinator.state.floor(), 2, 1)
    assert results[4]["pooled"] == [2]
    assert "and the same edit on another best (#2 +0.020000)" in results[4]["verdict"]
    assert coordinator.state.best.n == 4 and coordinator.state.get(4).pooled == [2]


def test_a_near_miss_whose_edit_was_behind_on_another_best_stays_one(tmp_path):
    coordinator, results = session(tmp_path, first="1.01", again="0.93")
    assert [e.status for e in coordinator.state.experiments] == [
        "keep", "discard", "keep", "discard"]
    assert "near-miss" in results[4]["verdict"] and not results[4]["pooled"]
    assert coordinator.state.best.n == 3


# ---------------------------------------------------------------------------
# The policy and the evidence, without a session


def test_the_same_edit_is_the_same_lines_whatever_else_the_file_says():
    one = "--- a/train.py\n+++ b/train.py\n@@ -2 +2 @@\n-CHOICE = \"a\"\n+CHOICE = \"b\"\n"
    moved = one.replace("@@ -2 +2 @@", "@@ -9 +9 @@").replace("-CHOICE", "-  CHOICE")
    assert edit_key(one) == edit_key(moved) is not None
    assert edit_key(one) != edit_key(one.replace('+CHOICE = "b"', '+CHOICE = "c"'))
    assert edit_key("--- a/train.py\n+++ b/train.py\n") is None


def test_pooled_evidence_weighs_each_measurement_by_its_runs():
    floor = NoiseFloor(std=0.01, dof=30, runs=40, groups=5)
    policy = KeepPolicy()
    one = Evidence(0.02, runs=1, bar_runs=4)
    assert policy.bar_for(floor, one.weight) == pytest.approx(policy.threshold(floor, 4, 1))
    gain, weight = pooled([one, Evidence(0.01, runs=2, bar_runs=2)], floor.std)
    assert weight == pytest.approx(0.8 + 1.0)  # gains within the noise: plain weights
    assert gain == pytest.approx((0.02 * 0.8 + 0.01) / 1.8)
    # Gains that disagree beyond the noise (one model helped by 8 stds, another by none)
    # rest on less together than their runs alone would say.
    apart, weight = pooled([Evidence(0.08, 1, 4), Evidence(0.0, 1, 4)], floor.std)
    assert apart == pytest.approx(0.04) and weight < 0.5 * (0.8 + 0.8)
    # 2.1 stds ahead twice: each short of its own bar, together past theirs.
    twice = Evidence(0.021, 1, 4)
    assert policy.decide(1 - 0.021, 1.0, floor, best_runs=4).status == "discard"
    verdict = policy.pool(twice, [(7, twice)], floor)
    assert verdict is not None and verdict.status == "keep"
    assert "and the same edit on another best (#7 +0.021000)" in verdict.why
    assert policy.pool(twice, [(7, Evidence(-0.01, 1, 4))], floor) is None  # behind there
    assert policy.pool(Evidence(-0.001, 1, 4), [(7, twice)], floor) is None  # behind here
    assert KeepPolicy(min_delta=0.001).pool(twice, [(7, twice)], floor) is None  # fixed bar
    assert policy.pool(twice, [(7, twice)], None) is None  # no floor yet


def judge_with(*experiments: Experiment, measured: dict[str, list[float]]) -> Judge:
    state = SessionState()
    for exp in experiments:
        state.experiments.append(exp)
        state._by_n[exp.n] = exp
    state.measured = measured
    return Judge(state, Config())


DIFF = "--- a/train.py\n+++ b/train.py\n@@ -2 +2 @@\n-CHOICE = \"a\"\n+CHOICE = \"b\"\n"
RUNS = {"best1": [1.0, 1.01, 0.99, 1.0], "best2": [0.95, 0.95], "c3": [0.98], "c4": [0.93],
        "c5": [0.97]}


def test_the_same_edit_is_measured_against_its_own_base_as_both_read_today():
    now = Experiment(n=9, diff=DIFF, base="best2")
    ahead = Experiment(n=3, commit="c3", diff=DIFF, base="best1", status="discard")
    # made on best1, judged after the best moved to best2: carried onto it (a rebase)
    again = Experiment(n=4, commit="c4", diff=DIFF, base="best1", status="discard",
                       carried="best2")
    other_edit = Experiment(n=5, commit="c5", diff=DIFF.replace('"b"', '"c"'), base="best1",
                            status="discard")
    judge = judge_with(ahead, again, other_edit, now, measured=RUNS)
    found = judge.same_edit(now, [0.94])
    assert found is not None
    here, earlier = found
    # here: its run with #4's on the same best, against best2's two runs
    assert (here.runs, here.bar_runs) == (2, 2)
    assert here.gain == pytest.approx(0.95 - (0.94 + 0.93) / 2)
    assert [(n, e.runs, e.bar_runs) for n, e in earlier] == [(3, 1, 4)]
    assert earlier[0][1].gain == pytest.approx(0.02)
    assert judge.repeats(now) == [4]


def test_a_measurement_stopped_early_or_broken_pools_nothing():
    now = Experiment(n=9, diff=DIFF, base="best2")
    ahead = Experiment(n=3, commit="c3", diff=DIFF, base="best1", status="discard")
    stopped = Experiment(n=6, diff=DIFF, base="best0", status="discard",
                         early_stop={"progress": 25.0})
    assert judge_with(ahead, stopped, now, measured=RUNS).same_edit(now, [0.94]) is None
    broke = Experiment(n=6, diff=DIFF, base="best0", status="crash", cause="")
    assert judge_with(ahead, broke, now, measured=RUNS).same_edit(now, [0.94]) is None


def test_a_pooled_keep_is_flagged_by_its_pooled_bar_once_the_floor_grows():
    ahead = Experiment(n=3, commit="c3", diff=DIFF, base="best1", status="discard")
    kept = Experiment(n=9, commit="c9", diff=DIFF, base="best2", status="keep",
                      delta_best=-0.02, runs=1, bar_runs=2, threshold=0.0167, pooled=[3])
    judge = judge_with(ahead, kept, measured=dict(RUNS, c9=[0.93]))
    judge.state.noise = {"values": RUNS["best1"]}  # the session measured its noise
    rests = judge.evidence(kept)
    assert rests is not None
    gain, weight = rests
    assert gain == pytest.approx(0.02) and weight == pytest.approx(0.8 + 1 / 1.5)
    assert judge.flags() == []  # today's floor (±0.0071) still backs it
    judge.state.measured["c7"] = [0.95, 0.99]  # a wider floor since
    assert [n for n, _ in judge.flags()] == [9]
