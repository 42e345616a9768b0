"""Recorded sessions whose runs have whole loss curves (for the curves screen's tests and
bench): the synthetic session of tui_support, each run's log a train.py-style stream of
`\\r` progress lines, the baseline re-run twice for the noise (so an early stop's band can
be rebuilt), and the experiments in `stopped` stopped early, behind, at 55%."""
from __future__ import annotations

import json
import math
from pathlib import Path

from tui_support import synthetic_session

POINTS = 200  # progress lines a run prints (one every 0.5% of its budget)
STOP_AT = 55.0
BEHIND = 0.3  # how far a stopped run's loss sits above the others


def loss_at(percent: float, offset: float, wobble: int) -> float:
    """A training loss: a steep start, then a slow descent, a small wiggle per run."""
    return 2.9 + 4.0 * math.exp(-percent / 8) - 0.004 * percent + offset \
        + 0.004 * math.sin(percent * 0.7 + wobble)


def curve_log(offset: float, wobble: int, end: float = 100.0, metric: float = 1.0) -> str:
    lines = []
    for i in range(1, POINTS + 1):
        percent = 100.0 * i / POINTS
        if percent > end:
            break
        lines.append(f"step {i:05d} ({percent:.1f}%) | loss: {loss_at(percent, offset, wobble):.6f}"
                     f" | remaining: {300 - 1.5 * i:.0f}s")
    summary = "" if end < 100 else f"\n---\nval_bpb:          {metric:.6f}\n"
    return "data_fingerprint: fake0001\n" + "\r".join(lines) + summary


def curves_session(root: Path, experiments: int, stopped: tuple[int, ...] = (),
                   tag: str = "demo") -> Path:
    """The synthetic session, every run's log a whole curve (a stopped one's up to
    STOP_AT), its baseline measured three times, its stops journaled as a session does."""
    ws = synthetic_session(root, experiments, tag=tag, stopped=stopped)
    journal = ws / ".cockpit" / tag / "journal.jsonl"
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    out = []
    for event in events:
        n = event.get("n")
        if event["event"] == "result" and n in stopped:
            record = event["early_stop"] = _stop_record(n)
            out.append({"event": "early_stop", "time": event["time"] - 1, "n": n, **record})
        out.append(event)
        if event["event"] == "result":
            metric = event.get("metric") or 1.3
            offset = (metric - 1.25) + (BEHIND if n in stopped else 0.0)
            (ws / event_log(events, n)).write_text(
                curve_log(offset, n, STOP_AT if n in stopped else 100.0, metric))
            if n == 1:
                out += _noise_reruns(ws, tag, event, offset)
    journal.write_text("".join(json.dumps(e) + "\n" for e in out))
    return ws


def event_log(events: list[dict], n: int) -> str:
    return next(e["log"] for e in events if e["event"] == "run_start" and e["n"] == n)


def _stop_record(n: int) -> dict:
    return {"progress": STOP_AT, "loss": round(loss_at(STOP_AT, BEHIND, n), 4),
            "best_loss": round(loss_at(STOP_AT, 0.0, n), 4), "sigmas": 9.1, "since": 50.0}


def _noise_reruns(ws: Path, tag: str, result: dict, offset: float) -> list[dict]:
    """Two re-runs of the baseline's commit, a little apart: what calibrates the spread."""
    events = []
    values = [result["metric"]]
    for k, shift in ((1, 0.01), (2, -0.012)):
        log = f".cockpit/{tag}/runs/m{k:03d}/run.log"
        (ws / log).parent.mkdir(parents=True, exist_ok=True)
        (ws / log).write_text(curve_log(offset + shift, 100 + k))
        values.append(result["metric"] + shift)
        events.append({"event": "measure", "time": result["time"] + 10 * k, "k": k,
                       "commit": result["commit"], "purpose": "noise",
                       "metric": values[-1], "log": log, "seconds": 300.0})
    events.append({"event": "noise", "time": result["time"] + 30, "commit": result["commit"],
                   "values": values})
    return events
