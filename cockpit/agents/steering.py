"""What the human's words say about the constants (and structural choices) of the editable file.

Steering notes and the reasons typed for rejected proposals are read the same way: each
clause names levers (a constant by its name, or in words: "the learning rate", "batch
size", "deeper") and says whether to leave them alone ("leave DEPTH alone", "not the
learning rate", "instead of the warmup") or to try them ("try the batch size instead"),
and maybe which way ("a smaller batch", "the learning rate is too high").

A reason that names no lever speaks of the rejected move itself: "leave it alone" avoids its
constant, "too big" turns its direction. Avoiding wins over trying when the two disagree
(notes carry no time, so the cautious reading wins), unless a note asks for the lever again
("try DEPTH again"), which also lets an idea the human rejected or an earlier session
measured be proposed once more.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# Words for levers, and the constants (by a word of their name) they mean.
LEVER_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("learning rates?|lrs?", ("LR", "LEARNING_RATE")),
    ("batch(?: sizes?)?|batches", ("BATCH",)),
    ("depth|layers?|deeper|shallower", ("DEPTH", "LAYER", "LAYERS")),
    ("width|wider|narrower|dim(?:ension)?s?|embedding size|hidden size", ("DIM", "WIDTH", "EMBD")),
    ("kv heads?|key/value heads?|grouped-query(?: attention)?|gqa", ("KV",)),
    ("heads?", ("HEAD", "HEADS")),
    ("activations?|nonlinearit(?:y|ies)", ("ACTIVATION",)),
    ("optimi[sz]ers?|muon", ("OPTIMIZER",)),
    ("soft-?caps?|logit caps?", ("SOFTCAP",)),
    ("qk[- ]?norms?", ("QK",)),
    ("tied|tying|untied|weight tying", ("TIE",)),
    ("bigrams?|token pairs?", ("BIGRAM",)),
    ("bf16|bfloat16|precision|autocast", ("BF16",)),
    ("warm-?ups?", ("WARMUP",)),
    ("warm-?downs?|cool-?downs?", ("WARMDOWN",)),
    ("weight decay|decay", ("DECAY",)),
    ("betas?|momentum", ("BETA",)),
    ("mlp", ("MLP",)),
    ("clip(?:ping)?", ("CLIP",)),
)
# Lever words that also say which way.
DIRECTED = {"deeper": +1, "shallower": -1, "wider": +1, "narrower": -1}
AVOID = re.compile(r"\b(not|no|don'?t|do not|never|stop|avoid|skip|without|leave|enough|alone|"
                   r"instead of|rather than|no more|forget)\b")
# Words after the levers that leave them alone: "leave DEPTH alone", "DEPTH is fine".
AVOID_AFTER = re.compile(r"\b(alone|enough|is done|are done|is fine|are fine)\b")
PREFER = re.compile(r"\b(try|tune|explore|focus|prefer|change|vary|play|look|use|go|more)\b")
AND = re.compile(r"\s*(and|or|nor|,)?\s*(the|a|an)?\s*")  # "DEPTH and the LR" share a verb
INSTEAD = re.compile(r"\s*(instead|too)\b(?! of)")
AGAIN = re.compile(r"\b(again|retry|re-try|once more|after all|anyway)\b")
UP = re.compile(r"\b(up|higher|larger|bigger|more|increase|raise|double|longer|deeper|wider)\b")
DOWN = re.compile(r"\b(down|lower|smaller|less|fewer|decrease|reduce|halve|shorter|"
                  r"shallower|narrower)\b")
TOO = re.compile(r"\btoo (high|large|big|much|long|deep|wide|low|small|little|short)\b")
TOO_UP = {"high", "large", "big", "much", "long", "deep", "wide"}
CLAUSES = re.compile(r"[.;:,!?\n]+|\bbut\b")


@dataclass
class Steering:
    """What the human asked, by constant name."""

    prefer: list[str] = field(default_factory=list)  # levers to try first, in the order asked
    avoid: set[str] = field(default_factory=set)  # levers to leave alone
    again: set[str] = field(default_factory=set)  # levers asked for once more
    direction: dict[str, int] = field(default_factory=dict)  # +1 up, -1 down

    def allows(self, name: str) -> bool:
        return name not in self.avoid

    def first_direction(self, name: str, default: int = +1) -> int:
        return self.direction.get(name, default)


def read_steering(notes: list[str], rejections: list[tuple[str, str, int]],
                  names: list[str]) -> Steering:
    """Steering over the constants `names` from the notes and from the rejections, given as
    (reason, the rejected move's constant, its direction)."""
    steering = Steering()
    asked_again: set[str] = set()
    for reason, rejected, direction in rejections:
        mentions = _mentions(reason, names)
        if mentions:
            _apply(steering, mentions)
            continue
        text = reason.lower()
        if AVOID_AFTER.search(text) or re.search(r"\b(stop|enough|don'?t touch|no more)\b", text):
            steering.avoid.add(rejected)
        if re.search(r"\b(other way|opposite)\b", text):
            steering.direction[rejected] = -direction
        elif _which_way(text):  # "too high": lower; "smaller": smaller than it was
            steering.direction[rejected] = _which_way(text)
    for note in notes:
        mentions = _mentions(note, names)
        _apply(steering, mentions)
        asked_again |= {name for name, _, again in mentions if again}
    steering.avoid -= asked_again
    steering.again = asked_again
    steering.prefer = [n for n in steering.prefer if n not in steering.avoid]
    return steering


def _apply(steering: Steering, mentions: list[tuple[str, tuple[bool, int], bool]]) -> None:
    for name, (avoid, which), _ in mentions:
        if avoid:
            steering.avoid.add(name)
        elif name not in steering.prefer:
            steering.prefer.append(name)
        if which and not avoid:
            steering.direction[name] = which


def _mentions(text: str, names: list[str]) -> list[tuple[str, tuple[bool, int], bool]]:
    """(constant, (avoid?, direction), asked again?) for each lever a text names, in order."""
    out: list[tuple[str, tuple[bool, int], bool]] = []
    for clause in CLAUSES.split(text.lower()):
        found = _levers(clause, names)  # (start, end, names, direction of the word)
        if not found:
            continue
        clause_avoid = bool(AVOID_AFTER.search(clause[found[-1][1]:]))
        again = bool(AGAIN.search(clause))
        previous_end, previous_avoid = 0, False
        for i, (start, end, matched, word_way) in enumerate(found):
            before = clause[previous_end:start]
            after = clause[end: found[i + 1][0] if i + 1 < len(found) else len(clause)]
            if AVOID.search(before):
                avoid = True
            elif PREFER.search(before):
                avoid = False
            elif i > 0 and AND.fullmatch(before):  # "leave DEPTH and the LR alone"
                avoid = previous_avoid
            else:  # no word of its own: "DEPTH is fine"
                avoid = clause_avoid
            if INSTEAD.match(after):  # "try the batch size instead"
                avoid = False
            which = word_way or _which_way(before) or _which_way(after)
            for name in matched:
                out.append((name, (avoid, which), again))
            previous_end, previous_avoid = end, avoid
    return out


def _levers(clause: str, names: list[str]) -> list[tuple[int, int, list[str], int]]:
    """Lever mentions in a clause: constant names as words, then lever words."""
    hits: list[tuple[int, int, list[str], int]] = []
    taken: list[tuple[int, int]] = []
    for name in sorted(names, key=len, reverse=True):
        for m in re.finditer(rf"(?<![a-z0-9_]){re.escape(name.lower())}(?![a-z0-9_])", clause):
            if not _overlaps(m.span(), taken):
                hits.append((m.start(), m.end(), [name], 0))
                taken.append(m.span())
    for pattern, words in LEVER_WORDS:
        matched = [n for n in names if _has_word(n, words)]
        if not matched:
            continue
        for m in re.finditer(rf"\b(?:{pattern})\b", clause):
            if not _overlaps(m.span(), taken):
                hits.append((m.start(), m.end(), matched, DIRECTED.get(m.group(0), 0)))
                taken.append(m.span())
    return sorted(hits)


def _has_word(name: str, words: tuple[str, ...]) -> bool:
    parts = name.split("_")
    return any(w in parts or name.startswith(w) or name.endswith(w) for w in words)


def _overlaps(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in taken)


def _which_way(text: str) -> int:
    too = _too(text)
    if too:
        return -1 if too in TOO_UP else +1
    up, down = bool(UP.search(text)), bool(DOWN.search(text))
    return +1 if up and not down else -1 if down and not up else 0


def _too(text: str) -> str | None:
    match = TOO.search(text)
    return match.group(1) if match else None
