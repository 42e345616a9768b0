"""The journal's events: what each kind must hold for its readers, and the decoding of
journal lines into events. A torn, hand-mangled or malformed line is skipped and said;
nothing here reads a file."""
from __future__ import annotations

import json
import re


def parse_lines(lines: list[bytes], damaged: list[str] | None = None) -> list[dict]:
    """The events among journal lines: a torn, hand-mangled or malformed line is skipped
    (and said in `damaged`: "line 12: a proposal without n")."""
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

def _out_of_order(record: dict, proposed: set[int], judged: set[int]) -> str:
    """Why an event cannot be where it is: an experiment is proposed once, then judged once."""
    kind, n = record["event"], record.get("n")
    if kind == "proposal":
        if n in proposed:
            return f"a second proposal #{n}"
        proposed.add(n)
    elif kind == "result":
        if n not in proposed:
            return f"a result for #{n}, which was never proposed"
        if n in judged:
            return f"a second result for #{n}"
        judged.add(n)
    return ""

# -- what an event must hold ---------------------------------------------------------------
# The readers of the journal (the fold below, the coordinator's recovery, the clients, the
# reports) index these fields and compute with them: an event that lacks one, or holds one
# of another type, is not an event of that kind (a damaged or hostile line).
_NUMBER = (int, float)

_MAYBE = type(None)

REQUIRED: dict[str, dict[str, tuple]] = {
    "session": {"tag": (str,), "branch": (str,), "base": (str,)},
    "proposal": {"n": (int,)},
    "commit": {"n": (int,), "commit": (str,)},
    "run_start": {"n": (int,), "commit": (str,), "log": (str,)},
    "run_pid": {"n": (int,), "pid": (int,)},
    "result": {"n": (int,), "status": (str,)},
    "second_look": {"n": (int,), "result": (dict,)},
    "flagged": {"n": (int,)},
    "row": {"n": (int,)},
    "early_stop": {"n": (int,)},
    "measure_start": {"k": (int,), "commit": (str,)},
    "measure_pid": {"k": (int,), "pid": (int,)},
    "measure": {"commit": (str,)},
    "prepare_pid": {"pid": (int,)},
    "noise": {"commit": (str,), "values": (list,)},
    "note": {"text": (str,)},
    "workers": {"workers": (int,)},
    "tampered": {"keys": (list,)},
    "fixed_changed": {"files": (list,)},
    "locks_cleared": {"paths": (list,)},
}

# Fields that may be absent, but are of this type when present (whatever the event).
TYPED: dict[str, tuple] = {
    "time": _NUMBER, "n": (int, _MAYBE), "k": (int, _MAYBE), "pid": (int,), "worker": (int,),
    "id": (int,), "commit": (str, _MAYBE), "metric": (*_NUMBER, _MAYBE),
    "memory_gb": _NUMBER, "seconds": _NUMBER, "delta_best": (*_NUMBER, _MAYBE),
    "delta_baseline": (*_NUMBER, _MAYBE), "confidence": (*_NUMBER, _MAYBE),
    "threshold": (*_NUMBER, _MAYBE), "bar": (*_NUMBER, _MAYBE), "bar_runs": (int,),
    "runs": (int,), "cost_usd": (*_NUMBER, _MAYBE), "description": (str,),
    "hypothesis": (str,), "diff": (str,), "reason": (str,), "verdict": (str,),
    "why": (str,), "text": (str,), "purpose": (str,), "log": (str, _MAYBE),
    "run_id": (str, _MAYBE), "base": (str,), "source_blob": (str,), "source_sha": (str,),
    "params": (dict,), "move": (dict, _MAYBE), "summary": (dict,), "config": (dict,),
    "early_stop": (dict, _MAYBE), "repair_of": (int, _MAYBE),
    "data_fingerprint": (str, _MAYBE), "status": (str,), "values": (list,), "made": (str,),
    "std": _NUMBER, "mad": _NUMBER, "spread": _NUMBER, "code": (int,),
}

# Where a kind of event uses a name in a sense of its own.
KIND_TYPED: dict[str, dict[str, tuple]] = {
    "session": {"metric": (str,), "direction": (str,)},
}

STATUSES = ("keep", "discard", "crash", "rejected")
SHA = re.compile(r"[0-9a-f]{40}")

MAX_TIME = 1e11  # seconds since 1970: an event's time lies before the year 5000

MAX_NUMBER = 1e15  # no figure cockpit records comes near (metrics are at most 1e12)

def event_problem(record) -> str:
    """Why a decoded journal line is not an event its readers can use ("" when it is)."""
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        return "not an event"
    kind = record["event"]
    for name, types in REQUIRED.get(kind, {}).items():
        if name not in record:
            return f"a {kind} event without {name}"
    for name, value in record.items():
        types = REQUIRED.get(kind, {}).get(name) or KIND_TYPED.get(kind, {}).get(name) \
            or TYPED.get(name)
        if types is None or kind == "early_stop" and name != "n":
            continue  # early_stop's own fields are the decision's
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            return f"a {kind} event whose {name} is {type(value).__name__}"
        if isinstance(value, _NUMBER) and not isinstance(value, bool) \
                and not abs(value) <= MAX_NUMBER:  # NaN, infinite, or absurd
            return f"a {kind} event whose {name} is {value}"
    for name in ("n", "k"):
        if isinstance(record.get(name), int) and record[name] < 1:
            return f"a {kind} event whose {name} is {record[name]}"
    params = record.get("params")
    if isinstance(params, dict) and not all(
            isinstance(v, (int, float, str)) and not isinstance(v, bool)
            for v in params.values()):
        return f"a {kind} event whose params are not constants"
    if not 0 <= record.get("time", 0) < MAX_TIME:
        return f"a {kind} event whose time is {record['time']}"
    if kind == "result" and record["status"] not in STATUSES:
        return f"a result whose status is {record['status']!r}"
    if kind == "result" and record["status"] == "keep" and record.get("metric") is None:
        return "a keep without a metric"  # the best: everything measures against it
    if kind == "result" and record["status"] in ("keep", "discard") \
            and record.get("metric") is not None and not SHA.fullmatch(record.get("commit") or ""):
        return f"a {record['status']} without its commit"  # the branch would stand on it
    if kind == "noise" and len(record["values"]) < 2:
        return "a noise event with fewer than two values"
    if kind == "noise" and not all(isinstance(v, _NUMBER) and not isinstance(v, bool)
                                   and abs(v) <= MAX_NUMBER for v in record["values"]):
        return "a noise event whose values are not numbers"
    if kind == "second_look":
        inner = event_problem({**record["result"], "event": "result"})
        if inner:
            return f"a second_look whose result is {inner}"
    return ""
