"""Cockpit overhead: N experiments through `cockpit run --headless` vs N bare runs.

Both sides run the same train.py at the same budget on the same prepared data, one after
the other in this one run, and the script prints the wall-time ratio and the cockpit
process's own CPU time as a share of the experiments' wall time. A bare run is what cockpit
runs, without cockpit: `python train.py` handing its model over, then `python evaluate.py`
on it in a process of its own (bench_measure.py weighs that against evaluating in-process).

    python bench/bench_loop.py --experiments 3 --budget 20
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs cockpit in-process so that getrusage(SELF) is cockpit's own CPU, not training's.
COCKPIT_WITH_RUSAGE = """
import json, resource, sys
from cockpit.cli.main import main
code = main(sys.argv[1:])
self = resource.getrusage(resource.RUSAGE_SELF)
print("RUSAGE " + json.dumps({"cpu": self.ru_utime + self.ru_stime, "code": code}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=3)
    parser.add_argument("--budget", type=int, default=20)
    args = parser.parse_args()
    n, budget = args.experiments, args.budget

    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as tmp:
        ws = Path(tmp) / "ws"
        subprocess.run([sys.executable, "-m", "cockpit", "init", str(ws)], check=True,
                       stdout=subprocess.DEVNULL)
        # Deliberate re-runs (the noise floor) are experiments, not overhead: off here, so
        # both sides run train.py exactly n times.
        toml = ws / "cockpit.toml"
        toml.write_text(re.sub(r"(?m)^baseline_runs = \d+", "baseline_runs = 0", toml.read_text()))
        subprocess.run(["git", "commit", "-qam", "bench: no noise re-runs"], cwd=ws, check=True)
        env = {**os.environ, "COCKPIT_TIME_BUDGET": str(budget)}
        print("preparing data (once, not timed) ...", flush=True)
        subprocess.run([sys.executable, "prepare.py"], cwd=ws, check=True, env=env,
                       stdout=subprocess.DEVNULL)

        print(f"bare: {n} x python train.py + evaluate.py at {budget} s ...", flush=True)
        artifact = Path(tmp) / "model.pt2"
        start = time.perf_counter()
        for _ in range(n):
            subprocess.run([sys.executable, "train.py"], cwd=ws, check=True,
                           env={**env, "COCKPIT_ARTIFACT": str(artifact)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run([sys.executable, "-E", "-s", "-B", "evaluate.py", str(artifact)],
                           cwd=ws, check=True, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        bare = time.perf_counter() - start

        print(f"cockpit: {n} experiments through cockpit run --headless ...", flush=True)
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", COCKPIT_WITH_RUSAGE, "-C", str(ws), "run", "--headless",
             "--experiments", str(n), "--budget", str(budget), "--tag", "bench"],
            check=True, capture_output=True, text=True, env=env,
        ).stdout
        looped = time.perf_counter() - start
        usage = json.loads(out.split("RUSAGE ", 1)[1])
        rows = (ws / "results.tsv").read_text().splitlines()[1:]

    print()
    print(f"experiments:              {n} at a {budget} s budget ({len(rows)} rows recorded)")
    print(f"bare runs wall:           {bare:8.1f} s")
    print(f"cockpit wall:             {looped:8.1f} s")
    print(f"wall-time ratio:          {looped / bare:8.3f}   (target <= 1.05)")
    print(f"cockpit own CPU:          {usage['cpu']:8.2f} s = "
          f"{100 * usage['cpu'] / looped:.2f}% of the experiments' wall time (target < 2%)")


if __name__ == "__main__":
    main()
