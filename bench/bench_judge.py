"""Honest judging on the real train.py: the noise floor of val_bpb, and how many of N
experiments the reference policy (keep any gain) would have kept that the noise-aware
policy rejects.

Runs `cockpit run --headless --experiments N+1` (the baseline plus N proposals of the tune
agent) with the default [judge] settings, then replays each decision against the same best:
the reference keeps when val_bpb is below the best run so far; this policy needs a gain
beyond noise_multiple x the measured spread.

    python bench/bench_judge.py --budget 60 --experiments 20
"""
from __future__ import annotations

import argparse

from session import run_session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--experiments", type=int, default=20, help="proposals after the baseline")
    args = parser.parse_args()

    events, wall = run_session(args.budget, args.experiments + 1, "judge")
    noise = next(e for e in events if e["event"] == "noise")
    results = [e for e in events if e["event"] == "result"]
    measured = [e for e in results if e["metric"] is not None]
    baseline = measured[0]
    best_run = baseline["metric"]  # the reference's bar: its own best single run so far
    reference_only = []
    print(f"\n{'#':>3} {'val_bpb':>9} {'vs best run':>12} {'reference':>9} {'this policy':>11}")
    for e in results[1:]:
        if e["metric"] is None:
            print(f"{e['n']:>3} {'crash':>9}")
            continue
        reference = "keep" if e["metric"] < best_run else "discard"
        print(f"{e['n']:>3} {e['metric']:9.6f} {e['metric'] - best_run:+12.6f} {reference:>9} "
              f"{e['status']:>11}")
        if reference == "keep" and e["status"] != "keep":
            reference_only.append(e["n"])
        if reference == "keep":
            best_run = e["metric"]
    kept = sum(e["status"] == "keep" for e in results[1:])
    print(f"\nbudget {args.budget} s, {len(results)} experiments + "
          f"{sum(e['event'] == 'measure' for e in events)} re-runs in {wall / 60:.1f} min")
    print(f"noise floor of val_bpb:  std {noise['std']:.6f}, MAD {noise['mad']:.6f} over "
          f"{len(noise['values'])} runs of the baseline; keep threshold "
          f"{2 * noise['spread']:.6f} (2 x spread)")
    print(f"kept by this policy:     {kept} of {len(results) - 1}")
    print(f"kept by the reference only (noise taken for gains): {len(reference_only)} of "
          f"{len(results) - 1}  {reference_only}")
    print(f"baseline {baseline['metric']:.6f}, best kept "
          f"{min(e['metric'] for e in results if e['status'] == 'keep'):.6f}")


if __name__ == "__main__":
    main()
