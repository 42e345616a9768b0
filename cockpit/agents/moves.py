"""The literals of the editable file the tune agent may move, and how each one moves.

A literal is a top-level `NAME = <literal>` on one line. Two kinds move:
  - numbers (int or float, not bool): stepped up or down by a factor (`step`);
  - choices: a bool (True | False), or a literal whose comment names its alternatives
    (`ACTIVATION = "relu2"  # MLP nonlinearity: relu2 | gelu | swiglu`): set to another
    alternative. "divides N_HEADS" in the comment keeps an int choice a divisor of
    N_HEADS: a configuration where it is not is never proposed, and when N_HEADS moves, a
    divisor equal to it follows it (or drops to the largest alternative that divides it).
A string without alternatives is not a move; every other byte of the file stays as it is.
"""
from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

DIVIDES = re.compile(r"\b(?:divides|a divisor of) ([A-Z][A-Z0-9_]*)")


@dataclass
class Constant:
    name: str
    value: Any  # int | float | str | bool
    text: str  # the literal as written
    lineno: int  # 1-based
    start: int  # byte offsets of the literal in its line
    end: int
    alternatives: tuple[Any, ...] = ()  # the values a choice may take; () for a number
    divides: str = ""  # the constant this one must divide, if its comment says so

    @property
    def is_choice(self) -> bool:
        return bool(self.alternatives)


class Step(NamedTuple):
    """One move of one literal: a number up (+1) or down (-1) by `factor`, or a choice
    (direction 0) set to `to`."""

    name: str
    direction: int
    factor: float = 0.0
    to: Any = None

    @property
    def key(self) -> tuple[str, Any]:
        return move_key(self.name, self.direction, self.to)


def move_key(name: str, direction: int, to: Any = None) -> tuple[str, Any]:
    """What "this move" means in the ledger: a constant and its direction, or a choice and
    the alternative it was set to."""
    return (name, direction) if direction else (name, ("=", to))


def read_literals(source: str) -> dict[str, Constant]:
    """Every movable top-level literal, numbers and choices, in file order."""
    literals: dict[str, Constant] = {}
    lines = source.splitlines()
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, value = node.targets[0], node.value
        if not (isinstance(target, ast.Name) and target.id.isupper()):
            continue
        literal = _literal(value)
        if literal is None or value.lineno != value.end_lineno or value.end_col_offset is None:
            continue
        line = lines[value.lineno - 1].encode()
        text = line[value.col_offset: value.end_col_offset].decode()
        comment = line[value.end_col_offset:].decode().partition("#")[2]
        const = Constant(target.id, literal, text, value.lineno, value.col_offset,
                         value.end_col_offset, _alternatives(literal, comment))
        divides = DIVIDES.search(comment)
        const.divides = divides.group(1) if divides and const.is_choice else ""
        if isinstance(literal, str) and not const.is_choice:
            continue  # a name, a path: not a move
        literals[target.id] = const
    return literals


def read_constants(source: str) -> dict[str, Constant]:
    """The numbers among the literals (int or float, no alternatives named)."""
    return {n: c for n, c in read_literals(source).items() if not c.is_choice}


def read_choices(source: str) -> dict[str, Constant]:
    """The choices among the literals: bools, and literals whose comment names alternatives."""
    return {n: c for n, c in read_literals(source).items() if c.is_choice}


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _literal(node.operand)
        number = isinstance(inner, (int, float)) and not isinstance(inner, bool)
        return -inner if number else None
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
        return node.value
    return None


def _alternatives(value: Any, comment: str) -> tuple[Any, ...]:
    """The alternatives a comment names (`... : a | b | c`), as values of the literal's
    type; a bool's are always True and False."""
    if isinstance(value, bool):
        return (True, False)
    parts = comment.split("|")
    if len(parts) < 2:
        return ()
    words = [parts[0].split()[-1] if parts[0].split() else ""]
    words += [p.split()[0] if p.split() else "" for p in parts[1:]]
    found = [_as_type(value, w.strip("`'\"()[],;.")) for w in words]
    alternatives = tuple(dict.fromkeys(a for a in found if a is not None))
    return alternatives if len(alternatives) >= 2 else ()


def _as_type(value: Any, word: str) -> Any:
    if not word:
        return None
    if isinstance(value, str):
        return word
    try:
        return int(word) if isinstance(value, int) else float(word)
    except ValueError:
        return None


def literal_text(const: Constant, value: Any) -> str:
    """A new value written the way the constant's literal is written."""
    if isinstance(value, str):
        quote = const.text[0] if const.text[:1] in ("'", '"') else '"'
        return f"{quote}{value}{quote}"
    if isinstance(value, bool):
        return str(value)
    return format_like(const.text, value)


def rewrite_constant(source: str, const: Constant, new_text: str) -> str:
    """The source with one literal replaced; every other byte unchanged."""
    lines = source.splitlines(keepends=True)
    line = lines[const.lineno - 1].encode()
    lines[const.lineno - 1] = (line[: const.start] + new_text.encode() + line[const.end:]).decode()
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


def follow_divisors(params: dict[str, Any], before: dict[str, Any],
                    literals: dict[str, Constant], moved: set[str]) -> dict[str, Any] | None:
    """`params` with every divisor choice made valid again after a move (see the module's
    docstring), or None when one cannot be; a choice the move itself set is not touched."""
    out = dict(params)
    for const in literals.values():
        name, whole = const.name, const.divides
        if not whole:
            continue
        value, total = out.get(name), out.get(whole)
        if not (isinstance(value, int) and isinstance(total, int)) or value <= 0 or total <= 0:
            return None
        if name in moved:
            if total % value:
                return None  # the move set it to what does not divide
            continue
        fits = [a for a in const.alternatives if isinstance(a, int) and a > 0 and total % a == 0]
        if value == before.get(whole) and total in fits:
            out[name] = total  # it was equal to its whole: it stays equal
        elif total % value:
            if not fits:
                return None
            out[name] = max(fits)
    return out
