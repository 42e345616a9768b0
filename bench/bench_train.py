"""train.py on this machine: matmul peak, tokens/s, MFU vs that peak, val_bpb vs unigram.

Measures, in one run and side by side:
  1. this machine's fp32 matmul peak (torch microbenchmark, best of ~2 s);
  2. train.py (a subprocess, COCKPIT_TIME_BUDGET=--budget) on the prepared data:
     its steady tokens/s and model FLOPs/s as a fraction of the peak from 1.;
  3. its val_bpb against unigram_bpb() (token frequencies of the train split) on the
     same pinned val tokens: the ratio says how much the model learned from context.

    python prepare.py && python bench/bench_train.py --budget 60
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def matmul_peak(seconds: float = 2.0) -> tuple[float, int]:
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(cores or 1)
    best, best_n = 0.0, 0
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        t_end = time.time() + seconds / 3
        while time.time() < t_end:
            t0 = time.perf_counter()
            a @ b
            rate = 2 * n**3 / (time.perf_counter() - t0)
            if rate > best:
                best, best_n = rate, n
    return best, best_n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=60, help="training seconds (COCKPIT_TIME_BUDGET)")
    ap.add_argument("--train", default=str(ROOT / "train.py"), help="the train script to measure")
    args = ap.parse_args()

    import prepare

    if prepare.data_fingerprint() is None:
        print(f"no prepared data in {prepare.get_data_dir()}: run `python prepare.py` first",
              file=sys.stderr)
        return 2

    peak, n = matmul_peak()
    print(f"matmul peak (fp32, {n}x{n}, torch {__import__('torch').__version__}): "
          f"{peak / 1e9:.1f} GFLOPS")

    env = dict(os.environ, COCKPIT_TIME_BUDGET=str(args.budget), PYTHONPATH=str(ROOT))
    print(f"running {Path(args.train).name} for {args.budget} s ...", flush=True)
    t0 = time.time()
    r = subprocess.run([sys.executable, args.train], env=env, cwd=ROOT, capture_output=True,
                       text=True)
    wall = time.time() - t0
    out = r.stdout
    if r.returncode != 0 or "\n---\n" not in out:
        print(f"train.py failed (rc {r.returncode}):\n{out[-1500:]}\n{r.stderr[-1500:]}",
              file=sys.stderr)
        return 1
    summary = dict(re.findall(r"^(\w+):\s+(\S+)$", out.split("\n---\n")[-1], re.M))
    fpt = float(re.search(r"flops_per_token: (\S+)", out).group(1))
    own_peak = re.search(r"peak_flops: (\S+) \(([^)]*)\)", out)
    steps = [s for s in re.split(r"[\r\n]", out) if s.startswith("step ")]
    tps_steps = [int(m.group(1).replace(",", "")) for s in steps[len(steps) // 5:]
                 if (m := re.search(r"tok/sec: ([\d,]+)", s))]
    train_s = float(summary["training_seconds"])
    # average over the timed steps, recovered exactly from train.py's own mfu_percent
    tps_avg = float(summary["mfu_percent"]) / 100 * float(own_peak.group(1)) / fpt
    median_tps = statistics.median(tps_steps) if tps_steps else float("nan")

    unigram = prepare.unigram_bpb()
    val_bpb = float(summary["val_bpb"])
    print()
    print(f"data_fingerprint:      {prepare.data_fingerprint()}")
    print(f"model:                 {summary['num_params_M']}M params, depth {summary['depth']}, "
          f"{fpt / 1e6:.2f} MFLOP/token")
    print(f"steps / tokens:        {summary['num_steps']} steps, "
          f"{summary['total_tokens_M']}M tokens in {train_s:.1f} s of training ({wall:.1f} s wall)")
    print(f"tokens/s:              {tps_avg:,.0f} average, {median_tps:,.0f} median step")
    print(f"model FLOPs/s:         {tps_avg * fpt / 1e9:.1f} GFLOPS")
    print(f"MFU vs measured peak:  {100 * tps_avg * fpt / peak:.1f}%  "
          f"(train.py reports {summary['mfu_percent']}% vs its own "
          f"{float(own_peak.group(1)) / 1e9:.1f} GFLOPS {own_peak.group(2)})")
    print(f"val_bpb:               {val_bpb:.6f}")
    print(f"unigram_bpb:           {unigram:.6f}")
    print(f"val_bpb / unigram:     {val_bpb / unigram:.3f}  "
          f"({unigram - val_bpb:+.3f} bits per byte learned from context)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
