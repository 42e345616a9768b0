"""More research per hour: early stop on vs off, on the real train.py, side by side.

Two sessions of the same wall time, one after the other on the same prepared data, each
from `cockpit init`'s train.py with the tune agent (4 baseline runs, a keep re-run):

  on      early stop on (stops hopeless runs)
  shadow  early stop in shadow mode: stops nothing, journals what it would have stopped

Then, from the two journals (and `cockpit confirm` on each session's best):

- experiments per hour, on vs shadow (target >= 1.3x);
- the best val_bpb each reached in that time, each confirmed by re-runs of the baseline and
  the best (`cockpit confirm --runs 3`): on must not be worse beyond the noise;
- the false-stop rate: of the runs the shadow session would have stopped, how many ended
  kept (target < 5% of its keeps);
- val_bpb after --half and --minutes of the on session, vs its baseline (target -15% at 60);
- the share of keeps not confirmed: each keep's runs against the bar it was judged against,
  with the pooled noise floor (t = gain / (std x sqrt(1/n_keep + 1/n_bar)) < 2), for the
  session's own keeps and for the keeps a two-run noise floor (the older policy) would have
  made on the same measurements (target < 10%);
- memory: a second tune session after the first proposes 0 configurations the first
  measured; and how many it would have repeated without the memory.

    python bench/bench_efficiency.py --minutes 60 --budget 60
    python bench/bench_efficiency.py --minutes 60 --no-shadow   # the on session alone

A CPU box trains slowly; --budget 60 is the shortest budget at which train.py learns
enough for the levers to matter (at 20 s curves are still falling steeply everywhere).
Run it on a quiet machine: other load slows runs unevenly.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cockpit.agents import AgentContext, AgentExhausted
from cockpit.agents.tune import TuneAgent
from cockpit.domain.judge import Noise, NoiseFloor, gain_of
from cockpit.domain.state import Experiment, SessionState
from cockpit.workspace.journal import Journal


def cockpit(*args: str, cwd: Path, check: bool = True, env: dict | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "cockpit", *args], cwd=cwd, text=True,
                          capture_output=True, env={**os.environ, **(env or {})})
    if check and done.returncode not in (0, 1):
        raise SystemExit(f"bench: cockpit {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def session(root: Path, name: str, minutes: float, budget: int, shadow: bool) -> Path:
    """A workspace from `cockpit init`, a session of `minutes` wall time, stopped after the
    run in flight; the workspace (its journal) stays for the analysis."""
    ws = root / name
    cockpit("init", str(ws), cwd=root)
    toml = ws / "cockpit.toml"
    # an uncommitted edit of cockpit.toml is the human's way too: the session reads it as is
    toml.write_text(toml.read_text().replace("shadow = false", f"shadow = {str(shadow).lower()}"))
    print(f"{name}: {minutes:g} minutes at a {budget} s budget ...", flush=True)
    cockpit("run", "--detach", "--budget", str(budget), "--tag", "s", cwd=ws)
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        time.sleep(10)
    cockpit("stop", "--now", cwd=ws)
    while (ws / ".cockpit" / "lock").read_text().strip():
        time.sleep(1)
    return ws


def events_of(ws: Path) -> list[dict]:
    return Journal(ws / ".cockpit" / "s" / "journal.jsonl").read()


def per_hour(events: list[dict]) -> float:
    start = min(e["time"] for e in events)
    ran = [e for e in events if e["event"] == "result" and e["status"] != "rejected"
           and "stopped by the human" not in (e.get("reason") or "")]
    end = max(e["time"] for e in ran)  # the session's, not a later confirm's
    return len(ran) / (end - start) * 3600


def best_at(events: list[dict], seconds: float) -> str | None:
    """The commit that was the session's best `seconds` into it (with a tree, the best of
    its lines: not the last keep, which may be a worse line's)."""
    start = min(e["time"] for e in events)
    best = SessionState.from_events([e for e in events if e["time"] - start <= seconds]).best
    return best.commit if best is not None and best.metric is not None else None


def confirmed(ws: Path) -> tuple[float, float, float | None]:
    """`cockpit confirm` on the session: (baseline mean, best mean, Welch t)."""
    cockpit("confirm", "--runs", "3", cwd=ws, check=False)  # at the session's budget
    events = events_of(ws)
    state = SessionState.from_events(events)
    values = {}
    for e in events:
        if e["event"] == "measure" and e.get("purpose") == "confirm" and e.get("metric"):
            values.setdefault(e["commit"], []).append(e["metric"])
    base = values.get(state.baseline.commit, [])
    best = values.get(state.best.commit, [])
    from cockpit.domain.judge import welch_t

    t = welch_t(base, best) if len(base) > 1 and len(best) > 1 else None
    return (statistics.fmean(base) if base else math.nan,
            statistics.fmean(best) if best else math.nan, t)


def false_stops(events: list[dict]) -> tuple[int, int, int]:
    """(runs it would have stopped, of them kept, keeps in all)."""
    would = {e["n"] for e in events if e["event"] == "early_stop"}
    results = {e["n"]: e for e in events if e["event"] == "result"}
    kept = [n for n, e in results.items() if e["status"] == "keep" and n != 1]
    return len(would), sum(n in would for n in kept), len(kept)


def values_by_commit(events: list[dict]) -> dict[str, list[float]]:
    values: dict[str, list[float]] = {}
    for e in events:
        if e["event"] in ("result", "measure") and e.get("metric") is not None and e.get("commit"):
            values.setdefault(e["commit"], []).append(e["metric"])
    return values


def unconfirmed_share(events: list[dict]) -> tuple[str, str]:
    """The share of keeps whose runs do not beat their bar beyond the noise (t < 2 with the
    session's final pooled floor): the session's keeps, and a two-run floor's keeps."""
    state = SessionState.from_events(events)
    floor = NoiseFloor.from_groups(state.measured)
    if floor is None or floor.std == 0:
        return "no noise floor", "no noise floor"
    values = values_by_commit(events)
    direction = state.direction

    def holds(commit: str, bar: list[float]) -> bool:
        mine = values.get(commit, [])
        gain = (statistics.fmean(bar) - statistics.fmean(mine)) if direction == "lower" \
            else statistics.fmean(mine) - statistics.fmean(bar)
        return gain / (floor.std * math.sqrt(1 / len(mine) + 1 / len(bar))) >= 2.0

    ran = [e for e in state.experiments if e.metric is not None and e.commit]
    base = ran[0]
    # the session's own keeps, each against the bar it was judged against
    bar_commit, own = base.commit, []
    for e in ran[1:]:
        if e.status == "keep":
            own.append(holds(e.commit, values[bar_commit]))
            bar_commit = e.commit
    # the older policy on the same measurements: a floor from the first 2 baseline runs,
    # a keep when the gain beats 2 x that spread over the best's mean
    two = Noise(values[base.commit][:2])
    bar_commit, theirs = base.commit, []
    for e in ran[1:]:
        bar = values[bar_commit]
        gain = gain_of(e.metric - statistics.fmean(bar), direction)
        if gain > 2.0 * two.spread:
            theirs.append(holds(e.commit, bar))
            bar_commit = e.commit

    def share(flags: list[bool]) -> str:
        return f"{sum(not f for f in flags)} of {len(flags)}" + (
            f" ({100 * sum(not f for f in flags) / len(flags):.0f}%)" if flags else "")

    return share(own), share(theirs)


def memory(first: list[Experiment], source: str, proposals: int) -> tuple[int, int]:
    """A fresh tune session's first `proposals`, with and without the first session as its
    memory: how many propose a configuration the first one measured."""
    measured = {tuple(sorted(e.params.items())) for e in first if e.params}

    def repeats(prior: list[Experiment]) -> int:
        agent = TuneAgent()
        history = [Experiment(n=1, description="baseline", status="keep", metric=1.0)]
        count = 0
        for n in range(2, proposals + 2):
            try:
                p = agent.propose(AgentContext(program="", source=source, history=list(history),
                                               prior=prior))
            except AgentExhausted:
                break
            count += tuple(sorted(p.params.items())) in measured
            history.append(Experiment(n=n, description=p.description, params=p.params,
                                      move=p.move, status="discard", metric=1.01,
                                      delta_best=0.01))
        return count

    for e in first:
        e.session = "first"
    return repeats(first), repeats([])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--half", type=float, default=30.0, help="the earlier checkpoint")
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--keep", type=Path, help="keep the workspaces here")
    parser.add_argument("--no-shadow", action="store_true",
                        help="run the on session only (half the time): no side-by-side "
                             "figures, the rest as usual")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cockpit-efficiency-")) if args.keep is None \
        else args.keep
    root.mkdir(parents=True, exist_ok=True)
    on = session(root, "on", args.minutes, args.budget, shadow=False)
    shadow = None if args.no_shadow else session(root, "shadow", args.minutes, args.budget,
                                                 shadow=True)
    print("confirming each best (3 runs of the baseline and of the best) ...", flush=True)
    on_confirmed = confirmed(on)
    shadow_confirmed = confirmed(shadow) if shadow is not None else None
    on_events = events_of(on)
    first = SessionState.from_events(on_events).experiments
    with_memory, without = memory(first, (on / "train.py").read_text(), 20)

    print()
    each = "" if shadow is None else " each"
    print(f"{args.minutes:g} minutes{each}, {args.budget} s budget, tune agent, this machine")
    stopped = sum(e["event"] == "early_stop" for e in on_events)
    if shadow is None:
        base_mean, best_mean, t = on_confirmed
        print(f"experiments/hour with early stop on: {per_hour(on_events):.1f}, "
              f"{stopped} runs stopped early")
        print(f"best val_bpb, confirmed by 3 re-runs: {best_mean:.4f} (baseline "
              f"{base_mean:.4f}, t {t if t is not None else float('nan'):.1f})")
    else:
        side_by_side(on_events, events_of(shadow), stopped, on_confirmed, shadow_confirmed)
    # Each commit by the mean of all its runs (re-runs and confirm runs too): one run of
    # the best is a lucky draw, one of the baseline any draw.
    runs = values_by_commit(on_events)
    base_runs = runs[SessionState.from_events(on_events).baseline.commit]
    base = statistics.fmean(base_runs)
    for label, minutes in ((f"{args.half:g} min", args.half), (f"{args.minutes:g} min",
                                                                args.minutes)):
        commit = best_at(on_events, minutes * 60)
        if commit is not None:
            best = statistics.fmean(runs[commit])
            print(f"val_bpb after {label}: {best:.4f} (mean of {len(runs[commit])} runs) vs "
                  f"baseline {base:.4f} ({len(base_runs)} runs): "
                  f"{100 * (best - base) / base:+.1f}%" + ("  (target -16%)" if minutes ==
                                                            args.minutes else ""))
    own, older = unconfirmed_share(on_events)
    print(f"keeps not confirmed (t < 2 against their bar, the final pooled floor): "
          f"this policy {own}; a two-run floor on the same runs {older} (target < 10%)")
    print(f"memory: a second session's first 20 proposals repeat {with_memory} configurations "
          f"the first measured (without the memory: {without})")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"workspaces kept in {root}")


def side_by_side(on_events: list[dict], sh_events: list[dict], stopped: int,
                 on_confirmed: tuple, shadow_confirmed: tuple) -> None:
    """The figures that compare the on session with the shadow one."""
    on_base, on_best, on_t = on_confirmed
    sh_base, sh_best, sh_t = shadow_confirmed
    would, would_kept, keeps = false_stops(sh_events)
    rate_on, rate_sh = per_hour(on_events), per_hour(sh_events)
    print(f"experiments/hour: early stop on {rate_on:.1f}, shadow {rate_sh:.1f}: "
          f"{rate_on / rate_sh:.2f}x (target >= 1.3)")
    print(f"  runs stopped early in the on session: {stopped}")
    print(f"best val_bpb, confirmed by 3 re-runs: on {on_best:.4f} (baseline {on_base:.4f}, "
          f"t {on_t if on_t is not None else float('nan'):.1f}); shadow {sh_best:.4f} "
          f"(baseline {sh_base:.4f}, t {sh_t if sh_t is not None else float('nan'):.1f})")
    floor = NoiseFloor.from_events(on_events + sh_events)
    if floor is not None:
        gap = on_best - sh_best
        print(f"  on - shadow: {gap:+.4f} = {gap / floor.std:+.1f}x the noise "
              f"({floor.describe().removeprefix('noise floor: ')}); on must not be worse "
              "beyond the noise")
    print(f"false stops (shadow): it would have stopped {would} runs, {would_kept} of them "
          f"ended kept, of {keeps} keeps: {100 * would_kept / max(1, keeps):.0f}% "
          "(target < 5%)")


if __name__ == "__main__":
    main()
