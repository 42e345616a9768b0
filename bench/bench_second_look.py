"""The second look, measured on the real KeepPolicy by simulation: how often a change is
kept with one run vs with a second look for near-misses, for changes that do nothing and
for real gains, and what the looks cost in extra runs.

Each trial draws, in units of one run's std: a baseline of `--baseline-runs` runs and a
best of `--best-runs` runs (together they make the pooled noise floor), and a change whose
true gain is `effect`. One run: judged on its run. With a second look: a near-miss whose
gain reaches `share` of its bar runs once more and is judged on the mean of the two
against the lower bar (on the same floor: as in a session, the pair joins it afterwards).
Since looking twice keeps more null changes too, the last line lowers the one-run bar
until it keeps no more null changes than the look, and compares what each keeps of real
gains of 2 std: the fair comparison.

    python bench/bench_second_look.py --trials 20000
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cockpit.domain.judge import KeepPolicy, NoiseFloor

EFFECTS = (0.0, 1.0, 2.0, 3.0)  # true gains, in std of one run


def trial(policy: KeepPolicy, rng: random.Random, effect: float, share: float,
          baseline_runs: int, best_runs: int) -> tuple[bool, bool, int]:
    """(kept on one run, kept with a second look, extra runs the look took)."""
    baseline = [rng.gauss(0, 1) for _ in range(baseline_runs)]
    best = [rng.gauss(0, 1) for _ in range(best_runs)]
    bar = sum(best) / len(best)
    first = rng.gauss(-effect, 1)  # lower is better
    verdict = policy.decide(first, bar, NoiseFloor.from_groups([baseline, best]),
                            best_runs=best_runs)
    one_run = verdict.status == "keep"
    if one_run or not policy.second_look_due(verdict, share):
        return one_run, one_run, 0
    pair = [first, rng.gauss(-effect, 1)]
    again = policy.decide(sum(pair) / 2, bar, NoiseFloor.from_groups([baseline, best]),
                          best_runs=best_runs, runs=2)  # as a session: its pair joins later
    return one_run, again.status == "keep", 1


def rates(policy: KeepPolicy, effect: float, args) -> tuple[float, float, float]:
    """(kept on one run, kept with a second look, extra runs) per experiment."""
    rng = random.Random(args.seed)
    one = looked = extra = 0
    for _ in range(args.trials):
        a, b, runs = trial(policy, rng, effect, args.share, args.baseline_runs, args.best_runs)
        one, looked, extra = one + a, looked + b, extra + runs
    return one / args.trials, looked / args.trials, extra / args.trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20000, help="per row")
    parser.add_argument("--share", type=float, default=0.5, help="[judge] second_look")
    parser.add_argument("--baseline-runs", type=int, default=4)
    parser.add_argument("--best-runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    policy = KeepPolicy("lower", "auto", 2.0)
    print(f"{args.trials} trials a row; floor from {args.baseline_runs} + {args.best_runs} "
          f"runs, bar the mean of {args.best_runs}; second look at {args.share:.0%} of the bar")
    print(f"\n{'true gain':>10} {'kept, 1 run':>12} {'2nd look':>10} {'ratio':>7} "
          f"{'extra runs':>11}")
    table = {}
    for effect in EFFECTS:
        one, looked, extra = table[effect] = rates(policy, effect, args)
        ratio = f"{looked / one:.2f}x" if one else "-"
        print(f"{effect:>8.1f} σ {one:>12.1%} {looked:>10.1%} {ratio:>7} {extra:>11.3f}")
    print("\nextra runs: second-look runs per experiment judged; a null gain kept is a "
          "false keep (one run: near 1 - Phi(2) = 2.3%)")

    # The same false-keep rate with one run: the lowest multiple whose null rate stays at
    # or under the look's.
    null_with_look = table[0.0][1]
    multiple = 2.0
    while multiple > 1.0:
        lower = KeepPolicy("lower", "auto", round(multiple - 0.05, 2))
        if rates(lower, 0.0, args)[0] > null_with_look:
            break
        multiple -= 0.05
    matched = KeepPolicy("lower", "auto", round(multiple, 2))
    null, power = rates(matched, 0.0, args)[0], rates(matched, 2.0, args)[0]
    print(f"one run at noise_multiple {multiple:.2f} (the lowest keeping no more null "
          f"changes than the look) keeps {null:.1%} of null changes and {power:.1%} of 2 std "
          f"gains; the second look {null_with_look:.1%} and {table[2.0][1]:.1%}: "
          f"{table[2.0][1] / power:.2f}x the real gains")


if __name__ == "__main__":
    main()
