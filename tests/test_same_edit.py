"""The same edit on other bests, on a real session whose runs print values the test scripts:
a near-miss whose edit was a near-miss on an earlier best too is kept on the two together;
one whose edit was behind there is not; nothing pools past a run that was stopped early."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from support import ScriptedAgent, make_workspace, read_journal, run_session

from cockpit.domain.diffs import edit_key
from cockpit.domain.judge import Evidence, KeepPolicy, NoiseFloor, pooled
from cockpit.domain.state import Experiment, SessionState
from cockpit.session.judging import Judge
from cockpit.tui.view import SessionView
from cockpit.workspace.config import Config

# A run prints the next value scripted for its configuration (CHOICE, OTHER), so the same
# edit (CHOICE "a" -> "b") made on two bests is the same lines in two diffs.
TRAIN = '''\
import pathlib, time
CHOICE = "a"
OTHER = 1
pause = pathlib.Path(VALUES) / "seconds"  # how long a run trains, when the test says
time.sleep(float(pause.read_text()) if pause.exists() else 0)
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
    assert results[4]["pooled_with"] == [2]
    assert results[4]["pooled_gain"] == pytest.approx(0.02)
    assert "and the same edit on another best (#2 +0.020000)" in results[4]["verdict"]
    assert coordinator.state.best.n == 4 and coordinator.state.get(4).pooled_with == [2]
    # the change pane shows the gain its bar was set for, and what it was pooled with
    line = SessionView(coordinator.state).verdict(coordinator.state.get(4))
    assert line is not None
    shown = line.render().plain
    assert "gain +0.020000 > " in shown and "its edit's runs pooled with #2" in shown


def test_a_near_miss_whose_edit_was_behind_on_another_best_stays_one(tmp_path):
    coordinator, results = session(tmp_path, first="1.01", again="0.93")
    assert [e.status for e in coordinator.state.experiments] == [
        "keep", "discard", "keep", "discard"]
    assert "near-miss" in results[4]["verdict"] and not results[4]["pooled_with"]
    assert coordinator.state.best.n == 3


def test_an_agent_that_proposes_one_edit_again_and_again_cannot_look_until_it_keeps(tmp_path):
    """Each pooled judgement is one more look: an edit's fourth measurement on, it stands on
    its own runs, or an agent repeating it would keep it once the pooled gain happened to
    cross its bar (here the fourth time: four runs 0.02 ahead clear 0.019)."""
    values = tmp_path / "values"
    values.mkdir()
    (values / "a-1.txt").write_text(BASELINE)
    (values / "b-1.txt").write_text("0.98 " * 5)
    ws = make_workspace(tmp_path / "ws", train=source(values))
    config = Config()
    config.sandbox.mode = "off"
    config.judge.baseline_runs = 4
    config.judge.second_look = 0.0
    agent = ScriptedAgent(*[source(values, "b")] * 5)
    coordinator, ending = run_session(ws, 6, agent=agent, config=config)
    assert ending.code == 0, ending.why
    assert [e.status for e in coordinator.state.experiments] == ["keep"] + ["discard"] * 5
    results = {e["n"]: e for e in read_journal(ws, "t") if e["event"] == "result"}
    assert "near-miss" in results[4]["verdict"]  # pooled over 3 runs: 0.02 < 0.0206
    assert not any(results[n]["pooled_with"] for n in results)
    # the same runs, pooled without the limit, would have kept the fourth
    judge = coordinator.judge
    here = Evidence(0.02, runs=4, bar_runs=4)
    assert judge.policy.pool(here, [], coordinator.state.floor()) is not None


class SlowAgent(ScriptedAgent):
    """Takes a moment to propose, so the next proposal is asked while a run is in flight
    (made on the best before that run's result)."""

    def propose(self, ctx):
        time.sleep(1.2)  # past proposals.AHEAD_MIN_SECONDS: asked ahead of the free worker
        return super().propose(ctx)


@pytest.mark.slow
def test_a_change_carried_onto_a_best_that_already_has_it_is_not_run(tmp_path):
    """#3 makes #2's change on the baseline while #2 runs; #2 is kept, and carried onto it
    #3 would change nothing: it is journaled as not run, and the session goes on."""
    values = tmp_path / "values"
    values.mkdir()
    for name, text in {"a-1": BASELINE, "b-1": "0.95 0.95", "b-2": "0.96 0.96"}.items():
        (values / f"{name}.txt").write_text(text)
    (values / "seconds").write_text("2.5")  # long enough for the next proposal to come
    ws = make_workspace(tmp_path / "ws", train=source(values))
    config = Config()
    config.sandbox.mode = "off"
    config.judge.baseline_runs = 0  # a fixed bar: no noise runs
    config.judge.min_delta = 0.01
    agent = SlowAgent(source(values, "b"), source(values, "b"), source(values, "b", 2),
                      source(values, "b", 2))
    coordinator, ending = run_session(ws, 4, agent=agent, config=config)
    assert ending.code == 0, ending.why
    events = read_journal(ws, "t")
    rebased = [e for e in events if e["event"] == "rebase" and e["n"] == 3]
    assert rebased and rebased[0]["clean"]  # #3 was made on the baseline, #2 moved the best
    third = coordinator.state.get(3)
    assert (third.status, third.cause, third.commit) == ("rejected", "already_in", None)
    assert "already has its change" in third.reason
    assert not [e for e in events if e["event"] == "run_start" and e["n"] == 3]
    assert coordinator.state.get(4).status == "discard"  # the next one ran


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
    verdict = policy.pool(twice, [("#7", twice)], floor)
    assert verdict is not None and verdict.status == "keep"
    assert "and the same edit on another best (#7 +0.021000)" in verdict.why
    assert policy.pool(twice, [("#7", Evidence(-0.01, 1, 4))], floor) is None  # behind there
    assert policy.pool(Evidence(-0.001, 1, 4), [("#7", twice)], floor) is None  # behind here
    assert KeepPolicy(min_delta=0.001).pool(twice, [("#7", twice)], floor) is None  # fixed bar
    assert policy.pool(twice, [("#7", twice)], None) is None  # no floor yet


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
                       carried_onto="best2")
    other_edit = Experiment(n=5, commit="c5", diff=DIFF.replace('"b"', '"c"'), base="best1",
                            status="discard")
    judge = judge_with(ahead, again, other_edit, now, measured=RUNS)
    found = judge.same_edit(now, [0.94])
    assert found is not None
    # here: its run with #4's on the same best, against best2's two runs
    assert (found.here.runs, found.here.bar_runs) == (2, 2)
    assert found.here.gain == pytest.approx(0.95 - (0.94 + 0.93) / 2)
    assert [(names, e.runs, e.bar_runs) for names, e in found.elsewhere] == [("#3", 1, 4)]
    assert found.elsewhere[0][1].gain == pytest.approx(0.02)
    assert found.others == [3, 4]


def test_an_edit_pools_on_its_first_three_measurements_and_no_more():
    now = Experiment(n=9, diff=DIFF, base="best2")
    earlier = [Experiment(n=n, commit=f"c{n}", diff=DIFF, base="best1", status="discard")
               for n in (3, 4, 5)]
    runs = dict(RUNS, c3=[0.98], c4=[0.98], c5=[0.98])
    assert judge_with(*earlier[:2], now, measured=runs).same_edit(now, [0.94]) is not None
    assert judge_with(*earlier, now, measured=runs).same_edit(now, [0.94]) is None


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
                      delta_best=-0.02, runs=1, bar_runs=2, threshold=0.0167, pooled_with=[3])
    # the same edit stopped early on another best after the keep: not what it was kept on
    later = Experiment(n=12, diff=DIFF, base="best3", status="discard",
                       early_stop={"progress": 25.0})
    judge = judge_with(ahead, kept, later, measured=dict(RUNS, c9=[0.93]))
    judge.state.noise = {"values": RUNS["best1"]}  # the session measured its noise
    rests = judge.rests_on(kept)
    assert rests is not None
    gain, weight = rests
    assert gain == pytest.approx(0.02) and weight == pytest.approx(0.8 + 1 / 1.5)
    assert judge.flags() == []  # today's floor (±0.0071) still backs it
    judge.state.measured["c7"] = [0.95, 0.99]  # a wider floor since
    assert [n for n, _ in judge.flags()] == [9]


def test_a_change_carried_onto_a_later_best_is_built_on_it_once_the_journal_says_so():
    state = SessionState()
    for n in (1, 2):
        state.apply({"event": "proposal", "n": n, "description": "x", "base": "old"})
    state.apply({"event": "rebase", "n": 1, "onto": "new", "was": "old", "clean": True})
    state.apply({"event": "rebase", "n": 2, "onto": "new", "was": "old", "clean": True})
    # a resume carries #2 again, and this time its change no longer applies
    state.apply({"event": "rebase", "n": 2, "onto": "old", "was": "old", "clean": False})
    assert (state.get(1).built_on, state.get(2).built_on) == ("new", "old")
