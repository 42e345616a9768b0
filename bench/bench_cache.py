"""What the compile cache's layer costs: a run of the agent's code reads the cache that the
human's code filled through an overlay whose writes are thrown away. Side by side, in
cockpit's sandbox, with torch.compile (inductor, C++ on this CPU: seconds of compilation,
as a GPU's Triton kernels take):

    writable, warm   the human's code, the cache filled by an earlier run (the baseline's)
    layer, warm      the agent's code: the same cache under --tmp-overlay
    private, cold    no reuse at all: what a run would pay without a kept cache

    python bench/bench_cache.py --rounds 3

Each variant runs train.py's model compiled, one forward and backward; the script prints
the compile time the run measured and its process's wall time, medians over the rounds
(A B C A B C ...), and the layer's ratio to the writable cache (target: 1.0 within noise).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cockpit.runners.sandbox import SandboxPolicy, available, wrap

STEP = """\
import time
t0 = time.perf_counter()
import torch
import torch.nn as nn
import torch.nn.functional as F
source = open("train.py").read()
model_section = source[source.index("def rms_norm"):source.index("# Device, precision")]
exec(model_section)
torch.manual_seed(0)
model = torch.compile(GPT(4096, 4, 128, 4, 512, 256))
x = torch.randint(0, 4096, (4, 256))
t1 = time.perf_counter()
loss = model(x, x)
loss.backward()
print(f"compile_seconds: {time.perf_counter() - t1:.2f}")
"""


def run(work: Path, cache: Path | None, layer: bool) -> tuple[float, float]:
    policy = SandboxPolicy.for_run(work, fixed=(), compile_cache=cache, cache_layer=layer)
    t0 = time.monotonic()
    out = subprocess.run(wrap([sys.executable, "step.py"], policy), capture_output=True,
                         text=True)
    wall = time.monotonic() - t0
    if out.returncode != 0:
        sys.exit(f"bench_cache: the compiled step failed:\n"
                 f"{out.stdout[-1500:]}{out.stderr[-1500:]}")
    compiled = float(out.stdout.split("compile_seconds:")[1].split()[0])
    return compiled, wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    ok, why = available()
    if not ok:
        sys.exit(f"bench_cache: needs cockpit's sandbox here: {why}")
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-cache-") as tmp:
        work, cache = Path(tmp) / "work", Path(tmp) / "cache"
        work.mkdir()
        shutil.copyfile(REPO / "train.py", work / "train.py")
        (work / "step.py").write_text(STEP)
        print("filling the cache once (the baseline's first run) ...", flush=True)
        first = run(work, cache, layer=False)
        kept = sum(1 for p in cache.rglob("*") if p.is_file())
        results: dict[str, list[tuple[float, float]]] = {
            "writable, warm": [], "layer, warm": [], "private, cold": []}
        for k in range(args.rounds):
            print(f"round {k + 1}/{args.rounds}", flush=True)
            results["writable, warm"].append(run(work, cache, layer=False))
            before = sum(1 for p in cache.rglob("*") if p.is_file())
            results["layer, warm"].append(run(work, cache, layer=True))
            assert sum(1 for p in cache.rglob("*") if p.is_file()) == before, \
                "a run through the layer changed the kept cache"
            results["private, cold"].append(run(work, None, layer=False))
    print(f"\ncold fill: compile {first[0]:.1f} s, {kept} files kept in the cache")
    print(f"{'':16}{'compile s':>10}{'wall s':>9}   (medians of {args.rounds})")
    med = {name: (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows))
           for name, rows in results.items()}
    for name, (compiled, wall) in med.items():
        print(f"{name:16}{compiled:10.2f}{wall:9.2f}")
    print(f"\nlayer / writable wall time: {med['layer, warm'][1] / med['writable, warm'][1]:.3f}"
          f"; cold / layer: {med['private, cold'][1] / med['layer, warm'][1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
