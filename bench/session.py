"""Shared by the bench scripts: one headless session of the real train.py in a fresh workspace."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_session(budget: int, experiments: int, tag: str) -> tuple[list[dict], float]:
    """`cockpit init` + `cockpit run --headless --experiments N`; (journal events, wall s)."""
    with tempfile.TemporaryDirectory(prefix=f"cockpit-{tag}-") as tmp:
        ws = Path(tmp) / "ws"
        subprocess.run([sys.executable, "-m", "cockpit", "init", str(ws)], check=True,
                       stdout=subprocess.DEVNULL)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cockpit", "-C", str(ws), "run", "--headless",
                        "--experiments", str(experiments), "--budget", str(budget),
                        "--tag", tag], check=True)
        wall = time.perf_counter() - start
        journal = ws / ".cockpit" / tag / "journal.jsonl"
        return [json.loads(line) for line in journal.read_text().splitlines()], wall
