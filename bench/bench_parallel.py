"""One coordinator, 1..N workers: experiments per hour at 1, 2 and 4 workers (this box, and
Ray), with default judging (the baseline's noise runs and keep re-runs are pool jobs too),
the share of worker-time left idle, and a slow model proposing ahead of need.

Every variant runs the same session (the tune agent; a train.py that *waits* --seconds, so
4 workers on a 2-core machine measure the coordinator, not the cores) on a fresh workspace.
Throughput is counted after the baseline: from the first experiment's start to the last
result. Idle is the share of (workers x that window) no run occupied.

    python bench/bench_parallel.py --experiments 24 --seconds 1.0
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import git

from cockpit.session.coordinator import Coordinator
from cockpit.workspace.config import Config

TRAIN = '''\
import math, os, time
LEARNING_RATE = 0.01
BATCH_SIZE = 16
WARMUP_STEPS = 100
DEPTH = 4
time.sleep({seconds})
val = 1.0 + (math.log10(LEARNING_RATE) + 2.5) ** 2 + 0.01 * abs(math.log2(BATCH_SIZE) - 5)
val += 0.001 * abs(math.log2(WARMUP_STEPS) - 7) + 0.002 * abs(DEPTH - 6)
val += (hash(os.environ.get("COCKPIT_RUN", "")) % 1000) / 1e6  # a little noise per run
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
    c = Config()  # default judging: 4 baseline runs, a keep re-run
    c.runner.kind, c.runner.workers = kind, workers
    c.experiment.prepare_command = ""
    c.sandbox.mode = "off"  # measured on its own in bench_sandbox.py
    return c


def measure(name: str, coordinator: Coordinator, experiments: int) -> dict:
    start = time.perf_counter()
    ending = coordinator.run(experiments)
    wall = time.perf_counter() - start
    events = coordinator.events
    results = [e for e in events if e["event"] == "result" and e["status"] != "rejected"]
    assert len(results) >= experiments, (name, ending.why)
    first = min(e["time"] for e in events if e["event"] == "run_start" and e["n"] > 1)
    last = max(e.get("ended", e["time"]) for e in events if e["event"] in ("result", "measure"))
    after = [e for e in results if e["n"] > 1]
    window = last - first
    busy = 0.0
    started: dict[tuple, float] = {}
    for e in events:
        if e["event"] in ("run_start", "measure_start"):
            started[(e["event"], e.get("n", e.get("k")))] = e["time"]
        elif e["event"] in ("result", "measure"):
            key = ("run_start", e.get("n")) if e["event"] == "result" else \
                ("measure_start", e.get("k"))
            if key in started:  # its worker was busy until the run ended (not when judged)
                end = e.get("ended", e["time"])
                busy += max(0.0, min(end, last) - max(started.pop(key), first))
    workers = len(coordinator.slots)
    return {"name": name, "wall": wall, "workers": workers,
            "per_hour": len(after) / window * 3600 if window > 0 else 0.0,
            "idle": 1 - busy / (workers * window) if window > 0 else 0.0,
            "reruns": sum(e["event"] == "measure" for e in events)}


def slow_model(tmp: Path, seconds: float, delay: float, experiments: int,
               concurrency: int) -> dict:
    """2 workers, an llm that takes `delay` s an answer: proposals made ahead of need."""
    from llm_server import ScriptedLLMServer, Turn

    answers = []
    for k in range(experiments * 3):
        source = TRAIN.format(seconds=seconds).replace("BATCH_SIZE = 16", f"BATCH_SIZE = {17 + k}")
        answers.append(Turn(f"HYPOTHESIS: try {17 + k}\nDESCRIPTION: batch {17 + k}\n\n"
                            f"```python\n{source}```\n", delay=delay))
    with ScriptedLLMServer(*answers) as server:
        c = config("gpus", 2)
        c.agent.kind, c.agent.model, c.agent.api_base = "llm", "openai/gpt-4o-mini", server.api_base
        c.judge.baseline_runs = 2
        # a model twice as slow as a run, on 2 workers: ~5 answers must be in the making
        c.agent.concurrency = concurrency
        return measure("llm x2", Coordinator(workspace(tmp / "llm", seconds), c, "b"),
                       experiments)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=1.0, help="run time per experiment")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--concurrency", type=int, default=6,
                        help="[agent] concurrency of the slow model's session")
    args = parser.parse_args()
    n, seconds = args.experiments, args.seconds
    rows = []
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as tmp:
        tmp = Path(tmp)
        for k in (1, 2, 4):
            print(f"gpus x{k}: {n} experiments of {seconds:g} s ...", flush=True)
            rows.append(measure(f"gpus x{k}", Coordinator(workspace(tmp / f"g{k}", seconds),
                                                          config("gpus", k), "b"), n))
        if not args.no_ray:
            import ray

            from cockpit.runners.cluster import RayPool

            ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
            for k in (1, 2, 4):
                pool = RayPool(k)
                pool.warm_up()  # its actors start before the clock (once per session)
                print(f"ray  x{k}: ...", flush=True)
                rows.append(measure(f"ray  x{k}", Coordinator(workspace(tmp / f"r{k}", seconds),
                                                              config("ray", k), "b", pool=pool),
                                    n))
            ray.shutdown()
        print("llm  x2: a model taking 2 s per answer, 1 s runs ...", flush=True)
        rows.append(slow_model(tmp, seconds, 2.0, n, args.concurrency))

    print()
    print(f"{n} experiments of {seconds:g} s (runs wait, they do not compute), default judging")
    print(f"{'variant':9} {'wall s':>7} {'exp/hour':>9} {'idle':>6} {'re-runs':>8}")
    for r in rows:
        print(f"{r['name']:9} {r['wall']:7.1f} {r['per_hour']:9.0f} {r['idle']:6.1%} "
              f"{r['reruns']:8d}")
    by = {r["name"]: r for r in rows}
    print()
    for backend in ("gpus", "ray "):
        one = by.get(f"{backend} x1")
        if one is None:
            continue
        for k, target in ((2, 1.8), (4, 3.4)):
            ratio = by[f"{backend} x{k}"]["per_hour"] / one["per_hour"]
            print(f"{backend.strip():4} {k} workers vs 1: {ratio:.2f}x experiments/hour "
                  f"(target >= {target})")
    print(f"llm with a 2 s model on 2 workers: idle {by['llm x2']['idle']:.1%} of worker-time "
          "after the baseline (target < 15%)")


if __name__ == "__main__":
    main()
