"""The search tree and the tune agent on a long session, side by side: a shim train.py
whose val_bpb is a fixed function of its constants and structural literals (a hidden
optimum at 1.0, plus a little noise that varies with COCKPIT_SEED, so re-runs and
near-misses are real), run for N experiments with branching on a plateau off
([research] plateau = 0: a line opens only when the agent has no move left) and on (the
default, 12). For each it prints how the session ended (it must not end or pause
while moves remain), the lines it opened, and how close its best came to the optimum.

    python bench/bench_tree.py [--experiments 500]
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

from support import make_workspace, run_session
from test_structural_moves import DISTANCE, SHIM

from cockpit.agents.tune import TuneAgent
from cockpit.workspace.config import Config

NOISE = ("import os\n"
         "val += 0.002 * (((int(os.environ.get('COCKPIT_SEED', SEED)) * 7919) % 100) / 50 - 1)\n")


def shim() -> str:
    train = SHIM.replace("OPTIMUM_DISTANCE", DISTANCE)
    return train.replace('print("---")', NOISE + 'print("---")', 1)


def session(root: Path, experiments: int, plateau: int) -> dict:
    ws = make_workspace(root, train=shim())
    config = Config()
    config.judge.baseline_runs = 3
    config.research.plateau = plateau
    config.sandbox.mode = "off"  # the shim runs for a few ms: the sandbox would be the cost
    start = time.monotonic()
    coordinator, ending = run_session(ws, experiments, agent=TuneAgent(), config=config)
    state = coordinator.state
    paused = [e for e in coordinator.events if e.get("event") == "paused"]
    best = state.best
    return {"ended": ending.why, "ran": len(state.ran), "paused": len(paused),
            "lines": len(state.lines), "best": state.mean_of(best) if best else None,
            "seconds": time.monotonic() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-tree-") as tmp:
        results = {name: session(Path(tmp) / name, args.experiments, plateau)
                   for name, plateau in (("plateau 0", 0), ("plateau 12", 12))}
    for name, r in results.items():
        gap = None if r["best"] is None else r["best"] - 1.0
        print(f"{name:10}: {r['ran']} experiments in {r['seconds']:.0f} s, "
              f"{r['lines']} line(s), {r['paused']} pause(s); ended: {r['ended']}; best "
              f"{r['best']:.6f} (gap {gap:.6f} to the optimum 1.0)")


if __name__ == "__main__":
    main()
