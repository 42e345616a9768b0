"""What trusted measurement costs: a run that evaluates itself in-process (the old way)
against one that hands its model over and is measured by evaluate.py in a fresh process,
side by side (A B A B ...) on this machine.

    python bench/bench_measure.py                 # 60 s budget, 2 rounds
    python bench/bench_measure.py --budget 300    # the default budget
    python bench/bench_measure.py --budget 20 --rounds 1   # a quick look

For each side: the training process's wall time (startup, training, and its own
evaluation or the export), the export, the evaluation (the evaluator's whole process:
Python, torch, loading the artifact, the probes, the metric), and the experiment's wall
time. The ratio is trusted / in-process wall time per experiment (target <= 1.05 at the
300 s budget). The cost added is per model, not per second of training: the same seconds
over a longer budget weigh less, so the figure at 300 s is also given from the one
measured at this budget.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HAND_OVER = "val_bpb = hand_over(raw_model)\n"
IN_PROCESS = ("from prepare import evaluate_bpb\n"
              "raw_model.eval()\n"
              "with autocast:\n"
              "    val_bpb = evaluate_bpb(raw_model, tokenizer, 32)\n")
EXPORTED = re.compile(r"exported in ([\d.]+)s")


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    t0 = time.monotonic()
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench_measure: {' '.join(argv)} failed:\n"
                 f"{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return time.monotonic() - t0, out.stdout


def in_process(work: Path, env: dict[str, str]) -> dict[str, float]:
    wall, _ = run([sys.executable, "train.py"], work, env)
    return {"train": wall, "export": 0.0, "evaluate": 0.0, "wall": wall}


def trusted(work: Path, env: dict[str, str]) -> dict[str, float]:
    artifact = work / "handover" / "model.pt2"
    artifact.parent.mkdir(exist_ok=True)
    wall, out = run([sys.executable, "train.py"], work, dict(env, COCKPIT_ARTIFACT=str(artifact)))
    exported = EXPORTED.search(out)
    stage = work / "evaluate"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    for name in ("evaluate.py", "prepare.py"):
        shutil.copyfile(work / name, stage / name)
    evaluated, said = run([sys.executable, "-E", "-s", "-B", "evaluate.py", str(artifact)],
                          stage, env)
    if "val_bpb:" not in said:
        sys.exit(f"bench_measure: the evaluator measured nothing:\n{said}")
    return {"train": wall, "export": float(exported.group(1)) if exported else 0.0,
            "evaluate": evaluated, "wall": wall + evaluated}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=60, help="seconds of training per run")
    ap.add_argument("--rounds", type=int, default=2, help="A B rounds")
    args = ap.parse_args()
    if args.budget < 1 or args.rounds < 1:
        ap.error("--budget and --rounds must be at least 1")
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-measure-") as tmp:
        work = Path(tmp)
        for name in ("train.py", "prepare.py", "evaluate.py"):
            shutil.copyfile(REPO / name, work / name)
        old = work / "old"
        old.mkdir()
        for name in ("prepare.py", "evaluate.py"):
            shutil.copyfile(REPO / name, old / name)
        source = (REPO / "train.py").read_text()
        if HAND_OVER not in source:
            sys.exit("bench_measure: train.py no longer ends with hand_over(raw_model)")
        (old / "train.py").write_text(source.replace(HAND_OVER, IN_PROCESS))
        env = {k: v for k, v in os.environ.items() if k != "COCKPIT_ARTIFACT"}
        env["COCKPIT_TIME_BUDGET"] = str(args.budget)
        print("preparing data (once, not timed) ...", flush=True)
        run([sys.executable, "prepare.py"], work, env)
        sides: dict[str, list[dict[str, float]]] = {"in-process": [], "trusted": []}
        for k in range(args.rounds):
            print(f"round {k + 1}/{args.rounds}: in-process, then trusted, at {args.budget} s",
                  flush=True)
            sides["in-process"].append(in_process(old, env))
            sides["trusted"].append(trusted(work, env))

    def med(side: str, key: str) -> float:
        return statistics.median(r[key] for r in sides[side])

    print(f"\nbudget {args.budget} s, {args.rounds} round(s), medians:")
    print(f"{'':12}{'train proc s':>14}{'export s':>10}{'evaluate s':>12}{'wall s':>9}")
    for side in sides:
        print(f"{side:12}{med(side, 'train'):14.1f}{med(side, 'export'):10.1f}"
              f"{med(side, 'evaluate'):12.1f}{med(side, 'wall'):9.1f}")
    a, b = med("in-process", "wall"), med("trusted", "wall")
    added = b - a
    print(f"\ntrusted / in-process wall time per experiment: {b / a:.3f} "
          f"({added:+.1f} s per experiment)")
    at_300 = (300 + (a - args.budget) + added) / (300 + (a - args.budget))
    print(f"the same {added:+.1f} s on a 300 s budget: {at_300:.3f} (target <= 1.05)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
