"""Early stop on real train.py curves: how often would it stop a run that ends well?

Runs the real train.py (repository copy, data from prepare.py) at a short budget: the
baseline `--repeats` times, interleaved with the tune agent's first-pass moves (every
constant up and down). Each run's loss curve and final val_bpb are saved, then replayed
through EarlyStop at several (min_progress, margin) settings, checking at every progress
line as the live loop would:

- each baseline run, against the others (calibrated on the others): a stop is a false stop;
- each move, calibrated on all baseline runs: a stop of a move that ended better than the
  baseline's mean is a false stop; a stop of one that ended worse saves the rest of its budget.

    python bench/bench_earlystop.py --budget 20 --out curves.json
    python bench/bench_earlystop.py --replay curves.json   # the analysis alone
    python bench/bench_earlystop.py --session WORKSPACE... # finished cockpit sessions

`--session` replays real sessions' runs (pooled over the workspaces given), each session's in
the order they ended: each experiment against the runs of the best it was judged against,
with the calibration the session had then (the re-runs measured before it ended), as the
live loop would have checked it. A stopped run's curve ends where it was stopped, so a
session run with early stop on only tells about settings that stop sooner.

Run it on a quiet machine: other load slows runs unevenly (fewer steps fit in the budget),
which moves whole curves and the final metric more than most changes do.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from cockpit.agents import AgentContext, AgentExhausted
from cockpit.agents.tune import TuneAgent
from cockpit.domain.earlystop import Curve, EarlyStop
from cockpit.domain.state import Experiment

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = [(20.0, 1.0), (25.0, 0.75), (25.0, 1.0), (25.0, 1.5), (30.0, 1.0), (40.0, 1.0),
            (40.0, 3.0), (50.0, 6.0)]


def first_pass_sources(source: str) -> list[tuple[str, str]]:
    """(description, train.py) of the tune agent's first pass, every move discarded."""
    agent, history, out = TuneAgent(), [Experiment(n=1, description="baseline", status="keep",
                                                   metric=1.0)], []
    while True:
        try:
            p = agent.propose(AgentContext(program="", source=source, history=list(history)))
        except AgentExhausted:
            return out
        if "first pass" not in p.hypothesis:
            return out
        out.append((p.description, p.source))
        history.append(Experiment(n=len(history) + 1, description=p.description,
                                  params=p.params, move=p.move, status="discard",
                                  metric=1.01, delta_best=0.01))


def run(source: str, budget: int, work: Path) -> dict:
    (work / "train.py").write_text(source)
    env = dict(os.environ, COCKPIT_TIME_BUDGET=str(budget))
    done = subprocess.run([sys.executable, "train.py"], cwd=work, env=env, text=True,
                          capture_output=True)
    text = done.stdout + done.stderr
    curve = Curve.from_log(text)
    values = dict(line.split(":", 1) for line in text.split("---")[-1].splitlines()
                  if ":" in line)
    metric = values.get("val_bpb")
    return {"points": curve.points, "val_bpb": float(metric) if metric else None,
            "steps": int(values.get("num_steps", 0) or 0)}


def collect(budget: int, repeats: int, limit: int, out: Path | None) -> list[dict]:
    """Run the plan; each run is saved to `out` as it ends (an interrupted bench keeps
    what it measured)."""
    source = (ROOT / "train.py").read_text()
    moves = first_pass_sources(source)[:limit]
    every = max(1, len(moves) // max(1, repeats - 1))
    plan = []
    for i, move in enumerate(moves):
        if i % every == 0 and sum(p[0] == "baseline" for p in plan) < repeats:
            plan.append(("baseline", source))
        plan.append(move)
    while sum(p[0] == "baseline" for p in plan) < repeats:
        plan.append(("baseline", source))
    with tempfile.TemporaryDirectory(prefix="cockpit-earlystop-") as tmp:
        work = Path(tmp)
        shutil.copy(ROOT / "prepare.py", work / "prepare.py")
        subprocess.run([sys.executable, "prepare.py"], cwd=work, check=True,
                       stdout=subprocess.DEVNULL)
        runs = []
        for k, (name, src) in enumerate(plan, 1):
            result = run(src, budget, work)
            print(f"[{k}/{len(plan)}] {name}: val_bpb {result['val_bpb']}, "
                  f"{result['steps']} steps", flush=True)
            runs.append({"name": name, **result})
            if out:
                out.write_text(json.dumps(runs))
    return runs


def first_stop(stop: EarlyStop, best: list[Curve], points: list) -> float | None:
    """Where the live loop would have stopped this run (None: it ran to the end)."""
    live = Curve()
    for progress, loss in points:
        live.add(progress, loss)
        decision = stop.check(best, live)
        if decision is not None:
            return decision.progress
    return None


def analyse(runs: list[dict]) -> None:
    base = [r for r in runs if r["name"] == "baseline" and r["val_bpb"] is not None]
    moves = [r for r in runs if r["name"] != "baseline"]
    if len(base) < 3:
        raise SystemExit("fewer than 3 baseline runs: nothing to calibrate and hold out")
    bar = statistics.fmean(r["val_bpb"] for r in base)
    curves = [Curve(r["points"]) for r in base]
    good = [r for r in moves if r["val_bpb"] is not None and r["val_bpb"] <= bar]
    bad = [r for r in moves if r not in good]
    print(f"\n{len(base)} baseline runs (val_bpb {bar:.4f} mean, "
          f"{statistics.stdev(r['val_bpb'] for r in base):.4f} std); "
          f"{len(moves)} moves: {len(good)} ended at or below the baseline's mean")
    for r in moves:
        print(f"  {r['name']:<32} val_bpb {r['val_bpb'] or float('nan'):.4f} "
              f"({(r['val_bpb'] or float('nan')) - bar:+.4f}), {r['steps']} steps")
    print(f"\n{'min_progress':>12} {'margin':>6} {'baseline stopped':>16} "
          f"{'good stopped':>12} {'bad stopped':>11} {'budget saved on bad':>19}")
    for min_progress, margin in SETTINGS:
        held_out = 0
        for i, r in enumerate(base):
            others = curves[:i] + curves[i + 1:]
            stop = EarlyStop(min_progress, margin).calibrate([others])
            held_out += first_stop(stop, others, r["points"]) is not None
        stop = EarlyStop(min_progress, margin).calibrate([curves])
        good_stops = sum(first_stop(stop, curves, r["points"]) is not None for r in good)
        bad_at = [first_stop(stop, curves, r["points"]) for r in bad]
        saved = sum(100 - at for at in bad_at if at is not None) / max(1, 100 * len(bad))
        print(f"{min_progress:>12.0f} {margin:>6.1f} {held_out:>9} of {len(base):<4} "
              f"{good_stops:>5} of {len(good):<4} {sum(a is not None for a in bad_at):>4} of "
              f"{len(bad):<4} {100 * saved:>18.0f}%")


def session_runs(workspace: Path) -> list[dict]:
    """A finished session's experiments in the order they ended: each with its curve,
    status, the curves of the best it was judged against, and the groups of re-runs of one
    commit known by then."""
    from cockpit.workspace.journal import Journal
    from cockpit.workspace.paths import session_dir
    from cockpit.workspace.sessions import latest_session

    tag = latest_session(workspace)
    if tag is None:
        raise SystemExit(f"no cockpit session in {workspace}")
    folder = session_dir(workspace, tag)

    def curve(kind: str, k: int) -> Curve:
        return Curve.from_log((folder / kind / f"{k:04d}" / "run.log").read_text(errors="replace"))

    by_commit: dict[str, list[Curve]] = {}
    best, out = None, []
    for e in Journal(folder / "journal.jsonl").read():
        if e["event"] == "measure" and e.get("metric") is not None:
            by_commit.setdefault(e["commit"], []).append(curve("measure", e["k"]))
        elif e["event"] == "result":
            run = curve("runs", e["n"])
            if best is not None and e["status"] != "crash":
                out.append({"n": e["n"], "status": e["status"], "run": run,
                            "near_miss": e.get("verdict", "").startswith("near-miss"),
                            "best": list(by_commit[best]),
                            "groups": [list(g) for g in by_commit.values() if len(g) > 1]})
            by_commit.setdefault(e["commit"], []).append(run)
            if best is None or e["status"] == "keep":
                best = e["commit"]
    return out


def analyse_session(runs: list[dict]) -> None:
    keeps = sum(r["status"] == "keep" for r in runs)
    near = sum(r["near_miss"] for r in runs)
    print(f"{len(runs)} experiments after the baseline, {keeps} kept, {near} near-misses\n")
    print(f"{'min_progress':>12} {'margin':>6} {'stopped':>7} {'keeps stopped':>13} "
          f"{'near-misses stopped':>19} {'budgets saved':>13}")
    for min_progress, margin in SETTINGS:
        stops, false, lost, saved = 0, 0, 0, 0.0
        for r in runs:
            stop = EarlyStop(min_progress, margin).calibrate(r["groups"])
            at = first_stop(stop, r["best"], r["run"].points)
            if at is not None:
                stops += 1
                false += r["status"] == "keep"
                lost += r["near_miss"]
                saved += (100 - at) / 100
        print(f"{min_progress:>12.0f} {margin:>6.2f} {stops:>7} {false:>6} of {keeps:<4} "
              f"{lost:>12} of {near:<4} {saved:>8.1f} of {len(runs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=4, help="baseline runs")
    parser.add_argument("--moves", type=int, default=30, help="first-pass moves to run")
    parser.add_argument("--out", type=Path, help="save the runs' curves here (JSON)")
    parser.add_argument("--replay", type=Path, help="analyse saved runs instead of running")
    parser.add_argument("--session", type=Path, nargs="+", metavar="WORKSPACE",
                        help="replay finished sessions' runs (several: pooled)")
    args = parser.parse_args()
    if args.session:
        analyse_session([run for workspace in args.session for run in session_runs(workspace)])
        return
    if args.replay:
        runs = json.loads(args.replay.read_text())
    else:
        runs = collect(args.budget, args.repeats, args.moves, args.out)
    analyse(runs)


if __name__ == "__main__":
    main()
