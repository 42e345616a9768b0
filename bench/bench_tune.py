"""The offline tune agent on the real train.py: best val_bpb after 10 experiments vs baseline.

Runs `cockpit run --headless --experiments 11` (the baseline plus 10 proposals) in a fresh
workspace at the given budget and prints what the agent found, experiment by experiment.

    python bench/bench_tune.py --budget 60
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--experiments", type=int, default=10, help="proposals after the baseline")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cockpit-tune-") as tmp:
        ws = Path(tmp) / "ws"
        subprocess.run([sys.executable, "-m", "cockpit", "init", str(ws)], check=True,
                       stdout=subprocess.DEVNULL)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cockpit", "-C", str(ws), "run", "--headless",
                        "--experiments", str(args.experiments + 1), "--budget", str(args.budget),
                        "--tag", "bench"], check=True)
        wall = time.perf_counter() - start
        rows = [line.split("\t") for line in (ws / "results.tsv").read_text().splitlines()[1:]]

    print("\n#  val_bpb   status   description")
    for i, (commit, bpb, mem, status, desc) in enumerate(rows, 1):
        print(f"{i:<2} {bpb}  {status:<8} {desc}")
    scored = [(float(r[1]), r) for r in rows if r[3] != "crash"]
    baseline = float(rows[0][1])
    best = min(v for v, _ in scored)
    kept = sum(r[3] == "keep" for r in rows[1:])
    print(f"\nbudget {args.budget} s, {len(rows)} runs in {wall / 60:.1f} min")
    print(f"baseline val_bpb:  {baseline:.6f}")
    print(f"best val_bpb:      {best:.6f}  ({best - baseline:+.6f}, "
          f"{100 * (best - baseline) / baseline:+.2f}%), {kept} of {len(rows) - 1} proposals kept")


if __name__ == "__main__":
    main()
