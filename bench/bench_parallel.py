"""Scale-out: experiments per hour with 1 worker vs 2 workers, local and on Ray, in one run.

Every variant runs the same session (the tune agent on a train.py that keeps one core busy
for --seconds, then prints the summary) on a fresh workspace:

  local x1   the sequential loop (`--runner local`)
  gpus  x2   two workers on this box (`--runner gpus --workers 2`; CPU here)
  ray   x1   one Ray actor, on a local Ray started once for the bench (not timed)
  ray   x2   two Ray actors

Throughput is steady state: experiments after the baseline per hour, from the baseline's
result to the last result (the baseline runs alone once per session). Scheduling overhead
per experiment is its wall time on one worker minus the training command's own time.

    python bench/bench_parallel.py --experiments 13 --seconds 1.0
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import git  # noqa: E402
from cockpit.runners.gpus import GpuPool  # noqa: E402

from cockpit.config import Config  # noqa: E402
from cockpit.loop import ResearchLoop  # noqa: E402
from cockpit.parallel import ParallelLoop  # noqa: E402

# One core busy for BUSY_SECONDS (a pure-Python loop), then the reference's summary.
TRAIN = '''\
import math, os, time
LEARNING_RATE = 0.01
BATCH_SIZE = 16
WARMUP_STEPS = 100
BUSY_SECONDS = {seconds}
end = time.perf_counter() + BUSY_SECONDS
x = 0
while time.perf_counter() < end:
    for i in range(10000):
        x += i
val = 1.0 + (math.log10(LEARNING_RATE) + 2.5) ** 2 + 0.01 * abs(math.log2(BATCH_SIZE) - 5)
val += 0.001 * abs(math.log2(WARMUP_STEPS) - 7)
print("---")
print(f"val_bpb:          {{val:.6f}}")
print("training_seconds: {seconds}")
print("peak_vram_mb:     1024.0")
'''


def workspace(root: Path, seconds: float) -> Path:
    root.mkdir(parents=True)
    (root / "train.py").write_text(TRAIN.format(seconds=seconds))
    (root / "program.md").write_text("# bench\n")
    repo = git.Repo.init(root, initial_branch="main")
    repo.index.add(["train.py", "program.md"])
    actor = git.Actor("bench", "bench@localhost")
    repo.index.commit("initial", author=actor, committer=actor)
    return root


def config(kind: str, workers: int) -> Config:
    c = Config()
    c.runner.kind, c.runner.workers = kind, workers
    c.judge.baseline_runs = 0  # no re-runs: every run is an experiment, comparable across variants
    c.experiment.prepare_command = ""
    return c


def measure(name: str, loop, experiments: int) -> dict:
    start = time.perf_counter()
    why = loop.run(experiments)
    wall = time.perf_counter() - start
    events = [json.loads(l) for l in loop.journal.path.read_text().splitlines()]
    results = [e for e in events if e["event"] == "result"]
    assert len(results) == experiments, (name, why)
    steady = results[-1]["time"] - results[0]["time"]
    training = [r["seconds"] for r in results]
    return {"name": name, "wall": wall, "per_hour": (experiments - 1) / steady * 3600,
            "per_experiment": wall / experiments,
            "training": sum(training) / len(training),
            "crashes": sum(r["status"] == "crash" for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=13)
    parser.add_argument("--seconds", type=float, default=1.0, help="training time per experiment")
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    n, seconds = args.experiments, args.seconds
    rows = []
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as tmp:
        tmp = Path(tmp)

        def fresh(name):
            return workspace(tmp / name, seconds)

        print(f"local x1: {n} experiments of {seconds:g} s ...", flush=True)
        rows.append(measure("local x1", ResearchLoop(fresh("l1"), config("local", 1), "b"), n))
        print("gpus  x2: ...", flush=True)
        rows.append(measure("gpus  x2", ParallelLoop(fresh("g2"), config("gpus", 2), "b",
                                                     pool=GpuPool(2)), n))
        ray_start = None
        if not args.no_ray:
            import ray
            from cockpit.runners.cluster import RayPool

            t = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            ray_start = time.perf_counter() - t
            for k in (1, 2):
                t = time.perf_counter()
                pool = RayPool(k)
                pool.warm_up()  # its actors start before the clock (once per session)
                actors = time.perf_counter() - t
                print(f"ray   x{k}: ... (actors up in {actors:.1f} s)", flush=True)
                rows.append(measure(f"ray   x{k}", ParallelLoop(fresh(f"r{k}"), config("ray", k),
                                                               "b", pool=pool), n))
            ray.shutdown()

    print()
    print(f"{n} experiments, {seconds:g} s of one busy core each, on {_cores()} cores")
    print(f"{'variant':10} {'wall s':>8} {'exp/hour':>10} {'s/exp':>7} {'train s':>8} "
          f"{'overhead s/exp':>15}")
    for r in rows:
        overhead = r["per_experiment"] - r["training"]
        note = f"{overhead:15.3f}" if r["name"].endswith("x1") else f"{'':15}"
        print(f"{r['name']:10} {r['wall']:8.1f} {r['per_hour']:10.0f} {r['per_experiment']:7.2f} "
              f"{r['training']:8.2f} {note}" + (f"  ({r['crashes']} crashed)" if r["crashes"] else ""))
    by = {r["name"]: r for r in rows}
    print()
    print(f"throughput ratio, 2 workers vs 1, local: "
          f"{by['gpus  x2']['per_hour'] / by['local x1']['per_hour']:.2f}   (target >= 1.8)")
    if "ray   x2" in by:
        print(f"throughput ratio, 2 workers vs 1, ray:   "
              f"{by['ray   x2']['per_hour'] / by['ray   x1']['per_hour']:.2f}   (target >= 1.8)")
        print(f"throughput ratio, ray x2 vs local x1:    "
              f"{by['ray   x2']['per_hour'] / by['local x1']['per_hour']:.2f}")
        local = by["local x1"]["per_experiment"] - by["local x1"]["training"]
        remote = by["ray   x1"]["per_experiment"] - by["ray   x1"]["training"]
        print(f"scheduling overhead per experiment: local {local * 1000:.0f} ms, "
              f"ray {remote * 1000:.0f} ms (+{(remote - local) * 1000:.0f} ms); "
              f"ray.init (once): {ray_start:.1f} s")


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
