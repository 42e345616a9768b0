"""Proposals, and proposals on their way to a worker: made ahead of time, just in time,
and kept current.

A slow proposer (a model that takes a minute) must not leave workers idle, and a fast one
(the offline tune agent) should propose with the newest results in hand. Both follow from
one rule: a proposal for a slot starts when the slot will need it within the time a proposal
takes (`proposals_needed`). A proposal made on a best that has moved since is carried onto the
new best with a three-way merge when its change still applies (workspace.merge).
"""
from __future__ import annotations

import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

MARGIN = 1.25  # start a proposal this much earlier than its expected duration requires
# A proposer faster than this proposes only for idle workers, with every result in hand.
AHEAD_MIN_SECONDS = 1.0
MAX_AHEAD_PER_SLOT = 3  # never more proposals than this waiting per worker
SAMPLES = 8  # the recent durations an estimate rests on


@dataclass
class Proposal:
    description: str  # one line: what changes (goes into results.tsv and the commit)
    hypothesis: str  # why it might help
    source: str  # the full new text of the editable file
    params: dict[str, Any] = field(default_factory=dict)  # the file's constants after the change
    move: dict[str, Any] | None = None  # tune: {"name", "old", "new", "direction", "why"}
    repair_of: int | None = None  # the crashed experiment this one fixes
    attempts: int = 1  # answers it took (refused ones included)
    # {"prompt_tokens", "completion_tokens", "cost_usd"}
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass
class Ticket:
    """One proposal: made (proposal set), then approved, then run on a worker."""

    n: int
    base: str  # the best commit it was built on
    proposal: Proposal | None = None
    diff: str = ""
    approved: bool = False
    edited: bool = False  # the human changed it before approving
    made: str = ""  # its commit, already made: one the human committed on the session branch
    line: int = 0  # the line of the search tree it builds on (base: that line's best)
    since: float = field(default_factory=time.monotonic)

    @property
    def is_baseline(self) -> bool:
        """The unmodified starting point (no change to run)."""
        return self.proposal is not None and self.proposal.description == "baseline" \
            and not self.diff


class Durations:
    """Recent durations of something (proposals, runs): a robust expectation of the next."""

    def __init__(self, initial: float | None = None) -> None:
        self.samples: deque[float] = deque(maxlen=SAMPLES)
        self.initial = initial

    def add(self, seconds: float) -> None:
        self.samples.append(max(0.0, seconds))

    @property
    def expected(self) -> float | None:
        if self.samples:
            return statistics.median(self.samples)
        return self.initial


def proposals_needed(remaining: list[float | None], run_seconds: float,
                     propose_seconds: float | None, slow_until_known: bool = False) -> int:
    """How many proposals should exist (made, being made, or awaiting approval) now.

    remaining: per worker, the seconds until it is free (0 for an idle worker, None for a
    worker that is not ours to fill, e.g. re-running a measurement of unknown length).
    A worker needs its next proposal when it frees, and one more every run after that; a
    proposal that takes `propose_seconds` must start that much (with a margin) before.
    Before any proposal was timed, a proposer known to be slow (a model) gets one proposal
    per worker at once, so the first runs after the baseline do not wait for it."""
    if propose_seconds is None and slow_until_known:
        return sum(left is not None for left in remaining)
    lead = 0.0  # a fast proposer proposes only for idle workers
    if propose_seconds is not None and propose_seconds >= AHEAD_MIN_SECONDS:
        lead = propose_seconds * MARGIN
    need = 0
    for left in remaining:
        if left is None:
            continue
        if left <= 0:
            need += 1
            left = run_seconds  # the proposal taken now starts a run: the next is due after it
        if lead > left:
            extra = 1 + int((lead - left) // max(run_seconds, 1e-3))
            need += min(MAX_AHEAD_PER_SLOT, extra)
    return need
