"""The offline agent: one informed perturbation of train.py's constants at a time.

It reads the top-level UPPERCASE numeric constants with `ast` and picks the next move from
what is known: this session's experiments (those in flight included), the experiments of
earlier sessions in the workspace (`ctx.prior`), and the human's words. In this order:
  1. momentum: the last kept move worked, so push the same constant the same way once
     more, right away (a step too far costs one run, often stopped early; waiting for the
     first pass to end would leave the most promising lever alone for a dozen runs);
  2. first pass: every constant in both directions; constants whose moves helped in
     earlier sessions first (in the direction that helped), then the ones that usually
     matter most in a fixed time budget (learning rates, then model shape); a move an
     earlier session measured without a keep is already known and skipped;
  3. near-misses (better than the best, within the noise): two of the strongest together
     on top of the best, then each alone again on a best that has moved since it was
     measured, then the other pairs;
  4. refinement: smaller steps around the best value, both ways; then the coarse steps
     again around a best that has moved since they were measured.
Back-off is the first pass's second direction: a step that hurt, crashed or was stopped
early is followed by the step the other way, which says why. A first-pass step to a
configuration an earlier session kept goes on past it, the way it helped.
A proposal the human rejected is a rejected idea, not a measurement, and the reason typed for
it steers like a note (see `steering`): constants to leave alone are never moved, constants
asked for come first. A configuration already run (in this session, in flight, or in an
earlier session) or rejected is never proposed again, unless a note asks for its constant
again. Only literals are rewritten: each diff changes one line (two for a pair of
near-misses), and constants such as `SEED` are left alone.
"""
from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from itertools import combinations

from cockpit.agents.base import AgentContext, AgentExhausted
from cockpit.agents.steering import Steering, read_steering
from cockpit.domain.judge import gain_of
from cockpit.domain.proposals import Proposal
from cockpit.domain.state import Experiment

FACTORS = (2.0, math.sqrt(2.0), 2 ** 0.25)  # coarse first, then finer around the best
SKIP_WORDS = ("SEED", "BUDGET", "EVAL", "LOG", "PRINT", "INTERVAL", "EVERY", "DEVICE", "VERBOSE")
# Constants worth trying first, by a word in their name: what usually matters most in a
# fixed time budget (optimizer step size, then the model's size against the tokens it can
# see in the budget, then how many steps fit, then the schedule).
PRIORITY_WORDS = ("LR", "LEARNING_RATE", "DEPTH", "LAYER", "DIM", "EMBD", "WIDTH", "BATCH",
                  "WARMUP", "WARMDOWN", "HEAD", "DECAY", "BETA", "MLP", "RATIO")
MAX_WALK = 3  # steps taken past configurations an earlier session kept
PAIRED_FIRST = 4  # near-misses whose pairs (6) come before each is tried alone again
REJECTED_PREFIX = "rejected by the human:"


@dataclass
class Constant:
    name: str
    value: float | int
    text: str  # the literal as written
    lineno: int  # 1-based
    start: int  # byte offsets of the literal in its line
    end: int


def read_constants(source: str) -> dict[str, Constant]:
    """Top-level `NAME = <int or float literal>` assignments, in file order."""
    constants: dict[str, Constant] = {}
    lines = source.splitlines()
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, value = node.targets[0], node.value
        if not (isinstance(target, ast.Name) and target.id.isupper()):
            continue
        number = _literal_number(value)
        if number is None or value.lineno != value.end_lineno or value.end_col_offset is None:
            continue
        line = lines[value.lineno - 1].encode()
        text = line[value.col_offset : value.end_col_offset].decode()
        constants[target.id] = Constant(
            target.id, number, text, value.lineno, value.col_offset, value.end_col_offset
        )
    return constants


def _literal_number(node: ast.expr) -> float | int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _literal_number(node.operand)
        return -inner if inner is not None else None
    if (isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool)):  # True is an int, not a number here
        return node.value
    return None


def rewrite_constant(source: str, const: Constant, new_text: str) -> str:
    """The source with one literal replaced; every other byte unchanged."""
    lines = source.splitlines(keepends=True)
    line = lines[const.lineno - 1].encode()
    lines[const.lineno - 1] = (line[: const.start] + new_text.encode() + line[const.end :]).decode()
    return "".join(lines)


def format_like(original: str, value: float | int) -> str:
    """Write a new value in the style of the original literal (int, plain or e-notation)."""
    if isinstance(value, int):
        return str(value)
    if "e" in original.lower():
        exponent = math.floor(math.log10(abs(value)))
        mantissa = f"{value / 10 ** exponent:.3g}"
        return f"{mantissa}e{exponent}"
    text = f"{value:.4g}"
    if "e" in text:  # very small/large plain literal: keep it readable anyway
        return text
    return text if "." in text else text + ".0"


def step(value: float | int, direction: int, factor: float) -> float | int | None:
    """The value moved one step up (+1) or down (-1); None when the move is not possible."""
    if isinstance(value, int):
        if value <= 0:
            return None
        if value & (value - 1) == 0 and factor == 2.0:  # powers of two stay powers of two
            new = value * 2 if direction > 0 else value // 2
        else:
            grain = math.gcd(value, 64)  # keep dims on their multiple (of up to 64)
            raw = value * factor if direction > 0 else value / factor
            new = max(grain, round(raw / grain) * grain)
            if new == value:
                new = value + direction
        return new if new >= 1 and new != value else None
    if value == 0:
        return None
    if 0.5 <= value < 1:  # betas, momentum, ratios close to 1: step in (1 - x)
        gap = (1 - value) / factor if direction > 0 else (1 - value) * factor
        moved = 1 - gap
        return round(moved, 6) if 0 < moved < 1 else None
    moved = value * factor if direction > 0 else value / factor
    return float(f"{moved:.3g}")


def _priority(name: str) -> int:
    for rank, word in enumerate(PRIORITY_WORDS):
        if word in name.split("_") or name.startswith(word) or name.endswith(word):
            return rank
    return len(PRIORITY_WORDS)


def _config_key(params: dict) -> tuple:
    return tuple(sorted(params.items()))


Step = tuple[str, int, float]  # (constant, direction +1/-1, factor)


@dataclass(frozen=True)
class Candidate:
    steps: tuple[Step, ...]  # one step, or two for a pair of near-misses
    why: str


@dataclass
class Outcome:
    """One measured single-constant move (this session or an earlier one)."""

    name: str
    direction: int
    factor: float
    old: float | int
    new: float | int
    status: str  # keep | discard | crash
    gain: float | None  # better than its bar by this much (None: crashed or stopped early)
    confidence: float | None  # the gain in units of the noise
    stopped_early: bool
    session: str

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


def _is_move(move) -> bool:
    """A single-constant move as this agent records it (a journal line may hold anything)."""
    return isinstance(move, dict) and isinstance(move.get("name"), str) \
        and move.get("direction") in (1, -1) \
        and isinstance(move.get("factor", 2.0), (int, float)) \
        and all(isinstance(move.get(k), (int, float)) and not isinstance(move.get(k), bool)
                for k in ("old", "new"))


def _outcome(e: Experiment, direction: str) -> Outcome | None:
    move = e.move or {}
    if e.status not in ("keep", "discard", "crash") or not _is_move(move):
        return None
    stopped = e.early_stop is not None
    return Outcome(move["name"], move["direction"], move.get("factor", 2.0), move["old"],
                   move["new"], e.status, None if stopped else gain_of(e.delta_best, direction),
                   None if stopped else e.confidence, stopped, e.session)


def _moves_of(e: Experiment) -> list[dict]:
    """The single-constant moves of an experiment (a pair of near-misses has two)."""
    if not e.move:
        return []
    moves = e.move.get("combine") or [e.move]
    return [m for m in moves if _is_move(m)] if isinstance(moves, list) else []


class Ledger:
    """What is known before the next proposal.

    - ran: configurations run in this session, in flight, or started from (each move's
      starting point was the best, so it ran);
    - earlier: configurations earlier sessions ran, with the outcome of their move;
    - rejected: configurations the human rejected (in this session or an earlier one);
    - outcomes / prior: the measured moves of this session / of earlier sessions;
    - tried / refused: (constant, direction) moved in this session / rejected in it;
      learned: moved in an earlier session without a keep (the first pass need not ask).
    """

    def __init__(self, ctx: AgentContext):
        self.ran: set[tuple] = set()
        self.earlier: dict[tuple, Outcome | None] = {}
        self.rejected: set[tuple] = set()
        self.outcomes: list[Outcome] = []
        self.prior: list[Outcome] = []
        self.tried: set[tuple[str, int]] = set()
        self.refused: set[tuple[str, int]] = set()
        self.learned: set[tuple[str, int]] = set()  # moves earlier sessions measured, not kept
        self.rejections: list[tuple[str, str, int]] = []  # (reason, constant, direction)
        for e in ctx.prior:
            outcome = _outcome(e, ctx.direction)
            if outcome is not None:
                self.prior.append(outcome)
                if not outcome.helped:
                    self.learned.add((outcome.name, outcome.direction))
            for key in self._starts(e):
                self.earlier.setdefault(key, None)
            if e.params and e.status == "rejected":
                self.rejected.add(_config_key(e.params))
            elif e.params:
                self.earlier[_config_key(e.params)] = outcome
        for e in ctx.history:
            tried = self.refused if e.status == "rejected" else self.tried
            tried.update((m["name"], m["direction"]) for m in _moves_of(e))
            if e.status == "rejected":
                if e.params:
                    self.rejected.add(_config_key(e.params))
                reason = e.reason.removeprefix(REJECTED_PREFIX).strip()
                for m in _moves_of(e) or [{"name": "", "direction": 0}]:
                    self.rejections.append((reason, m["name"], m["direction"]))
                continue
            self.ran.update(self._starts(e))
            if e.params:
                self.ran.add(_config_key(e.params))
            outcome = _outcome(e, ctx.direction)
            if outcome is not None:
                self.outcomes.append(outcome)

    @staticmethod
    def _starts(e: Experiment) -> list[tuple]:
        """The configuration a move started from (the best when it was proposed)."""
        moves = _moves_of(e)
        if not (e.params and moves):
            return []
        return [_config_key(dict(e.params, **{m["name"]: m["old"] for m in moves}))]

    def blocked(self, params: dict, moved: list[str], steering: Steering) -> bool:
        """Whether a configuration must not be proposed: it ran in this session, or it was
        rejected or run in an earlier session and no note asks for its constants again."""
        key = _config_key(params)
        if key in self.ran:
            return True
        if key in self.rejected or key in self.earlier:
            return not any(name in steering.again for name in moved)
        return False

    def earlier_keep(self, params: dict) -> bool:
        """Whether an earlier session kept this configuration (a gain beyond the noise)."""
        outcome = self.earlier.get(_config_key(params))
        return outcome is not None and outcome.helped


class TuneAgent:
    name = "tune"

    def propose(self, ctx: AgentContext) -> Proposal:
        constants = read_constants(ctx.source)
        tunable = {n: c for n, c in constants.items() if not any(w in n for w in SKIP_WORDS)}
        if not tunable:
            raise AgentExhausted(
                "the tune agent found no numeric UPPERCASE constants to tune in the editable file"
            )
        ledger = Ledger(ctx)
        steering = read_steering(ctx.notes, ledger.rejections, list(tunable))
        current = {n: c.value for n, c in constants.items()}
        for candidate in self._ranked(ctx, tunable, ledger, steering):
            proposal = self._realise(candidate, tunable, current, ledger, steering, ctx.source)
            if proposal is not None:
                return proposal
        raise AgentExhausted(
            "the tune agent has tried every step it knows around the best configuration; "
            "edit train.py or program.md by hand, or use another agent"
        )

    def _realise(self, candidate: Candidate, tunable: dict[str, Constant], current: dict,
                 ledger: Ledger, steering: Steering, source: str) -> Proposal | None:
        """The candidate as a proposal on the current source; None when a step is not
        possible or the configuration is blocked."""
        params, moves = dict(current), []
        for name, direction, factor in candidate.steps:
            new = step(current[name], direction, factor)
            # A single move an earlier session kept: go on past it, the way it helped.
            for _ in range(MAX_WALK if len(candidate.steps) == 1 else 0):
                if new is None or not ledger.earlier_keep(dict(params, **{name: new})):
                    break
                new = step(new, direction, factor)
            if new is None:
                return None
            const = tunable[name]
            text = format_like(const.text, new)
            if text == const.text:
                return None
            params[name] = new
            moves.append((const, new, text, direction, factor))
        if ledger.blocked(params, [m[0].name for m in moves], steering):
            return None
        for const, _new, text, _, _ in sorted(moves, key=lambda m: -m[0].lineno):
            source = rewrite_constant(source, const, text)  # bottom-up: offsets stay valid
        records: list[dict[str, object]] = [
            {"name": c.name, "old": c.value, "new": new, "direction": d, "factor": round(f, 4)}
            for c, new, _, d, f in moves]
        description = ", ".join(f"{c.name} {c.text} -> {text}" for c, _, text, _, _ in moves)
        move: dict[str, object]
        if len(moves) == 1:
            const, _, text, direction, _ = moves[0]
            verb = "Raising" if direction > 0 else "Lowering"
            hypothesis = f"{verb} {const.name} from {const.text} to {text}: {candidate.why}"
            move = records[0]
        else:
            hypothesis = f"{description}: {candidate.why}"
            move = {"name": "+".join(c.name for c, *_ in moves), "combine": records}
        return Proposal(description=description, hypothesis=hypothesis, source=source,
                        params=params, move=move)

    def _ranked(self, ctx: AgentContext, tunable: dict[str, Constant], ledger: Ledger,
                steering: Steering) -> list[Candidate]:
        """Every candidate, best first: the phases in order, the levers the human asked for
        ahead of the rest, the ones to leave alone gone."""
        order = self._first_pass_order(tunable, ledger)
        candidates = [*self._momentum(ctx, tunable, ledger),
                      *self._first_pass(ctx, order, ledger, steering),
                      *self._near_misses(ctx, tunable, ledger),
                      *self._refinement(ctx, order, ledger, steering)]
        candidates = [c for c in candidates if all(steering.allows(s[0]) for s in c.steps)]
        asked = {name: rank for rank, name in enumerate(steering.prefer)}
        return sorted(candidates, key=lambda c: min(asked.get(s[0], len(asked)) for s in c.steps))

    @staticmethod
    def _first_pass_order(tunable: dict[str, Constant], ledger: Ledger) -> list[str]:
        """Constants whose moves helped in earlier sessions first (the larger gain first),
        then near-misses there, then untried ones by priority, then ones that only hurt."""
        def rank(name: str) -> tuple:
            seen = [o for o in ledger.prior if o.name == name]
            helped = [o.gain or 0.0 for o in seen if o.helped]
            near = [o.gain or 0.0 for o in seen if o.near_miss]
            group = 0 if helped else 1 if near else 3 if seen else 2
            return group, -max(helped or near or [0.0]), _priority(name)
        return sorted(tunable, key=rank)

    @staticmethod
    def _directions(name: str, ledger: Ledger, steering: Steering) -> list[int]:
        """Which way first: as the human said, else as an earlier session found best."""
        gains = [o for o in ledger.prior if o.name == name and (o.helped or o.near_miss)]
        default = max(gains, key=lambda o: o.gain or 0.0).direction if gains else +1
        first = steering.first_direction(name, default)
        return [first, -first]

    def _first_pass(self, ctx: AgentContext, order: list[str], ledger: Ledger,
                    steering: Steering) -> list[Candidate]:
        out = []
        for name in order:
            for direction in self._directions(name, ledger, steering):
                known = ((name, direction) in ledger.refused
                         or (name, direction) in ledger.learned) and name not in steering.again
                if (name, direction) not in ledger.tried and not known:
                    other = [o for o in ledger.outcomes
                             if o.name == name and o.direction == -direction]
                    why = (f"the step the other way {other[-1].effect(ctx.metric)}" if other
                           else _why_explore(name, direction, ctx.time_budget))
                    why += _earlier_words(name, direction, ledger, ctx.metric)
                    out.append(Candidate(((name, direction, FACTORS[0]),),
                                         f"{why} (first pass over every constant)"))
        return out

    @staticmethod
    def _momentum(ctx: AgentContext, tunable: dict[str, Constant], ledger: Ledger):
        kept = [o for o in ledger.outcomes if o.helped and o.name in tunable]
        if not kept:
            return []
        last = kept[-1]
        return [Candidate(((last.name, last.direction, last.factor),),
                          f"the last step this way {last.effect(ctx.metric)}, so the optimum "
                          "likely lies further on")]

    @staticmethod
    def _near_misses(ctx: AgentContext, tunable: dict[str, Constant], ledger: Ledger):
        """Near-misses still on their starting value: pairs of the strongest first (their
        gains may add up beyond the noise), then each alone on a best that has moved since,
        then the other pairs (n near-misses make n(n-1)/2 pairs: all of them first would
        hold back the singles for dozens of runs)."""
        latest: dict[str, Outcome] = {}
        for o in ledger.outcomes:
            if o.near_miss and o.name in tunable and tunable[o.name].value == o.old:
                latest[o.name] = o
        near = sorted(latest.values(), key=lambda o: -(o.gain or 0.0))

        def pairs(among: list[Outcome], keep=lambda a, b: True) -> list[Candidate]:
            ranked = sorted((p for p in combinations(among, 2) if keep(*p)),
                            key=lambda p: -((p[0].gain or 0) + (p[1].gain or 0)))
            return [Candidate(((a.name, a.direction, a.factor), (b.name, b.direction, b.factor)),
                              f"two near-misses together: {a.name} {a.effect(ctx.metric)} and "
                              f"{b.name} {b.effect(ctx.metric)}; together they may clear the "
                              "noise") for a, b in ranked]

        top = near[:PAIRED_FIRST]
        singles = [Candidate(((o.name, o.direction, o.factor),),
                             f"this step {o.effect(ctx.metric)} on an earlier best; on the "
                             "current best it may clear the noise") for o in near]
        rest = pairs(near, lambda a, b: a not in top or b not in top)
        return [*pairs(top), *singles, *rest]

    def _refinement(self, ctx: AgentContext, order: list[str], ledger: Ledger,
                    steering: Steering) -> list[Candidate]:
        """Finer steps around the best, both ways; then the coarse steps again, which are
        new configurations once the best has moved since they were measured."""
        out = []
        for factor in (*FACTORS[1:], FACTORS[0]):
            for name in order:
                for direction in self._directions(name, ledger, steering):
                    why = (f"a finer step (x{factor:.2f}) around the best value, between "
                           "the coarser ones" if factor != FACTORS[0] else
                           "measured on an earlier best; the best has moved since")
                    why += _earlier_words(name, direction, ledger, ctx.metric)
                    out.append(Candidate(((name, direction, factor),), why))
        return out


def _earlier_words(name: str, direction: int, ledger: Ledger, metric: str) -> str:
    """What an earlier session measured for this move, if anything."""
    same = [o for o in ledger.prior if o.name == name and o.direction == direction]
    if not same:
        return ""
    o = max(same, key=lambda o: o.gain if o.gain is not None else -math.inf)
    session = f"in session {o.session}" if o.session else "in an earlier session"
    return f"; {session}, {name} {o.old:g} -> {o.new:g} {o.effect(metric)}"


def _why_explore(name: str, direction: int, budget: int) -> str:
    up = direction > 0
    words = set(name.split("_"))
    if words & {"LR"} or "LEARNING_RATE" in name:
        return ("a higher learning rate may converge faster within the fixed "
                f"{budget}s budget" if up else "a lower learning rate may train more stably")
    if "BATCH" in words:
        return ("larger batches give smoother gradients and better hardware use" if up
                else f"smaller batches give more optimizer steps within {budget}s")
    if words & {"DIM", "EMBD", "WIDTH", "DEPTH", "LAYER", "LAYERS", "HEAD", "HEADS", "MLP"}:
        return ("a larger model learns more per token" if up else
                f"a smaller model processes more tokens in {budget}s")
    if words & {"WARMUP", "WARMDOWN"}:
        return "the schedule's shape matters when the budget is short"
    if "DECAY" in words:
        return ("more regularisation may generalise better" if up
                else "less regularisation may fit faster")
    return "not tuned yet in this session"
