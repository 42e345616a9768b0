"""What one experiment hands to a tracker: its result as the journal folded it, and its
loss curve as its run's log printed it (the progress lines the cockpit's chart reads)."""
from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cockpit.domain.progress import parse_progress
from cockpit.domain.state import Experiment

EXPORTED_STATUSES = ("keep", "discard", "crash")  # the ones that ran (a rejected one did not)
MAX_POINTS = 5000  # a loss curve's points kept; a longer one keeps every k-th (its ends too)
CHUNK = 1 << 20  # bytes of a log read at a time: a log of any size in bounded memory
SLUG_LENGTH = 40


@dataclass(frozen=True)
class Record:
    """One finished experiment, as the trackers show it."""

    n: int
    description: str
    status: str  # keep | discard | crash
    metric_name: str  # "val_bpb", or what [metric] name says
    metric: float | None  # None: a crash, or a run without a result
    verdict: str  # the judge's words (why kept or discarded), else the crash's reason
    commit: str
    memory_gb: float
    seconds: float
    time: float  # when it was judged (seconds since 1970)
    losses: tuple[tuple[int, float], ...] = ()  # (step, loss), steps increasing

    @property
    def name(self) -> str:
        """Its run's name: "0007-lower-the-learning-rate"."""
        return f"{self.n:04d}-{slug(self.description)}"

    def facts(self) -> dict[str, str]:
        """What it is, in words, for a tracker's text or tags."""
        return {"description": self.description, "status": self.status,
                "verdict": self.verdict, "commit": self.commit,
                "memory_gb": f"{self.memory_gb:g}", "seconds": f"{self.seconds:.1f}"}


def slug(text: str) -> str:
    """A description as a folder name: lowercase words joined by "-", at most SLUG_LENGTH."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:SLUG_LENGTH].rstrip("-") or "experiment"


def record_of(exp: Experiment, metric_name: str, workspace: Path, when: float,
              curve: bool = True) -> Record:
    """The record of a finished experiment, its loss curve read from its run's log (none
    without `curve`: what a tracker was given before needs no log read again)."""
    losses = loss_points(workspace / exp.log) if exp.log and curve else []
    return Record(n=exp.n, description=exp.description, status=exp.status or "",
                  metric_name=metric_name, metric=exp.metric,
                  verdict=exp.verdict or exp.reason, commit=exp.commit or "",
                  memory_gb=exp.memory_gb, seconds=exp.seconds, time=when,
                  losses=tuple(losses))


def loss_points(path: Path) -> list[tuple[int, float]]:
    """The (step, loss) points of a run's progress lines, one per step (the last said),
    finite losses only; a run that prints no step is numbered by its lines' order."""
    found: dict[int, float] = {}
    unnumbered: list[float] = []
    for line in _lines(path):
        progress = parse_progress(line)
        if progress is None or progress.loss is None or not math.isfinite(progress.loss):
            continue
        if progress.step is None:
            unnumbered.append(progress.loss)
        else:
            found[progress.step] = progress.loss
    points = sorted(found.items()) if found else list(enumerate(unnumbered))
    return _thinned(points)


def _thinned(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    if len(points) <= MAX_POINTS:
        return points
    stride = math.ceil(len(points) / MAX_POINTS)
    kept = points[::stride]
    return kept if kept[-1] == points[-1] else kept + [points[-1]]


def _lines(path: Path) -> Iterator[str]:
    """A log's lines, `\\r` and `\\n` both ending one, read a chunk at a time."""
    rest = b""
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                parts = re.split(rb"[\r\n]", rest + chunk)
                rest = parts.pop()
                if len(rest) > CHUNK:  # a line this long is no progress line: not kept whole
                    rest = b""
                for part in parts:
                    yield part.decode("utf-8", errors="replace")
    except OSError:  # gone or unreadable: what was read is the curve
        pass
    if rest:
        yield rest.decode("utf-8", errors="replace")
