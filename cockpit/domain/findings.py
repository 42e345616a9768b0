"""What a check found, one line each: `cockpit doctor` prints them, the parts that know a
subject (the sandbox, the browser server, notifications) make them."""
from __future__ import annotations

from dataclasses import dataclass

OK, WARN, FIX = "ok", "warn", "FIX"  # FIX: the run cannot work until it is fixed


@dataclass(frozen=True)
class Finding:
    level: str  # OK, WARN or FIX
    what: str  # the subject, one word: "notify", "serve", ...
    text: str
