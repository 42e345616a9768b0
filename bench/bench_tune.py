"""The offline tune agent on the real train.py: best val_bpb after 10 experiments vs baseline.

Runs `cockpit run --headless --experiments 11` (the baseline plus 10 proposals) in a fresh
workspace at the given budget, with the default judging, and prints what the agent found.

    python bench/bench_tune.py --budget 60
"""
from __future__ import annotations

import argparse

from session import run_session

from cockpit.domain.state import SessionState


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--experiments", type=int, default=10, help="proposals after the baseline")
    args = parser.parse_args()

    events, wall = run_session(args.budget, args.experiments + 1, "tune")
    state = SessionState.from_events(events)
    results = state.ran
    print("\n#  val_bpb   status   description")
    for e in results:
        bpb = f"{e.metric:.6f}" if e.metric is not None else "crash   "
        print(f"{e.n:<2} {bpb}  {e.status:<8} {e.description}")
    baseline, best = state.baseline.metric, state.best.metric
    kept = sum(e.status == "keep" for e in results[1:])
    print(f"\nbudget {args.budget} s, {len(results)} experiments in {wall / 60:.1f} min")
    print(f"baseline val_bpb:  {baseline:.6f}")
    print(f"best val_bpb:      {best:.6f}  ({best - baseline:+.6f}, "
          f"{100 * (best - baseline) / baseline:+.2f}%), "
          f"{kept} of {len(results) - 1} proposals kept")


if __name__ == "__main__":
    main()
