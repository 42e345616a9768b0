"""A busy machine during the noise runs: the noise floor and the keep bar, with the
disturbed-run rule on and off, side by side, on the real train.py.

Two sessions from `cockpit init`'s train.py, one after the other on the same prepared data,
each up to its noise floor (the baseline and its noise runs). While the second noise run
trains, the bench keeps every CPU busy with processes of its own (another user's job, a
test suite): its run trains fewer steps and measures worse.

  on   [judge] disturbed = 0.03 (the default): that run is left out and run again
  off  [judge] disturbed = 0: it counts, as before

Printed: each session's runs (val_bpb, the share of the time tasks waited for a CPU, the
cores work not cockpit's used), its noise floor, the gain a one-run keep needs against the
baseline, and the ratio off / on. Run it on an otherwise quiet machine.

    python bench/bench_disturbed.py --budget 30
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cockpit.domain.judge import KeepPolicy, NoiseFloor
from cockpit.workspace.journal import Journal

DISTURBED_RUN = 2  # the noise run the bench slows


def cockpit(*args: str, cwd: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "cockpit", *args], cwd=cwd, text=True,
                          capture_output=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"bench: cockpit {' '.join(args)} failed:\n{done.stderr}")


def events_of(ws: Path) -> list[dict]:
    path = ws / ".cockpit" / "s" / "journal.jsonl"
    return Journal(path).read() if path.exists() else []


def hog_while(ws: Path, k: int) -> None:
    """Keep every CPU busy from noise run k's start to its measurement."""
    while not any(e["event"] == "measure_start" and e.get("k") == k for e in events_of(ws)):
        time.sleep(0.2)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(os.cpu_count() or 1)]
    try:
        while not any(e["event"] == "measure" and e.get("k") == k for e in events_of(ws)):
            time.sleep(0.2)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def session(root: Path, name: str, budget: int, share: float) -> list[dict]:
    """The session's journal once its noise floor is recorded."""
    ws = root / name
    cockpit("init", str(ws), cwd=root)
    toml = ws / "cockpit.toml"
    toml.write_text(toml.read_text().replace("disturbed = 0.03", f"disturbed = {share}"))
    print(f"{name}: the baseline and its noise runs at a {budget} s budget, noise run "
          f"{DISTURBED_RUN} on a busy machine ...", flush=True)
    hog = threading.Thread(target=hog_while, args=(ws, DISTURBED_RUN), daemon=True)
    hog.start()
    cockpit("run", "--detach", "--budget", str(budget), "--tag", "s", cwd=ws)
    while not any(e["event"] == "noise" for e in events_of(ws)):
        time.sleep(2)
    cockpit("stop", "--now", cwd=ws)
    while (ws / ".cockpit" / "lock").read_text().strip():
        time.sleep(1)
    hog.join(60)
    return events_of(ws)


def report(name: str, events: list[dict]) -> float:
    """Print a session's runs and floor; the gain a one-run keep needs, in % of baseline."""
    runs = [e for e in events if e["event"] in ("result", "measure") and e.get("metric")]
    for e in runs:
        what = f"#{e['n']}" if e["event"] == "result" else f"{e['purpose']} {e['k']}"
        left = "  left out, run again" if e.get("disturbed") else ""
        stalled = e.get("stalled")
        busy = (f"waited {stalled:.0%}, others {e.get('others', 0):.1f} cores"
                if stalled is not None else "no reading")
        print(f"  {name} {what:>8}: val_bpb {e['metric']:.4f}  ({busy}){left}")
    noise = next(e for e in events if e["event"] == "noise")
    floor = NoiseFloor.from_groups([noise["values"]])
    assert floor is not None  # a noise event has at least two values
    bar = KeepPolicy().threshold(floor, len(noise["values"]))
    mean = noise["mean"]
    print(f"  {name}: noise floor std {noise['std']:.4f} over {len(noise['values'])} runs; "
          f"a one-run keep needs {bar:.4f} ({100 * bar / mean:.1f}% of the baseline)")
    return bar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--keep", type=Path, help="keep the workspaces here")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cockpit-disturbed-")) if args.keep is None \
        else args.keep
    root.mkdir(parents=True, exist_ok=True)
    on = session(root, "on", args.budget, 0.03)
    off = session(root, "off", args.budget, 0.0)
    print()
    bar_on, bar_off = report("on", on), report("off", off)
    print(f"the keep bar with the busy run counted / left out: {bar_off / bar_on:.2f}x")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"workspaces kept in {root}")


if __name__ == "__main__":
    main()
