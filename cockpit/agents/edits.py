"""The edit protocol: parse an agent's answer, apply its edits, validate the result.

An answer carries a hypothesis, a one-line description and either search/replace blocks

    train.py
    <<<<<<< SEARCH
    LEARNING_RATE = 0.01
    =======
    LEARNING_RATE = 0.02
    >>>>>>> REPLACE

or, as the fallback, the whole new file in one fenced code block. Anything wrong raises
EditRefused with the exact problem, phrased so it can be sent back to the model as is.
Nothing here touches the disk: the caller writes a source only after it passed.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

SEARCH = re.compile(r"^\s*<{5,9} ?SEARCH\b.*$")
DIVIDER = re.compile(r"^\s*={5,9}\s*$")
REPLACE = re.compile(r"^\s*>{5,9} ?REPLACE\b.*$")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
FIELD = re.compile(r"^\W*(HYPOTHESIS|DESCRIPTION)\W*:[\s*_]*(.*?)[\s*_]*$", re.IGNORECASE)
WHOLE_FILE_MIN_RATIO = 0.5  # a code block much shorter than the file is a snippet, not the file
DESCRIPTION_LIMIT = 120


class EditRefused(Exception):
    """The answer cannot become a proposal; the message says exactly why."""


@dataclass
class Edit:
    path: str
    search: str
    replace: str


@dataclass
class Answer:
    hypothesis: str = ""
    description: str = ""
    edits: list[Edit] = field(default_factory=list)
    whole_file: str | None = None


def parse_answer(text: str, editable: str) -> Answer:
    """Split an answer into its fields and its edits (blocks first, a whole file if none)."""
    answer = Answer()
    lines = text.splitlines()
    for line in lines:
        match = FIELD.match(line)
        if match and not getattr(answer, match.group(1).lower()):
            setattr(answer, match.group(1).lower(), match.group(2).strip())
    answer.edits = _parse_blocks(lines, editable)
    if not answer.edits:
        answer.whole_file = _largest_code_block(lines)
    if not answer.edits and answer.whole_file is None:
        raise EditRefused(
            "found no SEARCH/REPLACE blocks and no whole file in a ```python block: "
            f"answer with HYPOTHESIS:, DESCRIPTION: and search/replace blocks for {editable}")
    return answer


def _parse_blocks(lines: list[str], editable: str) -> list[Edit]:
    edits: list[Edit] = []
    i = 0
    while i < len(lines):
        if not SEARCH.match(lines[i]):
            i += 1
            continue
        path = _path_before(lines, i) or editable
        start = i + 1
        divider = next((j for j in range(start, len(lines)) if DIVIDER.match(lines[j])), None)
        if divider is None:
            raise EditRefused(f"search/replace block {len(edits) + 1} has no ======= line")
        end = next((j for j in range(divider + 1, len(lines)) if REPLACE.match(lines[j])), None)
        if end is None:
            raise EditRefused(f"search/replace block {len(edits) + 1} has no >>>>>>> REPLACE line")
        search = "\n".join(lines[start:divider])
        replace = "\n".join(lines[divider + 1:end])
        edits.append(Edit(path, search + "\n" if search else "", replace + "\n" if replace else ""))
        i = end + 1
    return edits


def _path_before(lines: list[str], index: int) -> str | None:
    """The file name a block names on the line before it (fences and markup skipped)."""
    for j in range(index - 1, max(-1, index - 3), -1):
        line = lines[j].strip()
        if not line or FENCE.match(line):
            continue
        name = line.strip("`*#: ").split()[-1] if line.strip("`*#: ") else ""
        return name if re.fullmatch(r"[\w./-]+\.\w+", name) else None
    return None


def _largest_code_block(lines: list[str]) -> str | None:
    blocks: list[str] = []
    current: list[str] | None = None
    fence = ""
    for line in lines:
        match = FENCE.match(line)
        if current is None and match:
            current, fence = [], match.group(1)
        elif current is not None and line.strip() == fence[0] * len(fence):
            blocks.append("\n".join(current) + "\n")
            current = None
        elif current is not None:
            current.append(line)
    return max(blocks, key=len) if blocks else None


def apply_answer(answer: Answer, source: str, editable: str) -> str:
    """The editable file after the answer's edits, validated; raises EditRefused."""
    others = sorted({e.path for e in answer.edits if not _same_file(e.path, editable)})
    if others:
        raise EditRefused(f"the edits touch {', '.join(others)}; only {editable} may change "
                          "(the other files are fixed): edit only " + editable)
    if answer.edits:
        new = source
        for number, edit in enumerate(answer.edits, 1):
            new = apply_edit(new, edit, number)
    else:
        new = answer.whole_file or ""
        if len(new.splitlines()) < WHOLE_FILE_MIN_RATIO * len(source.splitlines()):
            raise EditRefused(
                f"the code block has {len(new.splitlines())} lines but {editable} has "
                f"{len(source.splitlines())}: send search/replace blocks, or the whole file")
    validate_source(new, source, editable)
    return new


def _same_file(path: str, editable: str) -> bool:
    return path.lstrip("./") == editable.lstrip("./") or path.endswith("/" + editable)


def apply_edit(source: str, edit: Edit, number: int = 1) -> str:
    """Replace the edit's search text: exactly if it is there, else whitespace-tolerantly."""
    if not edit.search.strip():
        raise EditRefused(f"block {number}: the SEARCH part is empty; copy the lines to change "
                          "from the file")
    count = source.count(edit.search)
    if count == 1:
        return source.replace(edit.search, edit.replace, 1)
    if count > 1:
        raise EditRefused(f"block {number}: the SEARCH text occurs {count} times; include more "
                          "surrounding lines so it matches exactly one place")
    for loose in (str.rstrip, str.strip):
        result = _apply_loose(source, edit, loose, number)
        if result is not None:
            return result
    first = next((line for line in edit.search.splitlines() if line.strip()), "")
    raise EditRefused(f"block {number}: the SEARCH text is not in the file (first line: "
                      f"{first.strip()[:80]!r}); copy the lines exactly as they are now")


def _apply_loose(source: str, edit: Edit, norm, number: int) -> str | None:
    """Match line by line after `norm` (trailing, then all surrounding whitespace), and
    re-indent the replacement by the indentation the file actually has there."""
    lines = source.splitlines(keepends=True)
    search = _trim_blank_ends(edit.search.splitlines())
    want = [norm(line) for line in search]
    have = [norm(line.rstrip("\r\n")) for line in lines]
    hits = [i for i in range(len(lines) - len(want) + 1) if have[i:i + len(want)] == want]
    if not hits:
        return None
    if len(hits) > 1:
        raise EditRefused(f"block {number}: the SEARCH text matches {len(hits)} places (ignoring "
                          "whitespace); include more surrounding lines")
    at = hits[0]
    shift = _indent_shift(search, lines[at:at + len(want)])
    replace = [_reindent(line, shift) + "\n" for line in edit.replace.splitlines()]
    return "".join(lines[:at] + replace + lines[at + len(want):])


def _trim_blank_ends(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _indent_shift(search: list[str], found: list[str]) -> tuple[str, str]:
    """(indent the model wrote, indent the file has) on the first non-blank line."""
    for want, got in zip(search, found):
        if want.strip():
            return _indent(want), _indent(got.rstrip("\r\n"))
    return "", ""


def _reindent(line: str, shift: tuple[str, str]) -> str:
    written, actual = shift
    if written == actual or not line.strip():
        return line.rstrip()
    if line.startswith(written):
        return actual + line[len(written):].rstrip()
    return line.rstrip()


def validate_source(new: str, old: str, editable: str) -> None:
    """A change that is real and, for Python, parses; raises EditRefused otherwise."""
    if new == old:
        raise EditRefused(f"the edits leave {editable} unchanged; propose an actual change")
    if not new.strip():
        raise EditRefused(f"the edits leave {editable} empty")
    if editable.endswith(".py"):
        try:
            ast.parse(new, filename=editable)
        except SyntaxError as exc:
            line = (exc.text or "").strip()
            where = f"line {exc.lineno}" + (f" ({line[:80]!r})" if line else "")
            raise EditRefused(f"{editable} would not parse: {exc.msg} at {where}") from None


def one_line(text: str, limit: int = DESCRIPTION_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def describe(answer: Answer) -> tuple[str, str]:
    """(description, hypothesis), each falling back on the other; refused if both lack."""
    description = one_line(answer.description or answer.hypothesis.split(". ")[0])
    if not description:
        raise EditRefused("the answer has no DESCRIPTION: line; add a one-line description "
                          "of the change")
    return description, answer.hypothesis or description
