"""What the tune agent knows before its next proposal: every configuration run, rejected or
measured by an earlier session, and the measured effect of every single move."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from cockpit.agents.base import AgentContext
from cockpit.agents.moves import move_key
from cockpit.agents.steering import Steering
from cockpit.domain.judge import gain_of
from cockpit.domain.state import Experiment

REJECTED_PREFIX = "rejected by the human:"


def config_key(params: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted(params.items()))


@dataclass
class Outcome:
    """One measured single move (this session or an earlier one)."""

    name: str
    direction: int  # +1 / -1 for a number; 0 for a choice
    factor: float
    old: Any
    new: Any
    status: str  # keep | discard | crash
    gain: float | None  # better than its bar by this much (None: crashed or stopped early)
    confidence: float | None  # the gain in units of the noise
    stopped_early: bool
    session: str
    start: dict[str, Any] = field(default_factory=dict)  # the configuration it moved from

    @property
    def key(self) -> tuple[str, Any]:
        return move_key(self.name, self.direction, self.new)

    @property
    def helped(self) -> bool:
        return self.status == "keep"

    @property
    def near_miss(self) -> bool:
        return (self.status == "discard" and not self.stopped_early
                and self.gain is not None and self.gain > 0)

    def effect(self, metric: str) -> str:
        """What the move did, in words (never a gain for a run that did not finish)."""
        if self.status == "crash":
            return "crashed"
        if self.stopped_early:
            return "was stopped early, behind the best"
        if self.gain is None:
            return f"ended {self.status}"
        units = f"{self.confidence:.1f}x " if self.confidence is not None else ""
        if self.helped:
            noise = f" ({units}the noise)" if units else ""
            return f"improved {metric} by {self.gain:.4f}{noise}"
        if self.gain > 0:
            noise = f" ({units}its std)" if units else ""
            return f"gained only {self.gain:.4f}, within the noise{noise}"
        return f"made {metric} worse by {-self.gain:.4f}"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_move(move: Any) -> bool:
    """A single move as this agent records it (a journal line may hold anything): a number
    stepped up or down, or a choice set to an alternative."""
    if not (isinstance(move, dict) and isinstance(move.get("name"), str)):
        return False
    if move.get("direction") == 0:
        return all(isinstance(move.get(k), (int, float, str, bool)) for k in ("old", "new"))
    return move.get("direction") in (1, -1) and _number(move.get("factor", 2.0)) \
        and all(_number(move.get(k)) for k in ("old", "new"))


def record_key(move: dict[str, Any]) -> tuple[str, Any]:
    return move_key(move["name"], move["direction"], move["new"])


def _outcome(e: Experiment, direction: str) -> Outcome | None:
    move = e.move or {}
    if e.status not in ("keep", "discard", "crash") or not _is_move(move):
        return None
    stopped = e.early_stop is not None
    return Outcome(move["name"], move["direction"], move.get("factor", 2.0), move["old"],
                   move["new"], e.status, None if stopped else gain_of(e.delta_best, direction),
                   None if stopped else e.confidence, stopped, e.session, start_of(e) or {})


def moves_of(e: Experiment) -> list[dict[str, Any]]:
    """The single moves of an experiment (a combination has two or more)."""
    if not e.move:
        return []
    moves = e.move.get("combine") or [e.move]
    return [m for m in moves if _is_move(m)] if isinstance(moves, list) else []


def start_of(e: Experiment) -> dict[str, Any] | None:
    """The configuration a move started from (the best when it was proposed)."""
    moves = moves_of(e)
    if not (e.params and moves):
        return None
    start = dict(e.params, **{m["name"]: m["old"] for m in moves})
    follows = (e.move or {}).get("follows")  # divisors that followed the move
    if isinstance(follows, dict):
        start.update((k, v) for k, v in follows.items() if k in start)
    return start


class Ledger:
    """What is known before the next proposal.

    - ran: configurations run in this session, in flight, or started from (each move's
      starting point was the best, so it ran);
    - earlier: configurations earlier sessions ran, with the outcome of their move;
    - rejected: configurations the human rejected (in this session or an earlier one);
    - outcomes / prior: the measured moves of this session / of earlier sessions;
    - tried / refused: moves (see `move_key`) made in this session / rejected in it;
      learned: made in an earlier session without a keep (the first pass need not ask).
    """

    def __init__(self, ctx: AgentContext):
        self.ran: set[tuple[Any, ...]] = set()
        self.earlier: dict[tuple[Any, ...], Outcome | None] = {}
        self.rejected: set[tuple[Any, ...]] = set()
        self.outcomes: list[Outcome] = []
        self.prior: list[Outcome] = []
        self.tried: set[tuple[str, Any]] = set()
        self.refused: set[tuple[str, Any]] = set()
        self.learned: set[tuple[str, Any]] = set()
        self.rejections: list[tuple[str, str, int]] = []  # (reason, constant, direction)
        for e in ctx.prior:
            outcome = _outcome(e, ctx.direction)
            if outcome is not None:
                self.prior.append(outcome)
                if not outcome.helped:
                    self.learned.add(outcome.key)
            for key in self._starts(e):
                self.earlier.setdefault(key, None)
            if e.params and e.status == "rejected":
                self.rejected.add(config_key(e.params))
            elif e.params:
                self.earlier[config_key(e.params)] = outcome
        for e in ctx.history:
            tried = self.refused if e.status == "rejected" else self.tried
            tried.update(record_key(m) for m in moves_of(e))
            if e.status == "rejected":
                if e.params:
                    self.rejected.add(config_key(e.params))
                reason = e.reason.removeprefix(REJECTED_PREFIX).strip()
                for m in moves_of(e) or [{"name": "", "direction": 0}]:
                    self.rejections.append((reason, m["name"], m["direction"]))
                continue
            self.ran.update(self._starts(e))
            if e.params:
                self.ran.add(config_key(e.params))
            outcome = _outcome(e, ctx.direction)
            if outcome is not None:
                self.outcomes.append(outcome)

    @staticmethod
    def _starts(e: Experiment) -> list[tuple[Any, ...]]:
        start = start_of(e)
        return [] if start is None else [config_key(start)]

    def blocked(self, params: dict[str, Any], moved: list[str], steering: Steering) -> bool:
        """Whether a configuration must not be proposed: it ran in this session, or it was
        rejected or run in an earlier session and no note asks for its constants again."""
        key = config_key(params)
        if key in self.ran:
            return True
        if key in self.rejected or key in self.earlier:
            return not any(name in steering.again for name in moved)
        return False

    def earlier_keep(self, params: dict[str, Any]) -> bool:
        """Whether an earlier session kept this configuration (a gain beyond the noise)."""
        outcome = self.earlier.get(config_key(params))
        return outcome is not None and outcome.helped

    def earlier_words(self, key: tuple[str, Any], metric: str) -> str:
        """What an earlier session measured for this move, if anything."""
        same = [o for o in self.prior if o.key == key]
        if not same:
            return ""
        o = max(same, key=lambda o: o.gain if o.gain is not None else -math.inf)
        session = f"in session {o.session}" if o.session else "in an earlier session"
        return f"; {session}, {o.name} {o.old!r} -> {o.new!r} {o.effect(metric)}" \
            if o.direction == 0 else \
            f"; {session}, {o.name} {o.old:g} -> {o.new:g} {o.effect(metric)}"
