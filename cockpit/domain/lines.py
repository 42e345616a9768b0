"""The search tree: research goes on along lines, each building on its own best.

Line 0 starts at the session's start (its branch is autoresearch/<tag>); every other line
starts from one experiment's commit (autoresearch/<tag>-<k>): the human's choice (`cockpit
branch N`, `b` on a timeline row), or the session's own when a line plateaus (no keep for
`[research] plateau` experiments): from the line's strongest near-miss, else from an earlier
best whose line was left too soon. Each line has its own best (its last keep; its origin
until its first), and a result is judged against its line's best. The session's best is the
best of the lines' standing bests: keeps, and origins whose re-runs carried them past the
bar they missed by a little. A line the session left on a plateau gets no new proposals
until a `branch` to its best reopens it, or a keep on it (of a proposal made before it was
left) shows it was not on a plateau after all; nothing of it is lost.

The fold (domain.state) keeps a Tree; this module knows no journal format.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cockpit.domain.judge import NoiseFloor
    from cockpit.domain.metric import Metric
    from cockpit.domain.state import Experiment, SessionState


@dataclass
class Line:
    k: int
    origin: Experiment | None = None  # the experiment it branched from (None: line 0)
    why: str = ""  # "human", or "plateau: ..."
    best: Experiment | None = None  # its last keep; its origin until its first keep
    experiments: list[Experiment] = field(default_factory=list)  # proposed on it
    since_keep: int = 0  # experiments judged on it since its last keep (or its opening)
    open: bool = True  # proposals are made for it (not once the session left it)

    @property
    def parent(self) -> int | None:
        """The line its origin was on (None for line 0)."""
        return self.origin.line if self.origin is not None else None


def line_branch(session_branch: str, k: int) -> str:
    """A line's branch: the session's own for line 0, autoresearch/<tag>-<k> otherwise."""
    return session_branch if k == 0 else f"{session_branch}-{k}"


@dataclass
class Tree:
    lines: dict[int, Line] = field(default_factory=lambda: {0: Line(0)})

    def line(self, k: int) -> Line:
        """Line k (line 0 for a number the journal never opened)."""
        return self.lines.get(k) or self.lines[0]

    def open_lines(self) -> list[int]:
        return [k for k, line in self.lines.items() if line.open]

    def origins(self) -> set[int]:
        """The experiments lines started from."""
        return {line.origin.n for line in self.lines.values() if line.origin is not None}

    # -- the fold's side ----------------------------------------------------------------------
    def proposed(self, exp: Experiment) -> None:
        if exp.line not in self.lines:
            exp.line = 0  # a line the journal never opened: the session's own
        self.lines[exp.line].experiments.append(exp)

    def judged(self, exp: Experiment) -> None:
        line = self.line(exp.line)
        if exp.status == "keep":
            # a keep ends a plateau: a line left on one (a proposal made before it was left
            # may still be judged on it) goes on
            line.best, line.since_keep, line.open = exp, 0, True
        elif exp.status == "discard" or exp.the_ideas_fault:
            line.since_keep += 1

    def branched(self, k: int, origin: Experiment, why: str, left: int | None) -> None:
        """A new line k from `origin` (the next number only), or line k reopened."""
        if k in self.lines:
            self.lines[k].open, self.lines[k].since_keep = True, 0
        elif k == len(self.lines):
            self.lines[k] = Line(k, origin=origin, why=why, best=origin)
        else:
            return  # numbered out of order: not a line this session opened
        if left is not None and left != k and left in self.lines:
            self.lines[left].open = False

    def session_best(self, score: SessionState) -> Experiment | None:
        """The best of the lines' standing bests (one line: its last keep), by the mean of
        each one's runs; a tie goes to the lower line."""
        if len(self.lines) == 1:
            return self.lines[0].best
        bests = [line.best for line in self.lines.values() if line.best is not None]
        # the floor once (it pools every commit's runs), and only for an origin to weigh
        floor = score.floor() if any(b.status != "keep" for b in bests) else None
        kept = [exp for exp in bests if stands(exp, score, floor)]
        best: Experiment | None = None
        for exp in kept:
            if best is None or score.judged_by.better(score.mean_of(exp), score.mean_of(best)):
                best = exp
        return best


def stands(exp: Experiment, score: SessionState, floor: NoiseFloor | None = None) -> bool:
    """Whether a line's best counts for the session's: a keep, or a line's origin (a
    near-miss) that its re-runs made one: the mean of its runs beats the mean of the best
    it was made on (or carried onto) by the keep bar, the bar a keep's re-runs meet. (A
    chain of lines from near-misses otherwise walks downhill in steps each within the
    noise, and the session's best never moves.)"""
    if exp.status == "keep":
        return True
    runs, base = score.values_of(exp.commit), score.values_of(exp.built_on)
    if len(runs) < 2 or not base or exp.built_on == exp.commit:
        return False
    verdict = score.keep_policy().decide(sum(runs) / len(runs), sum(base) / len(base),
                                         floor or score.floor(), best_runs=len(base),
                                         runs=len(runs))
    return verdict.status == "keep" and verdict.gain > 0


def leading(state: SessionState, lines: list[int]) -> int | None:
    """The line among `lines` whose best measures best (by the mean of its runs; the lower
    line on a tie); None when none has a measured best."""
    lead: tuple[int, float] | None = None
    for k in lines:
        best = state.tree.line(k).best
        value = state.mean_of(best) if best is not None and best.metric is not None else None
        if value is not None and (lead is None or state.judged_by.better(value, lead[1])):
            lead = (k, value)
    return lead[0] if lead is not None else None


def plateau_origin(state: SessionState, k: int, plateau: int,
                   dry: bool = False) -> tuple[Experiment, str] | None:
    """Where the session branches when line k has plateaued (None: it has not, or there is
    nowhere new to go): (origin, why). `dry`: the agent has no move left on line k, which
    is a plateau however recent its last keep."""
    line = state.tree.line(k)
    if plateau <= 0 or not line.open or line.best is None:
        return None
    if line.since_keep < plateau and not dry:
        return None
    taken = state.tree.origins() | {ln.best.n for ln in state.tree.lines.values() if ln.best}
    metric, bar = state.judged_by, state.mean_of(line.best)
    said = (f"line {k}: the agent has no move left" if dry else
            f"plateau: line {k} kept nothing in {line.since_keep} experiments")
    near = [e for e in line.experiments if e.n not in taken and e.commit
            and e.near_miss(state.direction) and metric.better(state.mean_of(e), bar)]
    if near:
        origin = _strongest(near, state, metric)
        return origin, (f"{said}; from its strongest near-miss #{origin.n} "
                        f"({state.mean_of(origin):.6f} vs its best's {bar:.6f}, within the "
                        "noise)")
    tries = _tries(state)
    earlier = [e for e in state.experiments if e.status == "keep" and e.commit
               and e.n not in taken and tries.get(e.commit, 0) < plateau]
    if earlier:
        origin = _strongest(earlier, state, metric)
        return origin, (f"{said}; from #{origin.n}, an earlier best left after "
                        f"{tries.get(origin.commit or '', 0)} tries")
    return None


def _strongest(candidates: list[Experiment], state: SessionState, metric: Metric
               ) -> Experiment:
    best = candidates[0]
    for exp in candidates[1:]:
        if metric.better(state.mean_of(exp), state.mean_of(best)):
            best = exp
    return best


def _tries(state: SessionState) -> dict[str, int]:
    """commit -> how many experiments ran a change on it (made on it, or carried onto it)."""
    tries: dict[str, int] = {}
    for exp in state.ran:
        if exp.built_on and exp.built_on != exp.commit:  # the baseline runs its base: no try
            tries[exp.built_on] = tries.get(exp.built_on, 0) + 1
    return tries
