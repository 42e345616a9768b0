"""The status line's pace (cockpit.stats): pure functions over a session, checked on
hand-made histories and timed on a synthetic one of 10,000 experiments."""
from __future__ import annotations

import time

import pytest

from cockpit.domain.progress import parse_progress
from cockpit.domain.state import SessionState
from cockpit.domain.stats import RunProgress, pace, run_eta

PROGRESS = ("step 00123 (41.0%) | loss: 3.912345 | lrm: 1.00 | dt: 312ms | tok/sec: 52,480 | "
            "mfu: 38.1% | epoch: 1 | remaining: 177s")


def session(outcomes: list[str], start: float = 1000.0, every: float = 300.0):
    """A SessionState and its journal events: one experiment per outcome, a result every
    `every` seconds (keep, discard, crash, rejected, or "" for one still running)."""
    events = [{"event": "session", "time": start, "tag": "t", "branch": "autoresearch/t",
               "base": "0" * 40}]
    for n, status in enumerate(outcomes, 1):
        t = start + n * every
        events.append({"event": "proposal", "time": t - every + 1, "n": n,
                       "description": f"idea {n}"})
        if status:
            metric = None if status in ("crash", "rejected") else 1.0 - n * 1e-4
            events.append({"event": "result", "time": t, "n": n, "status": status,
                           "metric": metric})
    return SessionState.from_events(events), events


def test_pace_counts_keeps_rates_and_waits():
    state, _events = session(["keep", "discard", "keep", "crash", "discard", "rejected", ""])
    assert state.finished_at == {1: 1300.0, 2: 1600.0, 3: 1900.0, 4: 2200.0, 5: 2500.0,
                                 6: 2800.0}
    p = pace(state, now=2900.0)
    # the baseline (1) is kept by definition; of the 4 judged runs after it, 1 was kept
    assert p.keep_rate == pytest.approx(1 / 4)
    # 5 runs trained (the rejection did not): 4 intervals from 1300 to now
    assert p.per_hour == pytest.approx(4 * 3600 / (2900 - 1300))
    assert p.since_keep == pytest.approx(2900 - 1900)
    assert p.eta is None


def test_pace_before_anything_happened_and_with_the_baseline_alone():
    empty = pace(SessionState(), now=5.0)
    assert (empty.per_hour, empty.keep_rate, empty.since_keep, empty.eta) == (None,) * 4
    state, _events = session(["keep"])
    p = pace(state, now=1500.0)
    assert p.keep_rate is None and p.per_hour is None
    assert p.since_keep == pytest.approx(200.0)  # nothing beat the baseline yet


def test_the_rate_is_over_recent_runs_and_slows_while_the_session_waits():
    state, _events = session(["discard"] * 30, every=300.0)
    times = state.finished_at
    assert pace(state, now=times[30]).per_hour == pytest.approx(12.0)
    paused = pace(state, now=times[30] + 3600)  # an hour with nothing finished
    assert paused.per_hour == pytest.approx(12 * 3600 / (12 * 300 + 3600))  # 12/h -> 6/h


def test_eta_prefers_the_runs_own_count():
    assert parse_progress(PROGRESS).remaining == 177.0
    assert run_eta(RunProgress(elapsed=10, budget=300, remaining=177)) == 177
    assert run_eta(RunProgress(elapsed=100, budget=300)) == 200
    assert run_eta(RunProgress(elapsed=30, percent=25.0)) == pytest.approx(90.0)
    assert run_eta(RunProgress(elapsed=400, budget=300)) == 0.0
    assert run_eta(RunProgress(budget=300)) is None
    state, _ = session(["keep", ""])
    assert pace(state, now=0.0, run=RunProgress(elapsed=5, budget=60)).eta == 55


def test_pace_at_ten_thousand_experiments():
    outcomes = ["keep" if n % 9 == 0 else "crash" if n % 13 == 0 else "discard"
                for n in range(1, 10_001)]
    outcomes[0] = "keep"
    state, _events = session(outcomes, every=60.0)
    times = state.finished_at
    now = times[10_000] + 30
    runs = 20
    started = time.perf_counter()
    for _ in range(runs):
        p = pace(state, now, RunProgress(elapsed=12, budget=60))
    per_call = (time.perf_counter() - started) / runs
    print(f"\npace() over 10,000 experiments: {per_call * 1000:.2f} ms a call")
    judged = outcomes[1:]
    assert p.keep_rate == pytest.approx(judged.count("keep") / len(judged))
    assert p.per_hour == pytest.approx(12 * 3600 / (now - times[10_000 - 12]))
    assert p.since_keep == pytest.approx(now - times[9999])  # 9999 = 9 x 1111, the last keep
    assert p.eta == 48
