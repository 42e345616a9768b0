"""The session's live state: what no journal event holds (what runs where and how far,
what waits, pauses, holds), as clients are sent it. Sent when it changes; a run's progress
alone does not count as a change (clients follow it from the output)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cockpit.domain.progress import Progress
from cockpit.domain.state import SessionState
from cockpit.session.scheduler import Scheduler


@dataclass
class Control:
    """How the loop stands: paused or not (and why), stopping, ending."""

    auto_approve: bool = True
    paused: bool = False
    pause_kind: str = ""  # "", "human", "cost", "provider", "proposals", "disk", ...
    pause_reason: str = ""
    stopping: str = ""  # why no new work starts ("" while it does)
    ending: str = ""  # why the session ended ("" while it runs)
    notify_failing: dict[str, str] = field(default_factory=dict)  # service -> its error


def snapshot(tag: str, agent: str, scheduler: Scheduler, held: list[int],
             progress: dict[int, Progress], control: Control, state: SessionState,
             workspace: Path) -> dict[str, Any]:
    now = time.monotonic()
    running = []
    for slot in scheduler.slots:
        job = slot.job
        if job is None:
            continue
        seen = progress.get(slot.worker)
        running.append({"worker": slot.worker, "kind": job.kind, "n": job.n,
                        "commit": job.commit, "log": str(job.log_path.relative_to(workspace)),
                        "purpose": slot.measurement.purpose if slot.measurement else "",
                        "elapsed": round(now - slot.started, 1),
                        "percent": seen.percent if seen else None,
                        "loss": seen.loss if seen else None})
    return {"tag": tag, "workers": len(scheduler.slots), "running": running,
            "awaiting": sorted(scheduler.awaiting), "ready": [t.n for t in scheduler.ready],
            "proposing": sorted(scheduler.proposing), "held": held,
            "measurements": len(scheduler.measurements), "paused": control.paused,
            "pause_kind": control.pause_kind, "pause_reason": control.pause_reason,
            "auto_approve": control.auto_approve, "holds": len(scheduler.holds),
            "stopping": control.stopping, "limit": scheduler.limit,
            "notes": [{"id": i, "text": t} for i, t in state.notes.items()],
            "ended": control.ending, "cost_usd": round(state.cost_usd, 6), "agent": agent,
            "notify_failing": sorted(control.notify_failing)}


def changed(live: dict[str, Any], sent: dict[str, Any] | None) -> dict[str, Any] | None:
    """What to compare with the last snapshot sent (None: nothing worth sending)."""
    comparable = dict(live, running=[dict(r, elapsed=0, percent=0, loss=0)
                                     for r in live["running"]])
    return None if comparable == sent else comparable
