"""The same edit on successive bests, measured on the real KeepPolicy by simulation: how
often a change is kept when each measurement is judged alone vs when a near-miss is judged
with the same edit's measurements on the bests before, for changes that do nothing and for
real gains (the same on every best, or one that differs from best to best), and how many
measurements each took.

Each trial draws, in units of one run's std, a baseline of `--baseline-runs` runs (the
noise floor) and a change whose true gain is `effect`. It is measured on up to `--bests`
bests in turn, each the mean of `--best-runs` runs of its own: one run, a second look for a
near-miss at half its bar (as a session does), and it comes back on the next best only
while it came out no more than 1 std behind (the tune agent's "level": ideas.LEVEL). Alone:
kept when one measurement clears its bar. Pooled: also when a near-miss and the measurements
before it clear the bar their summed weight sets (KeepPolicy.pool).

    python bench/bench_same_edit.py --trials 20000
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cockpit.domain.judge import Evidence, KeepPolicy, NoiseFloor

EFFECTS = (0.0, 1.0, 1.5, 2.0, 3.0)  # true gains, in std of one run
LEVEL = -1.0  # a change further behind than this (in std) does not come back


def measure(policy: KeepPolicy, rng: random.Random, effect: float, floor: NoiseFloor,
            best_runs: int, share: float) -> tuple[Evidence, bool, int]:
    """One measurement on a fresh best: (its evidence, kept alone, runs it took)."""
    bar = sum(rng.gauss(0, 1) for _ in range(best_runs)) / best_runs
    runs = [rng.gauss(-effect, 1)]  # lower is better
    verdict = policy.decide(runs[0], bar, floor, best_runs=best_runs)
    if policy.second_look_due(verdict, share):
        runs.append(rng.gauss(-effect, 1))
        verdict = policy.decide(sum(runs) / 2, bar, floor, best_runs=best_runs, runs=2)
    return Evidence(verdict.gain, len(runs), best_runs), verdict.status == "keep", len(runs)


def trial(policy: KeepPolicy, rng: random.Random, effect: float, spread: float, args
          ) -> tuple[int, int, int]:
    """(kept alone, kept pooled, runs) on the same draws; a keep is 1 where the change
    helped the best it was kept on, -1 where it did not (its effect there drawn around
    `effect` with `spread`: a change may help one model and not another), 0 for none."""
    floor = NoiseFloor.from_groups([[rng.gauss(0, 1) for _ in range(args.baseline_runs)]])
    assert floor is not None
    earlier: list[tuple[str, Evidence]] = []
    alone = together = runs = 0
    for n in range(args.bests):
        here = effect + spread * rng.gauss(0, 1)
        evidence, kept, took = measure(policy, rng, here, floor, args.best_runs, args.share)
        runs += took
        pooled = bool(earlier) and policy.pool(evidence, earlier, floor) is not None
        outcome = 1 if here > 0 else -1
        alone = alone or (outcome if kept else 0)
        together = together or (outcome if kept or pooled else 0)
        if (alone and together) or evidence.gain < LEVEL * floor.std:
            break
        earlier.append((f"#{n}", evidence))
    return alone, together, runs


def table(policy: KeepPolicy, rows: list[tuple[float, float]], args) -> None:
    print(f"\n{'true gain':>10} {'spread':>7} {'kept alone':>11} {'pooled':>8} {'ratio':>7} "
          f"{'where it did not help':>22} {'runs':>6}")
    for effect, spread in rows:
        rng = random.Random(args.seed)
        alone, together, wrong, runs = [0, 0], [0, 0], [0, 0], 0
        for _ in range(args.trials):
            a, b, r = trial(policy, rng, effect, spread, args)
            alone[0], together[0] = alone[0] + (a != 0), together[0] + (b != 0)
            wrong = [wrong[0] + (a < 0), wrong[1] + (b < 0)]
            runs += r
        a, b = alone[0] / args.trials, together[0] / args.trials
        ratio = f"{b / a:.2f}x" if a else "-"
        bad = f"{wrong[0] / args.trials:.1%} vs {wrong[1] / args.trials:.1%}"
        print(f"{effect:>8.1f} σ {spread:>5.1f} σ {a:>11.1%} {b:>8.1%} {ratio:>7} {bad:>22} "
              f"{runs / args.trials:>6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20000, help="per row")
    parser.add_argument("--bests", type=int, default=3, help="bests a change is measured on")
    parser.add_argument("--share", type=float, default=0.5, help="[judge] second_look")
    parser.add_argument("--baseline-runs", type=int, default=7)
    parser.add_argument("--best-runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    policy = KeepPolicy("lower", "auto", 2.0)
    print(f"{args.trials} trials a row; up to {args.bests} bests of {args.best_runs} runs each; "
          f"floor from {args.baseline_runs} runs; second look at {args.share:.0%} of the bar")
    print("\nthe same gain on every best:")
    table(policy, [(effect, 0.0) for effect in EFFECTS], args)
    print("\na gain that differs from best to best (drawn around its mean with the spread):")
    table(policy, [(0.0, 1.0), (0.0, 2.0), (1.0, 2.0)], args)
    print("\nkept: on any of the bests; where it did not help: kept on a best whose true gain "
          "was not positive (alone vs pooled). runs: of the change, over its bests, until both "
          "policies kept it or it fell behind")


if __name__ == "__main__":
    main()
