"""Diffs of the editable file: a unified diff, and how many lines a change adds."""
from __future__ import annotations

import difflib
import re

# A line that only sets a seed to a number: an assignment or a seeding call.
SEED_LINE = re.compile(r"^\s*(\w*seed\s*=\s*-?\d+|[\w.]*seed\(\s*-?\d+\s*\))\s*(#.*)?$",
                       re.IGNORECASE)


def unified_diff(old: str, new: str, name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True),
                                        fromfile=f"a/{name}", tofile=f"b/{name}"))

def lines_delta(diff: str) -> int:
    """Lines a unified diff adds minus the lines it removes."""
    lines = diff.splitlines()
    added = sum(line.startswith("+") and not line.startswith("+++") for line in lines)
    removed = sum(line.startswith("-") and not line.startswith("---") for line in lines)
    return added - removed


def seed_only(diff: str) -> bool:
    """Whether every line a unified diff changes sets a seed (`SEED = 7`, `data_seed = 3`,
    `torch.manual_seed(7)`): a change of the seed alone, which moves the result by noise,
    never by an idea. `SEED_WARMUP = 100` is not a seed."""
    changed = [line[1:] for line in diff.splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    changed = [line for line in changed if line.strip()]
    return bool(changed) and all(SEED_LINE.match(line) for line in changed)
