"""The offline agent: one informed perturbation of train.py's constants at a time.

It reads the top-level UPPERCASE numeric constants with `ast`, and picks the next move
from the session's history, in this order:
  1. momentum: the last kept move worked, so push the same constant the same way again;
  2. back-off: a move that hurt (or crashed) is tried in the other direction;
  3. exploration: a constant not tuned yet, learning rates and batch size first;
  4. refinement: smaller steps around the best value once both directions failed.
A configuration already tried in the session is never proposed again, and only the
constant's literal is rewritten, so each diff is one line.
"""
from __future__ import annotations

import ast
import math
from dataclasses import dataclass

from cockpit.agents import AgentContext, AgentExhausted, Proposal

FACTORS = (2.0, math.sqrt(2.0), 2 ** 0.25)  # coarse first, then finer around the best
SKIP_WORDS = ("SEED", "BUDGET", "EVAL", "LOG", "PRINT", "INTERVAL", "EVERY", "DEVICE", "VERBOSE")
# Constants worth trying first, by a word in their name: what usually matters most in a
# fixed time budget (optimizer step size, then how many steps fit, then model shape).
PRIORITY_WORDS = ("LR", "LEARNING_RATE", "BATCH", "WARMUP", "WARMDOWN", "DIM", "EMBD",
                  "WIDTH", "DEPTH", "LAYER", "HEAD", "DECAY", "BETA", "MLP", "RATIO")


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
        if number is None or value.lineno != value.end_lineno:
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
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
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
            new = max(grain, int(round(raw / grain)) * grain)
            if new == value:
                new = value + direction
        return new if new >= 1 and new != value else None
    if value == 0:
        return None
    if 0.5 <= value < 1:  # betas, momentum, ratios close to 1: step in (1 - x)
        gap = (1 - value) / factor if direction > 0 else (1 - value) * factor
        new = 1 - gap
        return round(new, 6) if 0 < new < 1 else None
    new = value * factor if direction > 0 else value / factor
    return float(f"{new:.3g}")


def _priority(name: str) -> int:
    for rank, word in enumerate(PRIORITY_WORDS):
        if word in name.split("_") or name.startswith(word) or name.endswith(word):
            return rank
    return len(PRIORITY_WORDS)


def _config_key(params: dict) -> tuple:
    return tuple(sorted(params.items()))


class TuneAgent:
    name = "tune"

    def propose(self, ctx: AgentContext) -> Proposal:
        constants = read_constants(ctx.source)
        tunable = {n: c for n, c in constants.items() if not any(w in n for w in SKIP_WORDS)}
        if not tunable:
            raise AgentExhausted(
                "the tune agent found no numeric UPPERCASE constants to tune in the editable file"
            )
        current = {n: c.value for n, c in constants.items()}
        tried = {_config_key(e.params) for e in ctx.history if e.params}
        tried.add(_config_key(current))
        for move in self._ranked_moves(ctx, tunable):
            name, direction, factor, why = move
            const = tunable[name]
            new = step(const.value, direction, factor)
            if new is None:
                continue
            params = dict(current, **{name: new})
            if _config_key(params) in tried:
                continue
            new_text = format_like(const.text, new)
            if new_text == const.text:
                continue
            verb = "Raising" if direction > 0 else "Lowering"
            return Proposal(
                description=f"{name} {const.text} -> {new_text}",
                hypothesis=f"{verb} {name} from {const.text} to {new_text}: {why}",
                source=rewrite_constant(ctx.source, const, new_text),
                params=params,
                move={"name": name, "old": const.value, "new": new,
                      "direction": direction, "factor": round(factor, 4)},
            )
        raise AgentExhausted(
            "the tune agent has tried every step it knows around the best configuration; "
            "edit train.py or program.md by hand, or use another agent"
        )

    def _ranked_moves(self, ctx: AgentContext, tunable: dict[str, Constant]):
        """Candidate (name, direction, factor, why) moves, best first."""
        metric = ctx.metric
        outcomes: dict[str, list] = {}  # name -> [(direction, factor, status, delta)]
        for e in ctx.history:
            if e.move and e.status and e.move.get("name") in tunable:
                outcomes.setdefault(e.move["name"], []).append(
                    (e.move["direction"], e.move.get("factor", 2.0), e.status, e.delta_best)
                )
        moves = []
        # 1. momentum: the most recent kept move, again.
        kept = [e for e in ctx.history if e.move and e.status == "keep"
                and e.move.get("name") in tunable]
        if kept:
            m = kept[-1].move
            gain = abs(kept[-1].delta_best or 0.0)
            moves.append((m["name"], m["direction"], m.get("factor", 2.0),
                          f"the last step this way improved {metric} by {gain:.4f}, "
                          "so the optimum likely lies further on"))
        # Steering notes that name a constant put it first among the rest.
        noted = [n for n in tunable if any(n in note for note in ctx.notes)]
        # 2. back-off: the last move of a constant hurt or crashed; try the other way.
        for name, history in outcomes.items():
            direction, factor, status, delta = history[-1]
            if status != "keep":
                gained = delta is not None and (delta < 0) == (ctx.direction == "lower")
                what = ("crashed" if status == "crash" else
                        f"gained only {abs(delta):.4f}, within the noise" if gained else
                        f"made {metric} worse by {abs(delta or 0):.4f}")
                moves.append((name, -direction, factor,
                              f"the step the other way {what}, so it may want to move this way"))
        # 3. exploration: constants not tuned yet, most promising first.
        fresh = sorted((n for n in tunable if n not in outcomes),
                       key=lambda n: (n not in noted, _priority(n)))
        for name in fresh:
            moves.append((name, +1, FACTORS[0], _why_explore(name, +1, ctx.time_budget)))
            moves.append((name, -1, FACTORS[0], _why_explore(name, -1, ctx.time_budget)))
        # 4. refinement: finer steps around the best value, both ways.
        for factor in FACTORS[1:]:
            for name in sorted(tunable, key=lambda n: (n not in noted, _priority(n))):
                for direction in (+1, -1):
                    moves.append((name, direction, factor,
                                  f"larger steps around the best value did not help; "
                                  f"a finer step (x{factor:.2f}) may"))
        if noted:  # a steered constant jumps ahead of everything but momentum
            head, rest = moves[:1] if kept else [], moves[1:] if kept else moves
            moves = head + [m for m in rest if m[0] in noted] + [m for m in rest if m[0] not in noted]
        return moves


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
        return "more regularisation may generalise better" if up else "less regularisation may fit faster"
    return "not tuned yet in this session"
