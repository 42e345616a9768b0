"""The offline agent: one informed move of train.py's literals at a time.

It reads the top-level UPPERCASE literals with `ast` (see `moves`): numbers, stepped up or
down, and structural choices, set to another alternative (a bool, or a literal whose
comment names its alternatives: `ACTIVATION = "relu2"  # ...: relu2 | gelu | swiglu`). It
picks the next move from what is known: this session's experiments (those in flight
included), the experiments of earlier sessions in the workspace (`ctx.prior`), and the
human's words. In this order (see `ideas`):
  1. momentum: the last kept step worked, so push the same number the same way once
     more, right away (a step too far costs one run, often stopped early; waiting for the
     first pass to end would leave the most promising lever alone for a dozen runs);
  2. choices again, those that came out level with their best or better: once a change
     of structure is kept (an optimizer, a nonlinearity), every alternative of the other
     choices measured only on the old one; once the best has moved by numbers, the
     closest one measured on an earlier best; and an optimizer level on this best, with
     the learning rate it had before the last kept learning-rate step;
  3. first pass: every number in both directions and every alternative of every choice;
     moves that helped in earlier sessions first (in the direction that helped), then the
     ones that usually matter most in a fixed time budget (learning rates, the depth,
     then the structure: precision, the bigram lookup, the optimizer; then model shape);
     a move an earlier session measured without a keep is already known and skipped;
  4. near-misses (better than the best, within the noise): two of the strongest together
     on top of the best, then each alone again on a best that has moved since it was
     measured, then the other pairs;
  5. refinement: smaller steps around the best value, both ways; then the coarse steps and
     every alternative again around a best that has moved since they were measured;
  6. before giving up: finer steps still, three near-misses together, each structural
     alternative together with the best numeric moves, then any two measured moves together.
Only when every one of these has run around the current best does it raise AgentExhausted
(the session then pauses for a human's note). Back-off is the first pass's second
direction: a step that hurt, crashed or was stopped early is followed by the step the other
way, which says why. A first-pass step to a configuration an earlier session kept goes on
past it, the way it helped. A proposal the human rejected is a rejected idea, not a
measurement, and the reason typed for it steers like a note (see `steering`): constants to
leave alone are never moved, constants asked for come first, choices by name as numbers.
A configuration already run (in this session, in flight, or in an earlier session) or
rejected is never proposed again, unless a note asks for its constant again. Only literals
are rewritten: each diff changes one line per move, and constants such as `SEED` are left
alone.
"""
from __future__ import annotations

from typing import Any

from cockpit.agents import ideas
from cockpit.agents.base import AgentContext, AgentExhausted
from cockpit.agents.ideas import FACTORS, FINEST, Candidate, Known
from cockpit.agents.ledger import Ledger
from cockpit.agents.moves import (
    Constant,
    Step,
    follow_divisors,
    format_like,
    literal_text,
    read_constants,
    read_literals,
    rewrite_constant,
    step,
)
from cockpit.agents.steering import read_steering
from cockpit.domain.proposals import Proposal

__all__ = ["TuneAgent", "format_like", "read_constants", "read_literals", "step"]

SKIP_WORDS = ("SEED", "BUDGET", "EVAL", "LOG", "PRINT", "INTERVAL", "EVERY", "DEVICE", "VERBOSE")
MAX_WALK = 3  # steps taken past configurations an earlier session kept


class TuneAgent:
    name = "tune"

    def propose(self, ctx: AgentContext) -> Proposal:
        literals = read_literals(ctx.source)
        tunable = {n: c for n, c in literals.items()  # by word: LOGIT_SOFTCAP is no LOG
                   if not set(n.split("_")) & set(SKIP_WORDS)}
        if not tunable:
            raise AgentExhausted("the tune agent found no UPPERCASE constants to tune in the "
                                 "editable file")
        ledger = Ledger(ctx)
        known = Known(ctx, tunable, ledger, read_steering(ctx.notes, ledger.rejections,
                                                          list(tunable)))
        for candidate in self._ranked(known):
            proposal = self._realise(candidate, known, literals)
            if proposal is not None:
                return proposal
        raise AgentExhausted(
            f"the tune agent has tried every move it knows around the best configuration "
            f"({len(ledger.ran)} configurations run)")

    @staticmethod
    def _ranked(k: Known) -> list[Candidate]:
        """Every candidate, best first: the phases in order, the levers the human asked for
        ahead of the rest, the ones to leave alone gone."""
        candidates = [*ideas.momentum(k), *ideas.restructured(k), *ideas.retuned(k),
                      *ideas.first_pass(k), *ideas.near_misses(k),
                      *ideas.finer(k, FACTORS[1:]), *ideas.again(k),
                      *ideas.finer(k, (FINEST,)), *ideas.triples(k),
                      *ideas.structure_with_numbers(k), *ideas.measured_pairs(k)]
        candidates = [c for c in candidates if all(k.steering.allows(s.name) for s in c.steps)]
        asked = {name: rank for rank, name in enumerate(k.steering.prefer)}
        return sorted(candidates, key=lambda c: min(asked.get(s.name, len(asked))
                                                    for s in c.steps))

    def _realise(self, candidate: Candidate, k: Known,
                 literals: dict[str, Constant]) -> Proposal | None:
        """The candidate as a proposal on the current source; None when a step is not
        possible or the configuration is blocked."""
        current = {n: c.value for n, c in literals.items()}
        params, records = dict(current), []
        for s in candidate.steps:
            new = self._target(s, params, k, walk=len(candidate.steps) == 1)
            if new is None or literal_text(k.tunable[s.name], new) == k.tunable[s.name].text:
                return None
            params[s.name] = new
            records.append({"name": s.name, "old": current[s.name], "new": new,
                            "direction": s.direction, "factor": round(s.factor, 4)})
        moved = [s.name for s in candidate.steps]
        followed = follow_divisors(params, current, literals, set(moved))
        if followed is None or k.ledger.blocked(followed, moved, k.steering):
            return None
        changed = [literals[n] for n in followed if followed[n] != current[n]]
        source = k.ctx.source
        for const in sorted(changed, key=lambda c: -c.lineno):  # bottom-up: offsets stay valid
            source = rewrite_constant(source, const, literal_text(const, followed[const.name]))
        description = ", ".join(f"{c.name} {c.text} -> {literal_text(c, followed[c.name])}"
                                for c in sorted(changed, key=lambda c: moved.index(c.name)
                                                if c.name in moved else len(moved)))
        move: dict[str, Any]
        if len(records) == 1:
            const, s = literals[moved[0]], candidate.steps[0]
            verb = "Setting" if not s.direction else "Raising" if s.direction > 0 else "Lowering"
            hypothesis = (f"{verb} {const.name} from {const.text} to "
                          f"{literal_text(const, followed[const.name])}: {candidate.why}")
            move = records[0]
        else:
            hypothesis = f"{description}: {candidate.why}"
            move = {"name": "+".join(moved), "combine": records}
        follows = {c.name: c.value for c in changed if c.name not in moved}
        if follows:  # where it started from, for the ledger: divisors that followed a move
            move["follows"] = follows
        return Proposal(description=description, hypothesis=hypothesis, source=source,
                        params=followed, move=move)

    @staticmethod
    def _target(s: Step, params: dict[str, Any], k: Known, walk: bool) -> Any:
        """The value a step moves its literal to; None when it cannot move."""
        if not s.direction:
            return s.to
        new = step(params[s.name], s.direction, s.factor)
        # A single step an earlier session kept: go on past it, the way it helped.
        for _ in range(MAX_WALK if walk else 0):
            if new is None or not k.ledger.earlier_keep(dict(params, **{s.name: new})):
                break
            new = step(new, s.direction, s.factor)
        return new
