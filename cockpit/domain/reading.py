"""Reading a journal's events back (from its file, or from the wire): a decoded line is
checked against its kind's declaration in domain.events (each field's type, the fields it
cannot lack) and what types cannot say (a status, a keep's commit, a noise's values), and
an event out of order (a second proposal #7, a result for a proposal never made) is
skipped. What is skipped is said: "line 12: a proposal event without n"."""
from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from typing import Any

from cockpit.domain.causes import CAUSES, STATUSES
from cockpit.domain.events import KINDS, Event

_NUMBER = (int, float)
MAX_TIME = 1e11  # seconds since 1970: an event's time lies before the year 5000
MAX_NUMBER = 1e15  # no figure cockpit records comes near (metrics are at most 1e12)
SHA = re.compile(r"[0-9a-f]{40}")


def _accepted(annotation: Any) -> tuple[type, ...]:
    """The Python types a field's annotation admits in a decoded record."""
    # a union admits each of its members; a list[str] or dict[str, Any] admits a list or dict
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    options = typing.get_args(annotation) if union else (annotation,)
    found: list[type] = []
    for option in options:
        origin = typing.get_origin(option) or option
        if option is type(None):
            found.append(type(None))
        elif origin is float:
            found += [int, float]
        elif isinstance(origin, type):
            found.append(origin)
    return tuple(found)


def _schema(cls: type[Event]) -> tuple[dict[str, tuple[type, ...]], set[str]]:
    hints = typing.get_type_hints(cls)
    types = {f.name: _accepted(hints[f.name]) for f in dataclasses.fields(cls)}
    required = {f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    return types, required


SCHEMAS = {kind: _schema(cls) for kind, cls in KINDS.items()}


def event_problem(record: Any) -> str:
    """Why a decoded journal line is not an event its readers can use ("" when it is)."""
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        return "not an event"
    kind = record["event"]
    if not isinstance(record.get("time", 0), _NUMBER) or isinstance(record.get("time"), bool) \
            or not 0 <= record.get("time", 0) < MAX_TIME:
        return f"a {kind} event whose time is {record.get('time')!r}"
    types, required = SCHEMAS.get(kind, ({}, set()))
    for name in sorted(required):
        if name not in record:
            return f"a {kind} event without {name}"
    for name, value in record.items():
        allowed = types.get(name)
        if allowed is None or not allowed:
            continue  # a field of another version: not read
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            return f"a {kind} event whose {name} is {type(value).__name__}"
        if isinstance(value, _NUMBER) and not isinstance(value, bool) \
                and not abs(value) <= MAX_NUMBER:  # NaN, infinite, or absurd
            return f"a {kind} event whose {name} is {value}"
    return _meaning_problem(kind, record)


def _meaning_problem(kind: str, record: dict[str, Any]) -> str:
    """What the types cannot say: numbers that count, a status, a keep's commit."""
    floors = {"n": 1, "k": 0 if kind.startswith(("prepare", "leftover")) else 1}
    for name, low in floors.items():  # re-runs count from 1; preparing the data is 0
        if isinstance(record.get(name), int) and not isinstance(record.get(name), bool) \
                and record[name] < low:
            return f"a {kind} event whose {name} is {record[name]}"
    params = record.get("params")
    if kind == "proposal" and isinstance(params, dict) and not all(
            isinstance(v, (int, float, str)) for v in params.values()):  # bools: choices
        return "a proposal event whose params are not constants"
    if kind == "result":
        status = record["status"]
        if status not in STATUSES:
            return f"a result whose status is {status!r}"
        if status == "keep" and record.get("metric") is None:
            return "a keep without a metric"  # the best: everything measures against it
        if status in ("keep", "discard") and record.get("metric") is not None \
                and not SHA.fullmatch(record.get("commit") or ""):
            return f"a {status} without its commit"  # the branch would stand on it
        if record.get("cause", "") not in ("", *CAUSES):
            return f"a result whose cause is {record['cause']!r}"
    if kind == "noise":
        values = record["values"]
        if len(values) < 2:
            return "a noise event with fewer than two values"
        if not all(isinstance(v, _NUMBER) and not isinstance(v, bool) and abs(v) <= MAX_NUMBER
                   for v in values):
            return "a noise event whose values are not numbers"
    if kind == "second_look":
        inner = event_problem({**record["result"], "event": "result"})
        if inner:
            return f"a second_look whose result is {inner}"
    return ""


def parse_lines(lines: list[bytes], damaged: list[str] | None = None) -> list[dict[str, Any]]:
    """The events among journal lines: a torn, hand-mangled or malformed line is skipped
    (and said in `damaged`: "line 12: a proposal event without n")."""
    events = []
    proposed: set[int] = set()
    judged: set[int] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:  # torn by a kill mid-write, or not JSON at all
            if damaged is not None:
                damaged.append(f"line {number}: not JSON (torn by a kill, or edited)")
            continue
        problem = event_problem(record) or _out_of_order(record, proposed, judged)
        if problem:
            if damaged is not None:
                damaged.append(f"line {number}: {problem}")
            continue
        events.append(record)
    return events


def _out_of_order(record: dict[str, Any], proposed: set[int], judged: set[int]) -> str:
    """Why an event cannot be where it is: an experiment is proposed once, then judged once."""
    kind, n = record["event"], record.get("n")
    if kind == "proposal":
        if n in proposed:
            return f"a second proposal #{n}"
        proposed.add(record["n"])  # the n a proposal cannot lack (checked before)
    elif kind == "result":
        if n not in proposed:
            return f"a result for #{n}, which was never proposed"
        if n in judged:
            return f"a second result for #{n}"
        judged.add(n)
    return ""
