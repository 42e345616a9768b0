"""How far train.py's constants can go: one configuration against `cockpit init`'s train.py.

Runs the default train.py and a copy with some constants set (--set NAME=VALUE, rewritten
the way the tune agent rewrites them) in turns, --runs times each, on the prepared data,
and prints each run (val_bpb, steps) and then both means, the change in percent and
Welch's t. Runs alternate so that a slow spell of the machine lands on both sides.

Use it to ask whether a target is within the levers' reach at all: set every move that any
session kept or nearly kept, and see what the combination measures.

    python bench/bench_ceiling.py --runs 3 --set DEPTH=1 --set N_HEADS=2 \\
        --set LEARNING_RATE=5e-3 --set ADAM_BETA2=0.9875
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cockpit.agents.tune import read_constants, rewrite_constant
from cockpit.domain.judge import welch_t
from cockpit.runners.outcome import parse_summary


def configured(source: str, settings: list[str]) -> str:
    """train.py's source with each NAME=VALUE applied to its top-level constant."""
    for setting in settings:
        name, _, value = setting.partition("=")
        constants = read_constants(source)
        if name not in constants or not value:
            known = ", ".join(constants)
            raise SystemExit(f"bench: --set {setting}: expected NAME=VALUE, NAME one of {known}")
        source = rewrite_constant(source, constants[name], value)
    return source


def train(script: Path, budget: int) -> tuple[float, int]:
    """One run of `script`: its val_bpb and optimizer steps."""
    env = {**os.environ, "COCKPIT_TIME_BUDGET": str(budget)}
    done = subprocess.run([sys.executable, script.name], cwd=script.parent, text=True,
                          capture_output=True, env=env)
    summary = parse_summary(done.stdout)
    bpb, steps = summary.get("val_bpb"), summary.get("num_steps")
    if done.returncode != 0 or not isinstance(bpb, float) or not isinstance(steps, float):
        raise SystemExit(f"bench: {script.name} failed (exit {done.returncode}):\n"
                         f"{done.stderr[-2000:]}")
    return bpb, int(steps)


def summary(name: str, runs: list[tuple[float, int]]) -> str:
    values = [v for v, _ in runs]
    spread = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
    low, high = min(s for _, s in runs), max(s for _, s in runs)
    steps = f"{low}" if low == high else f"{low}-{high}"
    count = "1 run" if len(values) == 1 else f"{len(values)} runs"
    return f"{name:<10} {statistics.fmean(values):.4f}{spread} from {count} ({steps} steps)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a constant of the configuration (repeat for several)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each side")
    ap.add_argument("--budget", type=int, default=60, help="training seconds per run")
    args = ap.parse_args()
    if args.runs < 1:
        raise SystemExit("bench: --runs must be at least 1")
    if not args.set:
        raise SystemExit("bench: nothing to compare: give the configuration with --set NAME=VALUE")

    import prepare

    if prepare.data_fingerprint() is None:
        raise SystemExit(f"bench: no prepared data in {prepare.get_data_dir()}: "
                         "run `python prepare.py` first")
    default = (ROOT / "train.py").read_text()
    with tempfile.TemporaryDirectory(prefix="cockpit-ceiling-") as tmp:
        shutil.copy(ROOT / "prepare.py", tmp)
        scripts = {"default": Path(tmp, "train.py"), "configured": Path(tmp, "configured.py")}
        scripts["default"].write_text(default)
        scripts["configured"].write_text(configured(default, args.set))
        print(f"configuration: {', '.join(args.set)}; {args.runs} runs each at {args.budget} s")
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in scripts}
        for i in range(args.runs):
            for name, script in scripts.items():
                results[name].append(train(script, args.budget))
                bpb, steps = results[name][-1]
                print(f"  run {i + 1} {name:<10} val_bpb {bpb:.6f} in {steps} steps", flush=True)

    base, conf = ([v for v, _ in results[name]] for name in scripts)
    change = 100 * (statistics.fmean(conf) / statistics.fmean(base) - 1)
    t = welch_t(base, conf)
    print(summary("default", results["default"]))
    print(summary("configured", results["configured"]))
    print(f"change: {change:+.1f}%" + (f" (Welch's t {t:.1f})" if t is not None else ""))


if __name__ == "__main__":
    main()
