"""Reading a run's live progress from its output: the reference's `\\r` progress lines,

    step 00123 (41.0%) | loss: 3.912345 | lrm: 1.00 | dt: 312ms | ... | remaining: 177s

into numbers (progress %, loss, seconds remaining), for the status line, the headless
progress line and the early-stop check.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

PROGRESS = re.compile(r"\((\d+(?:\.\d+)?)%\)")
FIELD = re.compile(r"(step|loss|remaining)\s*:?\s*([-+0-9.eE]+|nan|inf)s?", re.IGNORECASE)


@dataclass(frozen=True)
class Progress:
    percent: float | None = None
    loss: float | None = None
    step: int | None = None
    remaining: float | None = None  # seconds


def parse_progress(line: str) -> Progress | None:
    """The numbers of one progress line, or None when the line is not one."""
    match = PROGRESS.search(line)
    if not match:
        return None
    fields = {}
    for name, value in FIELD.findall(line):
        try:
            fields[name.lower()] = float(value)
        except ValueError:
            continue
    loss = fields.get("loss")
    step = fields.get("step")
    return Progress(percent=float(match.group(1)), loss=loss,
                    step=int(step) if step is not None and math.isfinite(step) else None,
                    remaining=fields.get("remaining"))


def last_progress(text: str) -> Progress | None:
    """The newest progress line in a chunk of output (`\\r` and `\\n` both end a line)."""
    for line in reversed(text.replace("\r", "\n").split("\n")):
        found = parse_progress(line)
        if found is not None:
            return found
    return None


def parse_progress_line(text: str) -> str:
    """The newest progress in a chunk, in a few words ("41% loss 3.9123 177s left"), or ""."""
    found = last_progress(text)
    if found is None:
        return ""
    words = [f"{found.percent:.0f}%"]
    if found.loss is not None:
        words.append(f"loss {found.loss:.4f}")
    if found.remaining is not None:
        words.append(f"{found.remaining:.0f}s left")
    return " ".join(words)
