"""Early stop on synthetic loss curves: a run that stays behind stops; a run that could still
be kept, or is behind for a moment only, never does."""
from __future__ import annotations

import math
import random

import pytest

from cockpit.domain.earlystop import (
    DEFAULT_MARGIN,
    LAST_STOP,
    MAX_POINTS,
    SUSTAIN,
    SUSTAIN_STEP,
    Curve,
    EarlyStop,
    StopDecision,
    describe_stop,
)


def curve(seed: int, offset: float = 0.0, run_sigma: float = 0.02, step_sigma: float = 0.05,
          until: float = 100.0, every: float = 0.5, late_offset: float | None = None,
          late_from: float = 100.0, bump: tuple[float, float, float] | None = None) -> Curve:
    """A falling loss with a run-level shift (how re-runs of one commit differ) and per-step
    noise; `offset` moves the whole curve (a worse or better change), `bump` (from, to,
    size) lifts it over a stretch of progress (a run of hard batches)."""
    rng = random.Random(seed)
    shift = rng.gauss(0, run_sigma)
    c = Curve()
    k = 1
    while k * every <= until:
        p = k * every
        extra = late_offset if late_offset is not None and p >= late_from else offset
        if bump is not None and bump[0] <= p < bump[1]:
            extra += bump[2]
        c.add(p, 3.0 + 4.0 * math.exp(-p / 25) + shift + extra + rng.gauss(0, step_sigma))
        k += 1
    return c


def calibrated(**kw) -> tuple[EarlyStop, list[Curve]]:
    best = [curve(s) for s in (1, 2, 3)]
    other = [curve(s) for s in (4, 5)]  # re-runs of a second commit
    return EarlyStop(**kw).calibrate([best, other]), best


def live(stop: EarlyStop, best: list[Curve], points) -> StopDecision | None:
    """Feed the points one by one as the progress lines arrive; the first decision."""
    current = Curve()
    for p, loss in points:
        current.add(p, loss)
        decision = stop.check(best, current)
        if decision is not None:
            return decision
    return None


def test_clearly_behind_is_stopped_past_min_progress():
    stop, best = calibrated()
    behind = curve(10, offset=0.6)
    decision = live(stop, best, behind.points)
    assert decision is not None
    assert stop.min_progress <= decision.progress < stop.min_progress + 1
    assert decision.sigmas > stop.margin and decision.loss - decision.best_loss == pytest.approx(
        0.6, abs=0.1)
    assert decision.why.startswith(f"stopped at {decision.progress:.0f}%: loss ")
    assert decision.to_dict() == {"progress": round(decision.progress, 1), "loss": decision.loss,
                                  "best_loss": decision.best_loss,
                                  "sigmas": round(decision.sigmas, 2),
                                  "since": round(decision.since, 1)}


@pytest.mark.slow
def test_a_run_that_could_still_be_kept_is_never_stopped():
    stop, best = calibrated()
    ahead = sum(live(stop, best, curve(100 + s, offset=-0.03).points) is not None
                for s in range(200))
    assert ahead == 0  # a gain of about one spread: never stopped
    # Re-runs of the best itself cannot be kept; a stop of one costs nothing, and it is rare.
    same = sum(live(stop, best, curve(100 + s).points) is not None for s in range(200))
    assert same <= 4


@pytest.mark.slow
def test_a_wide_margin_stops_no_rerun_of_the_best():
    stop, best = calibrated(margin=3.0)
    stops = sum(live(stop, best, curve(100 + s).points) is not None for s in range(200))
    assert stops == 0
    # Slightly behind (one run-to-run spread) is not hopeless at that margin either.
    assert live(stop, best, curve(7, offset=0.02).points) is None


def test_behind_for_a_moment_is_not_a_stop():
    stop, best = calibrated()
    moment = curve(15, bump=(40.0, 43.0, 0.12))  # behind for 3% of its progress, then not
    assert live(stop, best, moment.points) is None
    at_one_point = EarlyStop(sustain=0.0).calibrate([best, [curve(4), curve(5)]])
    assert live(at_one_point, best, moment.points) is not None  # what a single check does
    stretch = curve(15, bump=(40.0, 60.0, 0.12))  # as far behind, and it stays there
    decision = live(stop, best, stretch.points)
    assert decision is not None and 40.0 + SUSTAIN <= decision.progress < 40.0 + 2 * SUSTAIN
    assert 40.0 <= decision.since <= decision.progress - SUSTAIN  # since the stretch began
    assert decision.why.endswith(f"behind since {decision.since:.0f}%")


def test_behind_only_before_min_progress_is_not_stopped():
    stop, best = calibrated(min_progress=50.0)
    slow_start = curve(11, offset=0.5, late_offset=0.0, late_from=45.0)
    assert live(stop, best, slow_start.points) is None
    # The same start, still behind after min_progress: stopped.
    assert live(stop, best, curve(11, offset=0.5).points) is not None


def test_behind_only_near_the_end_is_left_to_finish():
    stop, best = calibrated()
    late = curve(12, offset=0.0, late_offset=0.6, late_from=LAST_STOP + 1)
    assert live(stop, best, late.points) is None  # a stop would save seconds, lose the metric
    earlier = curve(12, offset=0.0, late_offset=0.6, late_from=LAST_STOP - 10)
    decision = live(stop, best, earlier.points)
    assert decision is not None and decision.progress <= LAST_STOP
    assert live(EarlyStop(min_progress=95.0).calibrate([best, best]), best,
                curve(13, offset=0.6).points) is not None  # a min_progress past it still stops


def test_without_calibration_it_never_stops():
    best = [curve(1)]
    behind = curve(10, offset=2.0).points
    assert live(EarlyStop(), best, behind) is None
    lone = EarlyStop().calibrate([[curve(1)], [curve(2)]])  # no commit ran twice
    assert not lone.calibrated and live(lone, best, behind) is None
    same = EarlyStop().calibrate([[curve(1, run_sigma=0, step_sigma=0),
                                   curve(1, run_sigma=0, step_sigma=0)]])
    assert live(same, best, behind) is None  # re-runs agreed exactly: no measure of noise


def test_a_nan_loss_is_left_to_crash_on_its_own():
    stop, best = calibrated()
    behind = curve(10, offset=0.6, until=55.0)
    assert stop.check(best, behind) is not None
    behind.add(55.5, math.nan)
    assert behind.broken and stop.check(best, behind) is None
    assert stop.check(best, Curve([(60.0, math.inf), (61.0, 9.0)])) is None


def test_sparse_and_empty_curves():
    stop, best = calibrated()
    sparse = Curve([(10.0, 7.0), (40.0, 6.0), (58.0, 5.5)])  # a few points, far behind
    decision = stop.check(best, sparse)
    assert decision is not None and decision.progress == 58.0
    assert stop.check(best, Curve()) is None
    assert stop.check([], curve(10, offset=0.6)) is None  # nothing to compare with
    short_best = [curve(1, until=30.0)]  # the best's curve does not reach this far
    assert stop.check(short_best, curve(10, offset=0.6, until=60.0)) is None


def test_curve_from_a_log_and_its_smoothing():
    log = ("step 00001 (0.5%) | loss: 7.100000 | lrm: 0.10\r"
           "step 00002 (1.0%) | loss: 7.000000 | lrm: 0.20\r"
           "step 00004 (2.0%) | loss: 6.800000 | lrm: 0.40\n"
           "step 00003 (1.5%) | loss: 6.900000 | lrm: 0.30\n"  # arrives late: sorted in
           "step 00005 (2.5%) | loss: nan | lrm: 0.50\n"
           "val_bpb: 1.5\n")
    c = Curve.from_log(log)
    assert [p for p, _ in c.points] == [0.5, 1.0, 1.5, 2.0] and c.broken
    assert c.loss_at(2.0, window=1.0) == pytest.approx((7.0 + 6.9 + 6.8) / 3)
    assert c.loss_at(1.25, window=0.1) == pytest.approx(6.95)  # interpolated
    assert c.loss_at(3.0) == pytest.approx(6.95)  # within reach of its end: the last window
    assert c.loss_at(4.0) is None and c.loss_at(0.1) is None


def test_spread_is_pooled_across_commits():
    tight = [curve(s, run_sigma=0.01) for s in (1, 2, 3)]
    loose = [curve(s, run_sigma=0.08) for s in (4, 5, 6)]
    alone_tight = EarlyStop().calibrate([tight]).spread_at(60.0)
    alone_loose = EarlyStop().calibrate([loose]).spread_at(60.0)
    pooled = EarlyStop().calibrate([tight, loose])
    assert alone_tight < pooled.spread_at(60.0) < alone_loose
    assert pooled.pairs == 4


def test_the_reason_in_words():
    assert describe_stop({"progress": 40.0, "loss": 3.912, "best_loss": 3.7204,
                          "sigmas": 5.08}) == ("stopped at 40%: loss 3.91 vs 3.72 for the best "
                                               "at the same point, 5.1x the noise")
    # A stop says since when the run was that far behind (journals before that did not).
    assert describe_stop({"progress": 40.0, "loss": 3.912, "best_loss": 3.7204, "sigmas": 5.08,
                          "since": 31.4}).endswith("5.1x the noise, behind since 31%")
    # A small gap keeps enough digits to show it.
    assert "loss 3.7250 vs 3.7204" in describe_stop({"progress": 55.0, "loss": 3.725,
                                                     "best_loss": 3.7204, "sigmas": 9.0})


def test_a_spread_from_one_pair_of_curves_asks_for_more():
    one = EarlyStop().calibrate([[curve(1), curve(2)]])
    many = EarlyStop().calibrate([[curve(s) for s in range(1, 6)],
                                  [curve(s) for s in range(6, 11)]])
    assert one.pairs == 1 and many.pairs == 8
    assert one.needed == pytest.approx(DEFAULT_MARGIN * 6.98, abs=0.05)
    assert DEFAULT_MARGIN < many.needed < DEFAULT_MARGIN * 1.2
    assert EarlyStop().needed == math.inf


def test_a_flood_of_progress_lines_cannot_stall_the_check(monkeypatch):
    # Training code printing progress lines by the hundred thousand (at one percent, or
    # behind all the way) must not make each once-a-second check walk every line.
    stop, best = calibrated()
    calls = 0
    loss_at = Curve.loss_at

    def counted(self, *args, **kwargs):
        nonlocal calls
        calls += 1
        return loss_at(self, *args, **kwargs)

    monkeypatch.setattr(Curve, "loss_at", counted)
    bound = (100 / SUSTAIN_STEP + 2) * (1 + len(best))
    honest = [(p, loss) for p, loss in curve(5).points if p < 30]
    at_one_percent = Curve(honest + [(30.0, 9.0)] * 100_000)
    assert stop.check(best, at_one_percent) is None  # behind at 30% alone: not sustained
    assert calls <= bound
    calls = 0
    behind_all_along = Curve([(k / 4000, 9.0) for k in range(1, 120_001)])  # 0 to 30%
    decision = stop.check(best, behind_all_along)
    assert decision is not None and decision.since < 30.0 - SUSTAIN
    assert calls <= bound


def test_a_curve_whose_progress_runs_backwards_is_sorted_once(monkeypatch):
    # Training code printing its progress backwards must not make building its curve (a
    # finished run's log, or a running one's points once a second) insert point by point,
    # quadratic in its lines.
    import cockpit.domain.earlystop as earlystop

    inserted = 0
    insort = earlystop.insort

    def counted(*args, **kwargs):
        nonlocal inserted
        inserted += 1
        return insort(*args, **kwargs)

    monkeypatch.setattr(earlystop, "insort", counted)
    backwards = [(99.0 - k / 1000, 3.0 + k / 1e6) for k in range(50_000)]
    log = "".join(f"\rstep {k:05d} ({p:.3f}%) | loss: {loss:.6f}" for k, (p, loss)
                  in enumerate(backwards))
    for built in (Curve(backwards), Curve.from_log(log)):
        percents = [p for p, _ in built.points]
        assert len(percents) == len(backwards) and percents == sorted(percents)
        assert built.loss_at(98.0) == pytest.approx(3.0035, abs=1e-4)  # 93-98% and not built.broken
    assert inserted == 0
    assert Curve([(1.0, 3.0), (2.0, math.nan)]).broken  # a NaN still breaks a built curve


def test_a_live_curve_keeps_its_shape_in_bounded_points():
    # A running experiment's curve (in the session, and on the cockpit's screen) is added to
    # line by line: a flood of lines must not grow it without end.
    full = [(k / 1000, 3.0 + 4.0 * math.exp(-k / 25_000)) for k in range(100_000)]
    live = Curve()
    for progress, loss in full:
        live.add(progress, loss)
    assert MAX_POINTS // 2 <= len(live.points) <= MAX_POINTS
    assert live.end == pytest.approx(100.0, abs=0.1)
    for progress in (30.0, 60.0, 99.0):
        assert live.loss_at(progress) == pytest.approx(Curve(full).loss_at(progress), rel=2e-3)
