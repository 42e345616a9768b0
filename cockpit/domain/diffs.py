"""Diffs of the editable file: a unified diff, how many lines a change adds, what it
changes in one line of words, and where its first change is."""
from __future__ import annotations

import difflib
import re

DESCRIPTION_CHARS = 120  # a description made from a diff is cut to this length
EDITED_MARK = "(edited by the human)"  # ends the description of a change a human edited
# A top-level assignment (`EMBEDDING_LR = 2e-2  # why`): its name and its value's text.
ASSIGNMENT = re.compile(r"^([A-Za-z_]\w*)\s*=(?!=)\s*([^#]*?)\s*(#.*)?$")
HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")

# A line that only sets a seed to a number: an assignment or a seeding call.
SEED_LINE = re.compile(r"^\s*(\w*seed\s*=\s*-?\d+|[\w.]*seed\(\s*-?\d+\s*\))\s*(#.*)?$",
                       re.IGNORECASE)


def unified_diff(old: str, new: str, name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True),
                                        fromfile=f"a/{name}", tofile=f"b/{name}"))


def describe_diff(diff: str) -> str:
    """What a unified diff changes, in one line: `NAME old -> new` for each top-level
    assignment it sets anew (the words the tune agent uses) and how many other lines it
    changes; without such an assignment, its first new line."""
    removed, added = _changed_lines(diff)
    before, after = _assignments(removed), _assignments(added)
    parts = [f"{name} {before[name]} -> {value}" if name in before else f"{name} = {value}"
             for name, value in after.items() if before.get(name) != value]
    parts += [f"{name} removed" for name in before if name not in after]
    others = max(_plain(removed), _plain(added))  # a line replaced counts once
    if parts:
        return _cut(", ".join(parts) + _more(others))
    first = next((line.strip() for line in added if line.strip()), "")
    return _cut(f"edit: {first}{_more(others - 1)}" if first else "edit: lines removed")


def edited_description(diff: str) -> str:
    """The description of a proposal as a human edited it: what its diff changes now."""
    return _cut(describe_diff(diff), DESCRIPTION_CHARS - len(EDITED_MARK) - 1) + " " + \
        EDITED_MARK


def first_changed_line(diff: str) -> int:
    """The first line (0-based) of the new file that a unified diff changes (where a
    removal was, for a removal); 0 for a diff without hunks."""
    line = None
    for text in diff.splitlines():
        hunk = HUNK.match(text)
        if hunk is not None:
            line = int(hunk.group(1))
            continue
        if line is None or text.startswith(("+++", "---")):
            continue
        if text[:1] in "+-":
            return max(0, line - 1)
        line += 1
    return 0


def _changed_lines(diff: str) -> tuple[list[str], list[str]]:
    """(removed, added): the lines a unified diff takes out and puts in, without +/-."""
    removed, added = [], []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            continue
        if line[:1] == "-":
            removed.append(line[1:])
        elif line[:1] == "+":
            added.append(line[1:])
    return removed, added


def _assignments(lines: list[str]) -> dict[str, str]:
    """name -> value text of the top-level assignments among lines (the first of each)."""
    found: dict[str, str] = {}
    for line in lines:
        match = ASSIGNMENT.match(line)
        if match is not None:
            found.setdefault(match.group(1), match.group(2))
    return found


def _plain(lines: list[str]) -> int:
    """How many of lines are neither blank nor a top-level assignment."""
    return sum(bool(line.strip()) and ASSIGNMENT.match(line) is None for line in lines)


def _more(lines: int) -> str:
    return f" (+{lines} other line{'s' * (lines != 1)})" if lines > 0 else ""


def _cut(text: str, limit: int = DESCRIPTION_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


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


def edit_key(diff: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """What a diff changes, whatever file it changes: the lines it takes out and puts in,
    sorted, without their indentation or trailing blanks. Two experiments with one key made
    the same edit (on the same best or on another); None for a diff that changes nothing."""
    removed, added = _changed_lines(diff)
    removed = sorted(line.strip() for line in removed if line.strip())
    added = sorted(line.strip() for line in added if line.strip())
    return (tuple(removed), tuple(added)) if removed or added else None


def settings_changed(diff: str) -> dict[str, tuple[str, str]]:
    """name -> (old, new) of each top-level setting a diff changes (`LR = 0.01` -> `0.02`)."""
    removed, added = _changed_lines(diff)
    before, after = _assignments(removed), _assignments(added)
    return {name: (before.get(name, ""), value) for name, value in after.items()
            if before.get(name) != value}
