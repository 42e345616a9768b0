"""How far train.py's levers can go: the constants' ceiling, and the structure's on top.

Runs `cockpit init`'s train.py (default), a copy with some constants set (--set
NAME=VALUE: the old ceiling, the numbers alone) and that copy with structural choices set
too (--structure NAME=VALUE: the new ceiling), each rewritten the way the tune agent
rewrites them, in turns, --runs times each, on the prepared data. It prints each run
(val_bpb, steps), then the sides side by side: means, the change against the default in
percent and Welch's t. Runs alternate so that a slow spell of the machine lands on every side.

--screen first runs each structural alternative once on top of the old ceiling and adds
the ones that beat it (the best alternative of each choice) to --structure.

Use it to ask whether a target is within the levers' reach at all: set every move that any
session kept or nearly kept, and see what the combination measures.

    python bench/bench_ceiling.py --runs 3 --set DEPTH=1 --set N_HEADS=2 \\
        --set LEARNING_RATE=5e-3 --set ADAM_BETA2=0.9875 --screen
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

from cockpit.agents.moves import (
    follow_divisors,
    literal_text,
    read_choices,
    read_literals,
    rewrite_constant,
)
from cockpit.domain.judge import welch_t
from cockpit.runners.outcome import parse_summary


def configured(source: str, settings: list[str]) -> str:
    """train.py's source with each NAME=VALUE applied to its top-level literal (a divisor
    such as N_KV_HEADS follows the constant it divides, as the tune agent's moves do)."""
    literals = read_literals(source)
    before = {n: c.value for n, c in literals.items()}
    params = dict(before)
    for setting in settings:
        name, _, value = setting.partition("=")
        if name not in literals or not value:
            raise SystemExit(f"bench: --set {setting}: expected NAME=VALUE, NAME one of "
                             f"{', '.join(literals)}")
        params[name] = parsed(literals[name].value, value)
    followed = follow_divisors(params, before, literals, {s.partition("=")[0] for s in settings})
    if followed is None:
        raise SystemExit(f"bench: {', '.join(settings)}: a divisor no longer divides")
    for name in sorted(followed, key=lambda n: -literals[n].lineno):  # bottom-up
        if followed[name] != before[name]:
            source = rewrite_constant(source, literals[name],
                                      literal_text(literals[name], followed[name]))
    return source


def parsed(like: object, text: str) -> object:
    """A NAME=VALUE's value, of its literal's type."""
    if isinstance(like, bool):
        return text == "True"
    if isinstance(like, str):
        return text.strip("\"'")
    try:
        return int(text) if isinstance(like, int) else float(text)
    except ValueError:
        raise SystemExit(f"bench: {text!r} is not a {type(like).__name__}") from None


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
    return f"{name:<12} {statistics.fmean(values):.4f}{spread} from {count} ({steps} steps)"


def versus(runs: list[tuple[float, int]], base: list[tuple[float, int]], name: str) -> str:
    """The change of `runs` against `base` in percent, with Welch's t when both have two."""
    values, bar = [v for v, _ in runs], [v for v, _ in base]
    change = 100 * (statistics.fmean(values) / statistics.fmean(bar) - 1)
    t = welch_t(bar, values)
    return f"{change:+.1f}% vs {name}" + (f" (Welch's t {t:.1f})" if t is not None else "")


def screen(source: str, settings: list[str], budget: int, script: Path) -> list[str]:
    """Each structural alternative once on top of `settings`: the best of each choice that
    beats the configuration without it."""
    script.write_text(configured(source, settings))
    bar, _ = train(script, budget)
    print(f"  screen: {', '.join(settings) or 'default'} val_bpb {bar:.6f}", flush=True)
    chosen = []
    for name, const in read_choices(source).items():
        tried = []
        for alt in (a for a in const.alternatives if a != const.value):
            setting = f"{name}={alt}"
            try:
                script.write_text(configured(source, [*settings, setting]))
            except SystemExit as refused:  # a divisor that cannot divide here
                print(f"  screen: {setting} skipped ({refused})", flush=True)
                continue
            bpb, steps = train(script, budget)
            print(f"  screen: +{setting:<26} val_bpb {bpb:.6f} in {steps} steps", flush=True)
            tried.append((bpb, setting))
        best = min(tried, default=None)
        if best is not None and best[0] < bar:
            chosen.append(best[1])
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a constant of the old ceiling (repeat for several)")
    ap.add_argument("--structure", action="append", default=[], metavar="NAME=VALUE",
                    help="a structural choice of the new ceiling, on top of --set")
    ap.add_argument("--screen", action="store_true",
                    help="choose the structure: each alternative once on top of --set")
    ap.add_argument("--runs", type=int, default=3, help="runs of each side")
    ap.add_argument("--budget", type=int, default=60, help="training seconds per run")
    args = ap.parse_args()
    if args.runs < 1:
        raise SystemExit("bench: --runs must be at least 1")
    if not (args.set or args.structure or args.screen):
        raise SystemExit("bench: nothing to compare: give the configuration with --set "
                         "NAME=VALUE, --structure NAME=VALUE or --screen")

    import prepare

    if prepare.data_fingerprint() is None:
        raise SystemExit(f"bench: no prepared data in {prepare.get_data_dir()}: "
                         "run `python prepare.py` first")
    default = (ROOT / "train.py").read_text()
    with tempfile.TemporaryDirectory(prefix="cockpit-ceiling-") as tmp:
        shutil.copy(ROOT / "prepare.py", tmp)
        shutil.copy(ROOT / "evaluate.py", tmp)
        structure = args.structure
        if args.screen:
            structure = [*structure, *screen(default, args.set, args.budget,
                                             Path(tmp, "screen.py"))]
        sides = {"default": default, "old ceiling": configured(default, args.set),
                 "new ceiling": configured(default, [*args.set, *structure])}
        scripts = {name: Path(tmp, f"side{i}.py") for i, name in enumerate(sides)}
        for name, script in scripts.items():
            script.write_text(sides[name])
        print(f"old ceiling: {', '.join(args.set) or 'the defaults'}")
        print(f"new ceiling: the old one + {', '.join(structure) or 'nothing'}")
        print(f"{args.runs} runs each at {args.budget} s")
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in scripts}
        for i in range(args.runs):
            for name, script in scripts.items():
                results[name].append(train(script, args.budget))
                bpb, steps = results[name][-1]
                print(f"  run {i + 1} {name:<12} val_bpb {bpb:.6f} in {steps} steps", flush=True)

    default, old, new = (results[name] for name in sides)
    print(summary("default", default))
    print(f"{summary('old ceiling', old)}  {versus(old, default, 'the default')}")
    print(f"{summary('new ceiling', new)}  {versus(new, default, 'the default')}, "
          f"{versus(new, old, 'the old ceiling')}")


if __name__ == "__main__":
    main()
