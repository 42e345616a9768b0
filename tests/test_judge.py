"""Honest judging: noise floor, keep policy, confirm, report and finalize."""
from __future__ import annotations

import json

import git
import pytest
from support import (
    FAKE_TRAIN,
    ScriptedAgent,
    cockpit,
    make_workspace,
    read_journal,
    results_rows,
)

from cockpit.config import Config
from cockpit.journal import SessionState
from cockpit.judge import KeepPolicy, Noise, welch_t
from cockpit.loop import ResearchLoop
from cockpit.report import SessionFacts, render_markdown, write_report

# A train.py whose metric is a true effect plus seeded Gaussian noise (sigma 0.01): each
# run draws the next seed from a counter file, so a session is random-looking yet repeatable.
NOISY_TRAIN = '''\
import os, random
EFFECT = 0.0  # the change's true effect on val_bpb
IDEA = 0  # which scripted idea this is
path = ".runcount"
k = int(open(path).read()) if os.path.exists(path) else 0
open(path, "w").write(str(k + 1))
val = 1.0 + EFFECT + random.Random(k * 7919 + 1).gauss(0, 0.01)
print("---")
print(f"val_bpb:          {val:.6f}")
print("peak_vram_mb:     512.0")
'''


def idea(effect: float, n: int) -> str:
    return NOISY_TRAIN.replace("EFFECT = 0.0", f"EFFECT = {effect}").replace("IDEA = 0", f"IDEA = {n}")


# Real gains of 5 sigma among noise-only changes (same effect as the best, a new IDEA).
IDEAS = [(0.0, 1), (-0.05, 2), (-0.05, 3), (-0.10, 4), (-0.10, 5), (-0.10, 6), (-0.10, 7)]
REAL = {2, 4}


def noisy_session(tmp_path, min_delta, baseline_runs=4):
    ws = make_workspace(tmp_path / "ws", train=NOISY_TRAIN)
    config = Config()
    config.judge.min_delta = min_delta
    config.judge.baseline_runs = baseline_runs
    loop = ResearchLoop(ws, config, "noisy", agent=ScriptedAgent(*(idea(*i) for i in IDEAS)))
    loop.run(1 + len(IDEAS))
    return ws, loop


def test_noise_aware_policy_keeps_real_gains_and_rejects_noise(tmp_path):
    ws, loop = noisy_session(tmp_path, "auto")
    noise = loop.noise
    assert noise is not None and len(noise.values) == 4 and 0.002 < noise.spread < 0.03
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
    ws, loop = noisy_session(tmp_path, 0.0, baseline_runs=0)  # the reference: one run each
    ideas = loop.state.experiments[1:]
    kept = {IDEAS[i][1] for i, e in enumerate(ideas) if e.status == "keep"}
    assert REAL <= kept and kept - REAL, "some noise-only change should pass a zero threshold"
    best = loop.state.baseline.metric
    for e in loop.state.experiments[1:]:  # every strict improvement was kept
        assert (e.status == "keep") == (e.metric < best)
        best = min(best, e.metric)


def test_policy_decisions():
    policy = KeepPolicy("lower", "auto", 2.0)
    noise = Noise([1.00, 1.01, 0.99])
    assert noise.std == pytest.approx(0.01) and noise.mad == pytest.approx(0.01)
    assert noise.spread == pytest.approx(0.014826)  # the MAD, scaled to a std, is larger here
    assert policy.threshold(noise) == pytest.approx(2 * 0.014826)
    assert policy.decide(0.95, 1.0, noise).status == "keep"
    assert policy.decide(0.99, 1.0, noise).status == "discard"
    tie = policy.decide(1.005, 1.0, noise, lines_delta=-3)
    assert tie.status == "keep" and "simpler" in tie.why
    assert policy.decide(1.005, 1.0, noise, lines_delta=+3).status == "discard"
    higher = KeepPolicy("higher", 0.0)
    assert higher.decide(0.81, 0.80, None).status == "keep"
    assert higher.decide(0.80, 0.80, None).status == "discard"
    assert welch_t([1.0, 1.01, 0.99], [0.9, 0.91, 0.89]) > 10


def test_confirm_says_whether_the_gain_holds(tmp_path):
    ws, loop = noisy_session(tmp_path, "auto", baseline_runs=2)
    result = cockpit("confirm", "--runs", "3", cwd=ws)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "holds beyond the noise" in result.stdout and "baseline" in result.stdout
    measures = [e for e in read_journal(ws, "noisy") if e["event"] == "measure"]
    assert sum(e["purpose"] == "confirm" for e in measures) == 6
    repo = git.Repo(ws)
    assert repo.head.commit.hexsha == loop.state.best.commit and not repo.is_dirty()
    assert len(repo.git.worktree("list").splitlines()) == 1  # the temporary worktree is gone


def test_noise_command_measures_the_best_commit(tmp_path):
    ws, loop = noisy_session(tmp_path, "auto", baseline_runs=0)
    assert loop.noise is None
    result = cockpit("noise", "--runs", "3", cwd=ws)
    assert result.returncode == 0, result.stderr
    assert "noise floor: std" in result.stdout
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


def test_finalize_makes_a_clean_branch_of_kept_changes(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    loop = ResearchLoop(ws, Config(), "f")
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
