"""The tune agent's candidate moves, phase by phase, each with the reason it is worth a run.

Every phase is built afresh from the current best, so a move measured on an earlier best is
a new configuration once the best has moved; the ledger decides what may still run.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from cockpit.agents.base import AgentContext
from cockpit.agents.ledger import Ledger, Outcome
from cockpit.agents.moves import Constant, Step, read_literals
from cockpit.agents.steering import Steering

FACTORS = (2.0, math.sqrt(2.0), 2 ** 0.25)  # coarse first, then finer around the best
FINEST = 2 ** 0.125  # once everything coarser is measured around a best that stays put
# Constants worth trying first, by a word in their name: what usually matters most in a
# fixed time budget (optimizer step size, then the model's size against the tokens it can
# see in the budget, then how many steps fit, then the schedule).
PRIORITY_WORDS = ("LR", "LEARNING_RATE", "DEPTH", "LAYER", "DIM", "EMBD", "WIDTH", "BATCH",
                  "ACCUM", "WARMUP", "WARMDOWN", "HEAD", "DECAY", "BETA", "MLP", "RATIO")
# Structural choices: after the learning rates and the depth (every 60-minute session kept
# DEPTH 4 -> 2 -> 1; tried after nine choices, it landed in the second quarter of the hour).
CHOICE_RANK = 3.5
# Among the choices, by a word in their name: precision first (cheaper steps help whatever
# comes after: bf16 ran 1.2x the steps on a 2-core CPU), then the bigram lookup (-5% at a
# 60 s budget there); the optimizer usually moves a fixed-budget result most of the rest,
# then the nonlinearity and the head's parameters; the rest in file order.
CHOICE_WORDS = ("BF16", "BIGRAM", "OPTIMIZER", "ACTIVATION", "TIE", "NORM")
PAIRED_FIRST = 4  # near-misses whose pairs (6) come before each is tried alone again
TRIPLED = 6  # the strongest near-misses whose triples are tried
# A choice measured less than this many noise stds behind its best is level with it, and
# may be measured again on a later best (see restructured): a 60-minute session measured
# muon 0.3 stds behind on a lower learning rate, and never again.
LEVEL = -1.0
WITH_STRUCTURE = 4  # the best numeric moves tried together with each structural choice
# The model's size, roughly layers x width^2, from the whole numbers named so: a word of
# the name and its power. A head's width is not the model's, an MLP's counts once, and
# where the width is DEPTH x ASPECT_RATIO (the reference's train.py) the depth thrice.
SIZE_WORDS = {"DEPTH": 1, "LAYER": 1, "LAYERS": 1, "BLOCKS": 1, "DIM": 2, "EMBD": 2,
              "EMBED": 2, "WIDTH": 2, "MODEL": 2, "ASPECT": 2}
LINEAR_WORDS = {"MLP", "FFN", "FF", "HIDDEN"}
# A model this many times smaller or larger is another model to a choice, and every choice
# measured on the other one comes back once, the ones clearly behind too: a 60-minute
# session measured untied embeddings clearly behind on DEPTH 4, level on 2, ahead on 1.
RESIZED = 4.0


@dataclass(frozen=True)
class Candidate:
    steps: tuple[Step, ...]  # one step, or several for a combination
    why: str


@dataclass
class Known:
    """What every phase reads."""

    ctx: AgentContext
    tunable: dict[str, Constant]  # numbers and choices the agent may move
    ledger: Ledger
    steering: Steering

    def current(self) -> dict[str, Any]:
        """The movable literals' values in the best this proposal builds on."""
        return {n: c.value for n, c in self.tunable.items()}

    def numbers(self) -> list[str]:
        return [n for n in self.order() if not self.tunable[n].is_choice]

    def order(self) -> list[str]:
        """Constants whose moves helped in earlier sessions first (the larger gain first),
        then near-misses there, then untried ones by priority, then ones that only hurt."""
        def rank(name: str) -> tuple[int, float, float]:
            seen = [o for o in self.ledger.prior if o.name == name]
            helped = [o.gain or 0.0 for o in seen if o.helped]
            near = [o.gain or 0.0 for o in seen if o.near_miss]
            group = 0 if helped else 1 if near else 3 if seen else 2
            return group, -max(helped or near or [0.0]), self.priority(name)
        return sorted(self.tunable, key=rank)

    def priority(self, name: str) -> float:
        if self.tunable[name].is_choice:
            words = name.split("_")
            rank = next((i for i, w in enumerate(CHOICE_WORDS) if w in words), len(CHOICE_WORDS))
            return CHOICE_RANK + rank / 100
        for rank, word in enumerate(PRIORITY_WORDS):
            if word in name.split("_") or name.startswith(word) or name.endswith(word):
                return rank
        return len(PRIORITY_WORDS)

    def directions(self, name: str) -> list[int]:
        """Which way first: as the human said, else as an earlier session found best."""
        gains = [o for o in self.ledger.prior if o.name == name and (o.helped or o.near_miss)]
        default = max(gains, key=lambda o: o.gain or 0.0).direction if gains else +1
        first = self.steering.first_direction(name, default) or default
        return [first, -first]

    def alternatives(self, name: str) -> list[Any]:
        const = self.tunable[name]
        return [a for a in const.alternatives if a != const.value]

    def standing(self, keep: Callable[[Outcome], bool]) -> list[Outcome]:
        """This session's latest outcome of each move that `keep` accepts, on a constant
        still at the value it moved from, the largest gain first."""
        latest: dict[tuple[str, Any], Outcome] = {}
        for o in self.ledger.outcomes:
            const = self.tunable.get(o.name)
            if const is not None and const.value == o.old and keep(o):
                latest[o.key] = o
        return sorted(latest.values(), key=lambda o: -(o.gain or 0.0))


def as_step(o: Outcome) -> Step:
    return Step(o.name, o.direction, o.factor, o.new if o.direction == 0 else None)


def momentum(k: Known) -> list[Candidate]:
    """The last kept step once more, from the current best; on a later best again only
    while that step, each time it was taken since, came out level or better (one clearly
    behind or stopped early stays so on a new line that differs in another number)."""
    outcomes = k.ledger.outcomes
    kept = [i for i, o in enumerate(outcomes) if o.helped and o.direction and o.name in k.tunable]
    if not kept:
        return []
    last = outcomes[kept[-1]]
    if any(o.key == last.key and not close(o) for o in outcomes[kept[-1] + 1:]):
        return []
    return [Candidate((as_step(last),), f"the last step this way {last.effect(k.ctx.metric)}, "
                      "so the optimum likely lies further on")]


def structure(k: Known, config: dict[str, Any], leave: str = "") -> dict[str, Any]:
    """The structural choices of a configuration (but `leave`): what a choice's effect
    depends on. A divisor that follows another constant (N_KV_HEADS) is not one."""
    return {n: config.get(n) for n, c in k.tunable.items()
            if c.is_choice and not c.divides and n != leave}


def sized(k: Known) -> dict[str, int]:
    """The whole numbers that set the model's size, each with its power in it."""
    words = {n: set(n.split("_")) for n in k.tunable}
    aspect = any("ASPECT" in w for w in words.values())
    out = {}
    for name, const in k.tunable.items():
        power = max(SIZE_WORDS.get(w, 0) for w in words[name])
        if not power or const.is_choice or type(const.value) is not int \
                or words[name] & {"HEAD", "HEADS"}:
            continue
        if words[name] & LINEAR_WORDS:
            power = 1
        elif aspect and power == 1:
            power = 3
        out[name] = power
    return out


def resized(k: Known, config: dict[str, Any], current: dict[str, Any]) -> str:
    """How the current model's size differs from `config`'s, in words, when by RESIZED
    or more ("" otherwise, or where neither says)."""
    ratio, known = 1.0, False
    for name, power in sized(k).items():
        old, new = config.get(name), current.get(name)
        if type(old) is int and type(new) is int and old > 0 and new > 0:
            ratio, known = ratio * (new / old) ** power, True
    if not known or 1 / RESIZED < ratio < RESIZED:
        return ""
    return f"{ratio:.3g}x the size" if ratio > 1 else f"1/{1 / ratio:.3g} the size"


def restructured(k: Known) -> list[Candidate]:
    """Choices worth measuring again right away, on the current best, when they came out
    level with their best or better (see `close`): every such alternative measured only on
    another structure, once a change of structure is kept (a new optimizer or nonlinearity
    changes which other choices help: the ceiling measured gelu and untied embeddings better
    on muon, worse on AdamW), and one such choice measured on an earlier best of this
    structure, once the best has moved by numbers. A choice clearly behind stays for the
    later passes: measured again on every new structure, they took a quarter of a
    60-minute session's runs and none came out ahead. Once the model's size has moved by
    RESIZED, though, every choice measured only on the other size comes back. The closest
    to a gain first."""
    current = k.current()
    seen: dict[tuple[str, Any], list[Outcome]] = {}
    for o in k.ledger.outcomes:
        if o.direction == 0 and o.name in k.tunable and o.new != current[o.name]:
            seen.setdefault(o.key, []).append(o)
    moved_structure, moved_numbers = [], []
    for outcomes in seen.values():
        name, last = outcomes[0].name, outcomes[-1]
        if any(_others(k, o.start, name) == _others(k, current, name) for o in outcomes):
            continue  # measured on this very best already
        size = "" if any(not resized(k, o.start, current) for o in outcomes) \
            else resized(k, last.start, current)
        if not close(last) and not size:
            continue
        now = structure(k, current, leave=name)
        moved = ", ".join(f"{n} {last.start.get(n)!r} -> {v!r}" for n, v in now.items()
                          if last.start.get(n) != v)
        if size:
            changes = ", ".join(f"{n} {last.start.get(n)!r} -> {v!r}" for n, v in current.items()
                                if n in sized(k) and last.start.get(n) != v)
            also = f"; the structure has changed too ({moved})" if moved else ""
            moved_structure.append((last, Candidate((as_step(last),), (
                f"on another model it {last.effect(k.ctx.metric)}; the model has become "
                f"{size} since ({changes}), and its size changes which structure suits it"
                + also))))
        elif moved and not any(structure(k, o.start, leave=name) == now for o in outcomes):
            moved_structure.append((last, Candidate((as_step(last),), (
                f"on another structure it {last.effect(k.ctx.metric)}; the structure has "
                f"changed since ({moved}), and with it what this choice does"))))
        else:
            moved_numbers.append((last, Candidate((as_step(last),), (
                f"on an earlier best it {last.effect(k.ctx.metric)}; the best has moved "
                "since, and a change of structure often adds to what moved it"))))
    runnable = [c for c in _closest(moved_numbers) if _runnable(k, c.steps[0])]
    return _closest(moved_structure) + ([] if _retried_here(k, current) else runnable[:1])


def retuned(k: Known) -> list[Candidate]:
    """An optimizer level with the best or better on it, with each learning rate as it was
    before its last kept step on the current optimizer: that step was tuned to it (two
    60-minute sessions kept LEARNING_RATE 1e-2 -> 5e-3 on AdamW, then measured muon level
    on 5e-3; the ceiling measured muon ahead on 1e-2). One run per optimizer, rate and
    best, the latest kept rate first."""
    current = k.current()
    kept = _last_kept_steps(k, current, _learning_rate)[::-1]
    out = []
    for o in k.ledger.outcomes:
        if (o.direction == 0 and "OPTIMIZER" in o.name.split("_") and close(o)
                and o.new != current.get(o.name)
                and _others(k, o.start, o.name) == _others(k, current, o.name)):
            rates = [r for r in kept if r.start.get(o.name) == o.old]
            out += [Candidate((as_step(o), Step(r.name, -r.direction, r.factor)), (
                f"on this best {o.name} {o.new!r} {o.effect(k.ctx.metric)}; the last kept "
                f"step of {r.name} ({r.old:g} -> {r.new:g}) was tuned to {o.old!r}, so "
                f"{o.new!r} with {r.name} back at {r.old:g}")) for r in rates]
    return out


def _last_kept_steps(k: Known, current: dict[str, Any],
                     which: Callable[[str], bool]) -> list[Outcome]:
    """The kept steps that brought the numbers `which` accepts to their current values,
    the latest last (a number kept twice: both steps)."""
    return [o for o in k.ledger.outcomes if o.helped and o.direction and o.name in current
            and which(o.name) and current[o.name] == o.new]


def _learning_rate(name: str) -> bool:
    return name.endswith("LR") or "LEARNING_RATE" in name


def _runnable(k: Known, s: Step) -> bool:
    """Whether a choice's step may run on the current best: allowed by the human's words,
    and its configuration not run, rejected or measured before."""
    params = {n: c.value for n, c in read_literals(k.ctx.source).items()}
    return k.steering.allows(s.name) and not k.ledger.blocked({**params, s.name: s.to},
                                                              [s.name], k.steering)


def _retried_here(k: Known, current: dict[str, Any]) -> bool:
    """Whether a choice measured on an earlier best was measured again on this one."""
    first: dict[tuple[str, Any], Outcome] = {}
    for o in k.ledger.outcomes:
        if o.direction != 0:
            continue
        earlier = first.setdefault(o.key, o)
        if earlier is not o and _others(k, o.start, o.name) == _others(k, current, o.name):
            return True
    return False


def _closest(pairs: list[tuple[Outcome, Candidate]]) -> list[Candidate]:
    rank = {"keep": 0, "discard": 1, "crash": 2}
    pairs = sorted(pairs, key=lambda pair: (pair[0].stopped_early, rank.get(pair[0].status, 2),
                                            -(pair[0].gain or 0.0)))
    return [candidate for _, candidate in pairs]


def level(o: Outcome) -> bool:
    """A finished run no further behind its best than LEVEL noise: within the noise both
    ways, so a moved best may tip it."""
    return (o.status == "discard" and not o.stopped_early and o.confidence is not None
            and o.confidence > LEVEL)


def close(o: Outcome) -> bool:
    """Kept, a near-miss, level with its best, or finished before the noise was known:
    not clearly behind."""
    unknown = o.status == "discard" and not o.stopped_early and o.confidence is None
    return o.helped or o.near_miss or level(o) or unknown


def _others(k: Known, config: dict[str, Any], leave: str) -> dict[str, Any]:
    """The configuration's movable literals but `leave`."""
    return {n: config.get(n) for n in k.tunable if n != leave}


def first_pass(k: Known) -> list[Candidate]:
    """Every number both ways at the coarse step, every alternative of every choice."""
    out = []
    for name in k.order():
        if k.tunable[name].is_choice:
            steps = [Step(name, 0, 0.0, alt) for alt in k.alternatives(name)]
        else:
            steps = [Step(name, d, FACTORS[0]) for d in k.directions(name)]
        for s in steps:
            known = (s.key in k.ledger.refused or s.key in k.ledger.learned) \
                and name not in k.steering.again
            if s.key in k.ledger.tried or known:
                continue
            other = [o for o in k.ledger.outcomes
                     if s.direction and o.name == name and o.direction == -s.direction]
            why = (f"the step the other way {other[-1].effect(k.ctx.metric)}" if other
                   else why_choice(name, s.to, k.ctx.time_budget) if not s.direction
                   else why_explore(name, s.direction, k.ctx.time_budget))
            why += k.ledger.earlier_words(s.key, k.ctx.metric)
            out.append(Candidate((s,), f"{why} (first pass over every constant)"))
    return out


def _combined(group: tuple[Outcome, ...], metric: str, what: str) -> Candidate:
    words = " and ".join(f"{o.name} {o.effect(metric)}" for o in group)
    return Candidate(tuple(as_step(o) for o in group),
                     f"{what} together: {words}; together they may clear the noise")


def _ranked_groups(among: list[Outcome], size: int,
                   keep: Callable[..., bool] = lambda *g: True) -> list[tuple[Outcome, ...]]:
    groups = [g for g in combinations(among, size)
              if len({o.name for o in g}) == size and keep(*g)]
    return sorted(groups, key=lambda g: -sum(o.gain or 0.0 for o in g))


def near_misses(k: Known) -> list[Candidate]:
    """Near-misses still on their starting value: pairs of the strongest first (their
    gains may add up beyond the noise), then each alone on a best that has moved since,
    then the other pairs (n near-misses make n(n-1)/2 pairs: all of them first would
    hold back the singles for dozens of runs)."""
    near = k.standing(lambda o: o.near_miss)
    top = near[:PAIRED_FIRST]
    metric = k.ctx.metric
    singles = [Candidate((as_step(o),), f"this step {o.effect(metric)} on an earlier best; on "
                         "the current best it may clear the noise") for o in near]
    rest = _ranked_groups(near, 2, lambda a, b: a not in top or b not in top)
    return [*(_combined(g, metric, "two near-misses") for g in _ranked_groups(top, 2)),
            *singles, *(_combined(g, metric, "two near-misses") for g in rest)]


def finer(k: Known, factors: tuple[float, ...]) -> list[Candidate]:
    """Smaller steps around the best value, both ways."""
    out = []
    for factor in factors:
        for name in k.numbers():
            for direction in k.directions(name):
                why = (f"a finer step (x{factor:.2f}) around the best value, between the "
                       "coarser ones") + k.ledger.earlier_words((name, direction), k.ctx.metric)
                out.append(Candidate((Step(name, direction, factor),), why))
    return out


def again(k: Known) -> list[Candidate]:
    """The coarse steps and every alternative again: new configurations once the best has
    moved since they were measured."""
    out = []
    for name in k.order():
        steps = ([Step(name, 0, 0.0, a) for a in k.alternatives(name)]
                 if k.tunable[name].is_choice
                 else [Step(name, d, FACTORS[0]) for d in k.directions(name)])
        out += [Candidate((s,), "measured on an earlier best; the best has moved since"
                          + k.ledger.earlier_words(s.key, k.ctx.metric)) for s in steps]
    return out


def triples(k: Known) -> list[Candidate]:
    near = k.standing(lambda o: o.near_miss)[:TRIPLED]
    return [_combined(g, k.ctx.metric, "three near-misses") for g in _ranked_groups(near, 3)]


def structure_with_numbers(k: Known) -> list[Candidate]:
    """Each structural alternative together with the best numeric moves (a new structure
    moves the best learning rate, width ...): the ones that helped or nearly did, else the
    learning rates' coarse steps."""
    best = [as_step(o) for o in k.standing(lambda o: o.direction != 0 and (o.gain or 0) > 0)]
    if not best:
        best = [Step(n, d, FACTORS[0]) for n in k.numbers()
                if k.priority(n) < 2 for d in (+1, -1)]
    out = []
    for name in k.order():
        if not k.tunable[name].is_choice:
            continue
        for alt in k.alternatives(name):
            for s in best[:WITH_STRUCTURE]:
                out.append(Candidate((Step(name, 0, 0.0, alt), s), (
                    f"{why_choice(name, alt, k.ctx.time_budget)}; a new structure moves the "
                    f"best {s.name}, so both at once")))
    return out


def measured_pairs(k: Known) -> list[Candidate]:
    """Any two measured moves together, the largest sum of gains first: the last resort."""
    measured = k.standing(lambda o: o.gain is not None)
    return [_combined(g, k.ctx.metric, "two measured moves")
            for g in _ranked_groups(measured, 2)]


def why_explore(name: str, direction: int, budget: int) -> str:
    up = direction > 0
    words = set(name.split("_"))
    if words & {"LR"} or "LEARNING_RATE" in name:
        return ("a higher learning rate may converge faster within the fixed "
                f"{budget}s budget" if up else "a lower learning rate may train more stably")
    if words & {"BATCH", "ACCUM"}:
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


def why_choice(name: str, to: Any, budget: int) -> str:
    """Why a structural alternative may be better, in words."""
    words = set(name.split("_"))
    if "OPTIMIZER" in words:
        return (f"{to} may train the matrices faster per step" if to != "adamw"
                else "AdamW may suit this model better")
    if "ACTIVATION" in words:
        return f"the {to} nonlinearity may learn more per step"
    if "KV" in words:
        return f"{to} key/value heads change attention's cost and capacity within {budget}s"
    if "SOFTCAP" in words:
        return ("capped logits may keep early training from overconfidence" if to
                else "uncapped logits may fit faster")
    if "TIE" in words:
        return ("a tied head halves the embedding's cost" if to
                else "an untied lm head gives the output its own parameters")
    if "NORM" in words:
        return ("the norm may allow higher learning rates" if to
                else "without the norm each step costs less")
    if "BF16" in words:
        return (f"bfloat16 matmuls may fit more steps into {budget}s" if to
                else "float32 may learn more per step")
    if "BIGRAM" in words:
        return (f"a lookup of {to} hashed token pairs may learn which token follows which "
                f"in fewer steps" if to else "without the bigram lookup each step costs less")
    return f"the alternative {to!r} the file names is untried on this best"
