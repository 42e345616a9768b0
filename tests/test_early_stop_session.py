"""Early stop in a real session: shims whose loss curves the test sets, judged by the
coordinator while they run."""
from __future__ import annotations

import pytest
from support import ScriptedAgent, make_workspace, read_journal, results_rows, run_session

from cockpit.workspace.config import Config

# A train.py whose loss curve is set by its constants: OFFSET shifts it, EARLY_ONLY shifts
# it only before 30% of the budget, and every run has a little noise of its own.
CURVE = '''\
import os, random, sys, time
OFFSET = 0.0
EARLY_ONLY = 0.0
STEPS = 60
print("data_fingerprint: curves01", flush=True)
rng = random.Random()
for i in range(STEPS + 1):
    pct = 100.0 * i / STEPS
    loss = 4.0 - 2.0 * pct / 100 + OFFSET + (EARLY_ONLY if pct < 30 else 0.0) + rng.gauss(0, 0.004)
    print(f"\\rstep {i:05d} ({pct:.1f}%) | loss: {loss:.6f} | remaining: 0s", end="", flush=True)
    time.sleep(0.03)
print()
print("---")
print(f"val_bpb:          {1.0 + OFFSET + rng.gauss(0, 0.002):.6f}")
print("peak_vram_mb:     100.0")
'''


def variant(offset: float = 0.0, early_only: float = 0.0) -> str:
    return CURVE.replace("OFFSET = 0.0", f"OFFSET = {offset}").replace(
        "EARLY_ONLY = 0.0", f"EARLY_ONLY = {early_only}")


def session(tmp_path, *ideas: str, shadow: bool = False, baseline_runs: int = 3,
            enabled="auto"):
    ws = make_workspace(tmp_path / "ws", train=CURVE)
    config = Config()
    config.judge.baseline_runs = baseline_runs
    config.judge.keep_reruns = 0
    config.early_stop.min_progress = 30.0
    config.early_stop.shadow = shadow
    config.early_stop.enabled = enabled
    coordinator, ending = run_session(ws, 1 + len(ideas), agent=ScriptedAgent(*ideas),
                                      config=config)
    assert ending.code == 0, ending.why
    return ws, coordinator


@pytest.mark.slow
def test_clearly_behind_is_stopped_the_rest_is_not(tmp_path):
    ws, coordinator = session(tmp_path, variant(offset=0.5), variant(offset=0.001),
                              variant(early_only=0.5))
    behind, close, early = coordinator.state.experiments[1:]
    assert behind.status == "discard" and behind.early_stop is not None
    assert behind.metric is None and behind.reason.startswith("stopped at ")
    assert "for the best at the same point" in behind.reason
    assert 30 <= behind.early_stop["progress"] < 100 and behind.early_stop["sigmas"] > 6
    assert behind.seconds < 0.85 * close.seconds  # it gave back part of its budget
    assert close.early_stop is None and close.metric is not None
    assert early.early_stop is None and early.metric is not None  # behind only early on
    rows = results_rows(ws)
    assert rows[1][1:4] == ["0.000000", "0.0", "discard"] and "stopped early at" in rows[1][4]
    assert all(len(row) == 5 for row in rows)


@pytest.mark.slow
def test_shadow_mode_stops_nothing_and_journals_what_it_would_have(tmp_path):
    ws, coordinator = session(tmp_path, variant(offset=0.5), shadow=True)
    behind = coordinator.state.experiments[1]
    assert behind.metric is not None and behind.early_stop is None  # it ran to the end
    would = [e for e in read_journal(ws, "t") if e["event"] == "early_stop"]
    assert len(would) == 1 and would[0]["shadow"] and would[0]["n"] == 2
    assert would[0]["sigmas"] > 6 and would[0]["why"].startswith("stopped at ")


@pytest.mark.slow
def test_no_noise_floor_never_stops_early(tmp_path):
    ws, coordinator = session(tmp_path, variant(offset=0.5), baseline_runs=1)
    behind = coordinator.state.experiments[1]
    assert behind.early_stop is None and behind.metric is not None
    assert not any(e["event"] == "early_stop" for e in read_journal(ws, "t"))


@pytest.mark.slow
@pytest.mark.parametrize("enabled", [False])
def test_early_stop_can_be_turned_off(tmp_path, enabled):
    _ws, coordinator = session(tmp_path, variant(offset=0.5), enabled=enabled)
    assert coordinator.state.experiments[1].early_stop is None


@pytest.mark.slow
def test_a_second_session_remembers_what_the_first_measured(tmp_path):
    """The tune agent of a new session never re-runs a configuration an earlier session on
    the same data measured."""
    from support import FAKE_TRAIN

    ws = make_workspace(tmp_path / "ws", train=FAKE_TRAIN)
    config = Config()
    config.judge.baseline_runs = 0
    first, _ = run_session(ws, 8, config=config, tag="first")
    second, _ = run_session(ws, 8, config=config, tag="second")
    key = lambda e: tuple(sorted(e.params.items()))  # noqa: E731
    measured = {key(e) for e in first.state.experiments[1:] if e.params}
    again = [e for e in second.state.experiments[1:] if e.params and key(e) in measured]
    assert measured and not again, [e.description for e in again]


def test_keeps_the_floor_no_longer_backs_are_flagged_for_confirm():
    from cockpit.domain.state import SessionState
    from cockpit.session.judging import Judge
    from cockpit.workspace.records import render_experiments_md

    base = "b" * 40
    events = [  # a keep judged against a floor of 2 close runs; then noisy re-runs came in
        {"event": "session", "tag": "f", "branch": "autoresearch/f", "base": base},
        {"event": "proposal", "n": 1, "description": "baseline", "diff": ""},
        {"event": "result", "n": 1, "commit": base, "status": "keep", "metric": 1.000},
        {"event": "measure", "commit": base, "purpose": "noise", "metric": 1.001},
        {"event": "noise", "commit": base, "values": [1.0, 1.001], "spread": 0.0007},
        {"event": "proposal", "n": 2, "description": "LR up", "diff": "-a\n+b\n"},
        {"event": "result", "n": 2, "commit": "c" * 40, "status": "keep", "metric": 0.99,
         "delta_best": -0.0105, "threshold": 0.008, "bar_runs": 2},
        {"event": "measure", "commit": "c" * 40, "purpose": "keep", "metric": 1.03},
    ]
    state = SessionState.from_events(events)
    judge = Judge(state, Config())
    flagged = judge.flags()
    assert [n for n, _ in flagged] == [2] and "cockpit confirm" in flagged[0][1]
    state.apply({"event": "flagged", "n": 2, "why": flagged[0][1]})
    assert judge.flags() == []  # once each
    assert "To confirm" in render_experiments_md(state)


@pytest.mark.slow
def test_a_run_that_prints_absurd_finite_losses_does_not_break_the_session(tmp_path):
    """Training code that prints `loss: 1e308` (finite, but no sum of such survives) is a
    run like another: it is never stopped on that loss, it ends with its own result, and
    the session goes on to the next idea."""
    absurd = CURVE.replace("loss = 4.0", "loss = 1e308 if pct >= 30 else 4.0")
    ws, coordinator = session(tmp_path, absurd, variant(offset=0.001))
    wild, close = coordinator.state.experiments[1:]
    assert wild.early_stop is None and wild.metric is not None
    assert close.metric is not None and close.status in ("keep", "discard")
    assert len(results_rows(ws)) == 3


# Training code that floods progress lines, one flushed write each, its progress running
# backwards, for 3 seconds.
FLOOD = '''\
import sys, time
print("data_fingerprint: curves01", flush=True)
start, k = time.time(), 0
while time.time() - start < 3:
    k += 1
    sys.stdout.write(f"\\rstep {k:05d} ({99.0 - k % 9000 / 100:.2f}%) | loss: 3.0 | remaining: 0s")
    sys.stdout.flush()
print()
print("---")
print("val_bpb:          1.5")
'''


@pytest.mark.slow
def test_a_flood_of_progress_lines_stays_bounded_in_the_session(tmp_path, monkeypatch):
    """The session keeps a bounded number of a running experiment's progress points for its
    check once a second (it kept every one, over 100,000 in 4 s, and each check rebuilt
    them for up to a second), and none once the run has ended."""
    from cockpit.domain.earlystop import MAX_POINTS
    from cockpit.session.stopper import Stopper

    most = 0
    check = Stopper.check

    def watched(self, running, state):
        nonlocal most
        most = max([most] + [len(c.points) for c in self.live.values()])
        return check(self, running, state)

    monkeypatch.setattr(Stopper, "check", watched)
    _ws, coordinator = session(tmp_path, FLOOD)
    flood = coordinator.state.experiments[1]
    assert flood.status == "discard" and flood.metric == 1.5  # judged like any run
    assert 0 < most <= MAX_POINTS
    assert coordinator.stopper.live == {}
