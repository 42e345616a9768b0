"""Honest judging: noise floor, keep policy, confirm, report and finalize."""
from __future__ import annotations

import git
import pytest
from support import (
    ScriptedAgent,
    cockpit,
    make_workspace,
    read_journal,
    results_rows,
)

from cockpit.domain.judge import (
    KeepPolicy,
    Noise,
    NoiseFloor,
    small_sample_factor,
    t_quantile,
    welch_t,
)
from cockpit.domain.state import SessionState
from cockpit.session.coordinator import Coordinator
from cockpit.workspace.config import Config
from cockpit.workspace.report import SessionFacts, write_report

# A train.py whose metric is a true effect plus seeded Gaussian noise (sigma 0.01): each
# run draws the next seed from a counter file, so a session is random-looking yet repeatable.
# The counter lives outside the worktree (every run starts from the commit's files alone),
# so the sessions run unsandboxed.
NOISY_TRAIN = '''\
import os, random
EFFECT = 0.0  # the change's true effect on val_bpb
IDEA = 0  # which scripted idea this is
path = COUNTER
k = int(open(path).read()) if os.path.exists(path) else 0
open(path, "w").write(str(k + 1))
val = 1.0 + EFFECT + random.Random(k * 7919 + 1).gauss(0, 0.01)
print("---")
print(f"val_bpb:          {val:.6f}")
print("peak_vram_mb:     512.0")
'''


def noisy_train(tmp_path) -> str:
    return NOISY_TRAIN.replace("COUNTER", repr(str(tmp_path / "runcount")))


def idea(effect: float, n: int, tmp_path) -> str:
    return noisy_train(tmp_path).replace("EFFECT = 0.0", f"EFFECT = {effect}").replace(
        "IDEA = 0", f"IDEA = {n}")


UNSANDBOXED = {"cockpit.toml": '[sandbox]\nmode = "off"\n'}  # for the CLI's sessions too


# Real gains of 5 sigma among noise-only changes (same effect as the best, a new IDEA).
IDEAS = [(0.0, 1), (-0.05, 2), (-0.05, 3), (-0.10, 4), (-0.10, 5), (-0.10, 6), (-0.10, 7)]
REAL = {2, 4}


def noisy_session(tmp_path, min_delta, baseline_runs=4):
    ws = make_workspace(tmp_path / "ws", train=noisy_train(tmp_path), extra=UNSANDBOXED)
    config = Config()
    config.sandbox.mode = "off"
    config.judge.min_delta = min_delta
    config.judge.baseline_runs = baseline_runs
    loop = Coordinator(ws, config, "noisy",
                       agent=ScriptedAgent(*(idea(*i, tmp_path) for i in IDEAS)))
    loop.run(1 + len(IDEAS))
    return ws, loop


def test_noise_aware_policy_keeps_real_gains_and_rejects_noise(tmp_path):
    ws, loop = noisy_session(tmp_path, "auto")
    noise = next(e for e in read_journal(ws, "noisy") if e["event"] == "noise")
    assert len(noise["values"]) == 4 and 0.002 < noise["spread"] < 0.03
    assert loop.state.floor().runs >= 4
    ideas = loop.state.experiments[1:]
    kept = {IDEAS[i][1] for i, e in enumerate(ideas) if e.status == "keep"}
    assert kept == REAL
    for e in ideas:
        assert e.verdict and (e.confidence is not None)
    assert all(e.confidence > 2 for e in ideas if e.status == "keep")
    # results.tsv keeps the reference's columns and descriptions
    assert [r[4] for r in results_rows(ws)][1:] == [f"scripted change {n}" for n in range(2, 9)]
    events = read_journal(ws, "noisy")
    purposes = [e["purpose"] for e in events if e["event"] == "measure"]
    assert purposes == ["noise"] * 3 + ["keep"] * 2  # each kept commit ran once more
    assert sum(e["event"] == "noise" for e in events) == 1


def test_min_delta_zero_is_the_reference_and_keeps_noise(tmp_path):
    _ws, loop = noisy_session(tmp_path, 0.0, baseline_runs=0)  # the reference: one run each
    ideas = loop.state.experiments[1:]
    kept = {IDEAS[i][1] for i, e in enumerate(ideas) if e.status == "keep"}
    assert kept >= REAL and kept - REAL, "some noise-only change should pass a zero threshold"
    best = loop.state.baseline.metric
    for e in loop.state.experiments[1:]:  # every strict improvement was kept
        assert (e.status == "keep") == (e.metric < best)
        best = min(best, e.metric)


def test_t_quantiles_match_the_table():
    # Student's t, two-sided 95% and one-sided 95%, from any statistics table.
    for dof, t975, t95 in [(1, 12.706, 6.314), (2, 4.303, 2.920), (3, 3.182, 2.353),
                           (5, 2.571, 2.015), (10, 2.228, 1.812), (30, 2.042, 1.697)]:
        assert t_quantile(0.975, dof) == pytest.approx(t975, abs=5e-4)
        assert t_quantile(0.95, dof) == pytest.approx(t95, abs=5e-4)
    assert t_quantile(0.025, 4) == pytest.approx(-2.776, abs=5e-4)
    assert t_quantile(0.975, 5000) == pytest.approx(1.95996, abs=1e-4)  # the normal's
    factors = [small_sample_factor(dof, 2.0) for dof in (1, 3, 30)]
    assert factors == sorted(factors, reverse=True) and factors[-1] > 1


def test_pooled_floor_from_groups_of_runs():
    groups = {"base": [1.00, 1.02], "keep": [0.90, 0.93, 0.96], "once": [0.8], "crash": [None]}
    floor = NoiseFloor.from_groups(groups)
    # squared deviations from each group's own mean: 2 * 0.01^2 + 2 * 0.03^2, over 1 + 2 dof
    assert floor.std == pytest.approx(((2 * 0.01 ** 2 + 2 * 0.03 ** 2) / 3) ** 0.5)
    assert (floor.dof, floor.runs, floor.groups) == (3, 5, 2)
    assert floor.describe() == f"noise floor: ±{floor.std:.4f} from 5 runs of 2 commits"
    assert NoiseFloor.from_groups([[1.0], [2.0]]) is None
    assert NoiseFloor.from_groups([[1.0, 1.01, 0.99]]).describe().endswith("3 runs of 1 commit")


def test_floor_from_a_journal_pools_every_rerun_of_a_commit():
    events = [{"event": "proposal", "n": n, "description": f"#{n}"} for n in (1, 2, 3)]
    events += [{"event": "result", "n": 1, "commit": "a", "status": "keep", "metric": 1.00},
              {"event": "measure", "commit": "a", "purpose": "noise", "metric": 1.02},
              {"event": "noise", "commit": "a", "values": [1.00, 1.02]},  # not counted twice
              {"event": "result", "n": 2, "commit": "b", "status": "keep", "metric": 0.90},
              {"event": "measure", "commit": "b", "purpose": "keep", "metric": 0.96},
              {"event": "measure", "commit": "b", "purpose": "confirm", "metric": None},
              {"event": "result", "n": 3, "commit": "c", "status": "crash", "metric": None}]
    floor = NoiseFloor.from_groups(SessionState.from_events(events).measured)
    assert (floor.runs, floor.groups, floor.dof) == (4, 2, 2)
    assert floor.std == pytest.approx(((2 * 0.01 ** 2 + 2 * 0.03 ** 2) / 2) ** 0.5)


def test_the_bar_widens_for_a_young_floor_and_narrows_for_a_bar_of_many_runs():
    policy = KeepPolicy("lower", "auto", 2.0)
    young = NoiseFloor(std=0.01, dof=1, runs=2, groups=1)
    grown = NoiseFloor(std=0.01, dof=20, runs=26, groups=6)
    assert policy.threshold(young) > 6 * policy.threshold(grown) / 2
    assert policy.threshold(grown, best_runs=4) < policy.threshold(grown, best_runs=1)
    assert policy.threshold(grown, best_runs=1) == pytest.approx(
        2 * small_sample_factor(20, 2.0) * 0.01 * 2 ** 0.5)
    # The within-noise keep of "+2.3x noise" from a 2-run floor is a near-miss now.
    verdict = policy.decide(1.0 - 0.023, 1.0, young)
    assert verdict.status == "discard" and verdict.near_miss
    assert verdict.confidence == pytest.approx(2.3) and "near-miss" in verdict.why


def test_chance_of_keeping_a_change_that_does_nothing_stays_near_the_design():
    """Null changes judged against a floor of 2 runs: without the small-sample factor a
    2-run floor keeps ~15% of them; with it, about 1 - Phi(2) = 2.3%."""
    import random

    rng = random.Random(5)
    policy, keeps, trials = KeepPolicy("lower", "auto", 2.0), 0, 4000
    for _ in range(trials):
        floor = NoiseFloor.from_groups([[rng.gauss(0, 1), rng.gauss(0, 1)]])
        best, value = rng.gauss(0, 1), rng.gauss(0, 1)
        keeps += policy.decide(value, best, floor).status == "keep"
    assert 0.01 < keeps / trials < 0.04


def test_a_second_look_keeps_more_real_gains_and_few_more_null_changes():
    """Changes judged against a floor of 4 + 5 runs and the mean of the best's 5: with a
    second look for near-misses at half their bar, a change that does nothing is kept
    under 5% of the time (2.3% on one run), a real gain of 2 std far more often."""
    import random

    rng = random.Random(11)
    policy = KeepPolicy("lower", "auto", 2.0)

    def kept(effect: float) -> tuple[bool, bool]:
        floor = [[rng.gauss(0, 1) for _ in range(4)], [rng.gauss(0, 1) for _ in range(5)]]
        bar, first = sum(floor[1]) / 5, rng.gauss(-effect, 1)
        verdict = policy.decide(first, bar, NoiseFloor.from_groups(floor), best_runs=5)
        if verdict.status == "keep" or not policy.second_look_due(verdict, 0.5):
            return verdict.status == "keep", verdict.status == "keep"
        pair = [first, rng.gauss(-effect, 1)]
        again = policy.decide(sum(pair) / 2, bar, NoiseFloor.from_groups(floor),
                              best_runs=5, runs=2)
        return False, again.status == "keep"

    null = [kept(0.0) for _ in range(3000)]
    real = [kept(2.0) for _ in range(1500)]
    assert sum(b for _, b in null) / 3000 < 0.05
    one_run, looked = (sum(x[i] for x in real) / 1500 for i in (0, 1))
    assert looked > one_run + 0.12  # 52% vs 33% in bench/bench_second_look.py
    floor = NoiseFloor(0.01, 9, 10, 1)
    far, close = (policy.decide(1.0 - gain, 1.0, floor, best_runs=5) for gain in (0.01, 0.02))
    assert far.near_miss and close.near_miss  # the bar: 0.0254
    assert not policy.second_look_due(far, 0.5) and policy.second_look_due(close, 0.5)
    assert not policy.second_look_due(close, 0.0)  # 0: never


def test_policy_decisions():
    policy = KeepPolicy("lower", "auto", 2.0)
    floor = NoiseFloor.from_groups([[1.00, 1.01, 0.99]] * 4)  # std 0.01, dof 8
    threshold = policy.threshold(floor, best_runs=3)
    assert threshold == pytest.approx(2 * small_sample_factor(8, 2.0) * 0.01 * (4 / 3) ** 0.5)
    keep = policy.decide(0.95, 1.0, floor, best_runs=3)
    assert keep.status == "keep" and not keep.near_miss
    assert keep.why.startswith("beats the best's mean of 3 runs by 0.050000")
    assert "+5.0x the noise; noise floor: ±0.0100 from 12 runs of 4 commits" in keep.why
    near = policy.decide(0.99, 1.0, floor, best_runs=3)
    assert near.status == "discard" and near.near_miss and near.gain == pytest.approx(0.01)
    worse = policy.decide(1.02, 1.0, floor)
    assert worse.status == "discard" and not worse.near_miss
    assert worse.why.startswith("worse than the best's single run by 0.020000")
    tie = policy.decide(1.005, 1.0, floor, lines_delta=-3)
    assert tie.status == "keep" and "simpler" in tie.why
    assert policy.decide(1.005, 1.0, floor, lines_delta=+3).status == "discard"
    # No floor: any gain keeps, and the words say so.
    bare = policy.decide(0.999, 1.0, None)
    assert bare.status == "keep" and "no noise floor: any gain keeps" in bare.why
    # A single commit's runs (a journal's noise event) serve as a floor too.
    assert policy.threshold(Noise([1.00, 1.01, 0.99])) == policy.threshold(
        NoiseFloor.from_groups([[1.00, 1.01, 0.99]]))
    higher = KeepPolicy("higher", "auto")
    assert higher.decide(0.90, 0.80, floor).status == "keep"
    up = higher.decide(0.805, 0.80, floor)
    assert up.status == "discard" and up.near_miss and up.gain == pytest.approx(0.005)
    assert higher.decide(0.78, 0.80, floor).why.startswith("worse than the best's single run")
    fixed = KeepPolicy("higher", 0.0)
    assert fixed.decide(0.81, 0.80, None).status == "keep"
    assert fixed.decide(0.80, 0.80, None).status == "discard"
    assert welch_t([1.0, 1.01, 0.99], [0.9, 0.91, 0.89]) > 10


def test_a_keep_judged_under_a_smaller_floor_asks_for_confirm():
    policy = KeepPolicy("lower")
    then = NoiseFloor(std=0.002, dof=1, runs=2, groups=1)
    now = NoiseFloor(std=0.02, dof=6, runs=9, groups=3)
    bar_then = policy.threshold(then)
    assert 0.03 < bar_then < policy.threshold(now)
    assert policy.needs_confirm(0.04, bar_then, now)  # kept then, within the noise now
    assert not policy.needs_confirm(0.5, bar_then, now)  # clears today's bar too
    assert not policy.needs_confirm(0.04, policy.threshold(now), then)  # the floor shrank


def test_near_misses_from_recorded_experiments():
    from cockpit.domain.state import Experiment

    lower = Experiment(n=2, status="discard", metric=0.99, delta_best=-0.01)
    assert lower.near_miss("lower") and not lower.near_miss("higher")
    assert not Experiment(n=3, status="discard", metric=1.01, delta_best=0.01).near_miss(
        "lower")
    stopped = Experiment(n=4, status="discard", metric=None, delta_best=None,
                         early_stop={"progress": 50.0, "loss": 4.0, "best_loss": 3.5,
                                     "sigmas": 8.0})
    assert not stopped.near_miss("lower")
    assert not Experiment(n=5, status="keep", metric=0.9, delta_best=-0.1).near_miss("lower")


@pytest.mark.slow
def test_confirm_says_whether_the_gain_holds(tmp_path):
    ws, loop = noisy_session(tmp_path, "auto", baseline_runs=2)
    result = cockpit("confirm", "--runs", "3", cwd=ws)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "holds beyond the noise" in result.stdout and "baseline" in result.stdout
    measures = [e for e in read_journal(ws, "noisy") if e["event"] == "measure"]
    assert sum(e["purpose"] == "confirm" for e in measures) == 6
    repo = git.Repo(ws)
    assert repo.commit("autoresearch/noisy").hexsha == loop.state.best.commit
    assert not repo.is_dirty() and len(repo.git.worktree("list").splitlines()) == 1


def test_confirm_measures_at_the_budget_the_session_measured_at(tmp_path):
    ws = make_workspace(tmp_path / "ws", train=noisy_train(tmp_path), extra=UNSANDBOXED)
    config = Config()
    config.sandbox.mode = "off"
    config.experiment.time_budget = 7  # as `cockpit run --budget 7`; cockpit.toml says 300
    config.judge.baseline_runs = 0
    Coordinator(ws, config, "b",
                agent=ScriptedAgent(*(idea(*i, tmp_path) for i in IDEAS[:2]))).run(3)
    result = cockpit("confirm", "--runs", "2", cwd=ws)
    assert "baseline" in result.stdout, result.stdout + result.stderr
    sessions = [e for e in read_journal(ws, "b") if e["event"] == "session"]
    assert len(sessions) == 2 and sessions[-1]["config"]["experiment"]["time_budget"] == 7


@pytest.mark.slow
def test_noise_command_measures_the_best_commit(tmp_path):
    ws, loop = noisy_session(tmp_path, "auto", baseline_runs=0)
    assert loop.state.floor() is None
    result = cockpit("noise", "--runs", "3", cwd=ws)
    assert result.returncode == 0, result.stderr
    assert "noise floor: std" in result.stdout and "over 3 runs" in result.stdout
    noise = [e for e in read_journal(ws, "noisy") if e["event"] == "noise"]
    assert len(noise) == 1 and noise[0]["commit"] == loop.state.best.commit


def synthetic_journal(n: int) -> list[dict]:
    """A session of n experiments: a slow real improvement, noise, and some crashes."""
    import random

    rng = random.Random(3)
    events = [{"event": "session", "time": 1000.0, "tag": "big", "branch": "autoresearch/big",
               "base": "b" * 40, "metric": "val_bpb", "direction": "lower"},
              {"event": "noise", "time": 1001.0, "values": [1.50, 1.51, 1.49]}]
    best = None
    for k in range(1, n + 1):
        t = 1000.0 + 300 * k
        metric = None if k % 17 == 0 else round(1.5 - 0.3 * (k / n) + rng.gauss(0, 0.02), 6)
        status = ("crash" if metric is None else
                  "keep" if best is None or metric < best - 0.01 else "discard")
        delta = None if metric is None or best is None else metric - best
        if status == "keep":
            best = metric
        events += [
            {"event": "proposal", "time": t, "n": k, "description": f"idea {k}",
             "hypothesis": f"because {k}", "diff": ""},
            {"event": "result", "time": t + 290, "n": k, "commit": f"{k:07x}" + "0" * 33,
             "status": status, "metric": metric, "seconds": 290.0,
             "reason": "exit code 1: RuntimeError: boom" if metric is None else "",
             "delta_best": delta, "confidence": None if delta is None else -delta / 0.01},
            {"event": "attempt", "time": t, "cost_usd": 0.002},
        ]
    return events


def test_report_plot_and_markdown_match_the_journal(tmp_path):
    events = synthetic_journal(300)
    plot, md = write_report(events, tmp_path)
    import matplotlib.image

    image = matplotlib.image.imread(plot)
    assert image.shape[:2] == (700, 1400)
    rgb = (image[..., :3] * 255).astype(int)
    green = ((abs(rgb[..., 0] - 0x2e) < 12) & (abs(rgb[..., 1] - 0xcc) < 12)
             & (abs(rgb[..., 2] - 0x71) < 12)).sum()
    # discarded points: grey #bbbbbb at alpha 0.6 over white
    grey = ((abs(rgb[..., 0] - 0xd6) < 8) & (abs(rgb[..., 1] - 0xd6) < 8)
            & (abs(rgb[..., 2] - 0xd6) < 8)).sum()
    assert green > 500 and grey > 2000  # kept and discarded points were drawn

    state = SessionState.from_events(events)
    text = md.read_text()
    crashes = sum(e.status == "crash" for e in state.experiments)
    kept = sum(e.status == "keep" for e in state.experiments) - 1
    assert f"300 experiments: {kept} kept improvements" in text
    assert f"{crashes} crashed" in text and text.count("RuntimeError: boom") == crashes
    assert f"val_bpb {state.best.metric:.6f}" in text
    assert f"{state.best.metric - state.baseline.metric:+.6f}" in text
    assert "$0.6000 of model calls" in text
    facts = SessionFacts.from_events(events)
    gains = [-(e.delta_best) for e in facts.kept_changes]
    assert gains == sorted(gains, reverse=True)


@pytest.mark.slow
def test_finalize_makes_a_clean_branch_of_kept_changes(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    loop = Coordinator(ws, Config(), "f")
    loop.run(6)
    repo = git.Repo(ws)
    session_head = repo.heads["autoresearch/f"].commit.hexsha
    kept = [e for e in loop.state.experiments[1:] if e.status == "keep"]
    result = cockpit("finalize", cwd=ws)
    assert result.returncode == 0, result.stderr
    final = repo.heads["autoresearch/f-final"].commit
    chain = list(repo.iter_commits("autoresearch/f-final"))[: len(kept)][::-1]
    assert [c.message.splitlines()[0] for c in chain] == [e.description for e in kept]
    assert all("Hypothesis:" in c.message and "Measured: val_bpb" in c.message for c in chain)
    assert chain[0].parents[0].hexsha == loop.state.base
    assert final.tree.hexsha == repo.commit(loop.state.best.commit).tree.hexsha
    assert repo.heads["autoresearch/f"].commit.hexsha == session_head
    again = cockpit("finalize", cwd=ws)
    assert again.returncode == 2 and "already exists" in again.stderr
