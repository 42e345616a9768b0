"""Helpers for the cockpit's TUI tests and benches: synthetic sessions and Pilot waits."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from support import FAKE_TRAIN, make_workspace

DIFF = """--- a/train.py
+++ b/train.py
@@ -1,3 +1,3 @@
 import math, os, sys, time
-LEARNING_RATE = {old}  # step size
+LEARNING_RATE = {new}  # step size
 BATCH_SIZE = 16  # sequences per step
"""


def synthetic_session(root: Path, experiments: int, tag: str = "demo",
                      logs: bool = True, start: float = 1_700_000_000.0,
                      stopped: tuple[int, ...] = ()) -> Path:
    """A workspace with a finished session of `experiments` experiments written straight
    into its journal (no git, no training): deterministic, and instant to make. The
    experiments numbered in `stopped` were stopped early (discards with no metric)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.py").write_text(FAKE_TRAIN)
    (root / "program.md").write_text("# program\nMake val_bpb low.\n\n"
                                     "Try the learning rate first.\n")
    session = root / ".cockpit" / tag
    session.mkdir(parents=True, exist_ok=True)
    events = [{"event": "session", "time": start, "tag": tag, "branch": f"autoresearch/{tag}",
               "base": "0" * 40, "metric": "val_bpb", "direction": "lower", "agent": "tune",
               "config": {"experiment": {"time_budget": 300}, "agent": {"kind": "tune"}}}]
    best = baseline = None
    for n in range(1, experiments + 1):
        t = start + n * 360
        commit = f"{n:07x}" + "a" * 33
        status = "crash" if n % 7 == 0 else None
        metric = None if status else round(1.3 - 0.25 * (1 - math.exp(-n / 40))
                                           + 0.03 * math.sin(n * 1.7), 6)
        if status is None:
            status = "keep" if best is None or metric < best else "discard"
        if n in stopped:
            status, metric = "discard", None
        old, new = f"{0.01 / (1 + (n - 1) % 5):.6g}", f"{0.01 / (1 + n % 5):.6g}"
        desc = "baseline" if n == 1 else f"LEARNING_RATE {old} -> {new}"
        log = f".cockpit/{tag}/runs/{n:04d}/run.log"
        events += [
            {"event": "proposal", "time": t, "n": n, "description": desc,
             "hypothesis": "" if n == 1 else f"idea {n}: a smaller step may settle lower",
             "diff": "" if n == 1 else DIFF.format(old=old, new=new), "params": {}},
            {"event": "commit", "time": t + 1, "n": n, "commit": commit},
            {"event": "run_start", "time": t + 2, "n": n, "commit": commit, "log": log},
            {"event": "result", "time": t + 300, "n": n, "commit": commit, "status": status,
             "metric": metric, "memory_gb": 0.0 if status == "crash" else 2.0, "summary": {},
             "seconds": 300.0,
             "reason": "exit code 1: RuntimeError: CUDA error" if status == "crash" else "",
             "delta_best": None if metric is None or best is None else round(metric - best, 6),
             "delta_baseline": (None if metric is None or baseline is None
                                else round(metric - baseline, 6)),
             **({"early_stop": {"progress": 55.0, "loss": 3.91, "best_loss": 3.72, "sigmas": 9.1}}
                if n in stopped else {})},
        ]
        if logs:
            path = root / log
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"data_fingerprint: fake0001\nstep 00099 (100.0%) | loss: 2.5\n---\n"
                            f"val_bpb:          {metric or 0:.6f}\nrun {n}\n")
        if status == "keep":
            best = metric
            baseline = baseline if baseline is not None else metric
    (session / "journal.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return root


async def wait_for(pilot, condition, timeout: float = 30.0, what: str = "") -> None:
    """Let the app run until condition() holds (the loop thread works meanwhile)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.05)


def slow_train(steps: int = 600, delay: float = 0.05) -> str:
    """FAKE_TRAIN whose run takes steps x delay seconds (for stop / quit tests)."""
    return FAKE_TRAIN.replace(
        "for i in range(3):",
        f"for i in range({steps}):\n    time.sleep({delay})",
    )


def workspace(tmp_path: Path, train: str = FAKE_TRAIN) -> Path:
    return make_workspace(tmp_path / "ws", train=train)

