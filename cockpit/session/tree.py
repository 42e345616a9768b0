"""The session's search tree (see domain.lines): which line the next proposal builds on, a
new line opened (by the human's `branch` command, or on a plateau), each on its branch.

A line is journaled first (`branch`), then its branch is set: a session killed between the
two puts the branch where the journal says at its resume. A line whose origin has fewer runs
than a keep gets (`keep_reruns`) re-runs of it first, so its bar is as honest as a keep's.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from cockpit.domain.lines import leading, line_branch, plateau_origin
from cockpit.domain.state import Experiment
from cockpit.session.errors import CommandRefused
from cockpit.session.scheduler import BRANCH_RERUN
from cockpit.workspace.history import History

if TYPE_CHECKING:
    from cockpit.session.coordinator import Coordinator

# The line with the best result gets this many proposals for each one of every other open
# line: a 60-minute session that gave a weaker line every other turn ended that line 3%
# behind the other, half its hour spent there.
LEAD_SHARE = 3
# with [research] plateau = 0 (no branching on a plateau), a dry line still branches from
# an earlier best tried fewer times than this
DRY_TRIES = 12


class Lines:
    def __init__(self, session: Coordinator) -> None:
        self.s = session
        self.dry: set[int] = set()  # lines the agent has no move on (until the next result)

    def next_line(self) -> int:
        """The open line whose turn is next: each line's turn comes a stride after its
        newest proposal, and the leading line's stride is LEAD_SHARE times shorter (a new
        line goes first). Read from the journal and the proposals being made, so a resume
        goes on with it. A line the agent ran dry on waits while another has moves."""
        state = self.s.state
        newest = {k: max((e.n for e in line.experiments), default=0)
                  for k, line in state.lines.items()}
        for ticket in self.s.scheduler.proposing.values():
            newest[ticket.line] = max(newest.get(ticket.line, 0), ticket.n)
        open_lines = state.tree.open_lines() or [0]
        wet = [k for k in open_lines if k not in self.dry] or open_lines
        lead = leading(state, wet)
        shares = {k: LEAD_SHARE if k == lead else 1 for k in wet}
        whole = sum(shares.values())
        return min(wet, key=lambda k: (newest.get(k, 0) + whole / shares[k], k))

    def ran_dry(self, k: int) -> bool:
        """The agent has no move left on line k. The research goes on (True) on another
        open line that still has moves, else on a new line from a near-miss or an earlier
        best; only when there is none anywhere is it False (the session waits for a human,
        and every line is tried again after)."""
        s = self.s
        self.dry.add(k)
        if any(j not in self.dry for j in s.state.tree.open_lines()):
            return True
        plateau = s.config.research.plateau or DRY_TRIES
        for j in sorted(self.dry, key=lambda j: (j != k, j)):
            found = plateau_origin(s.state, j, plateau, dry=True)
            new = len(s.state.lines)
            if found is not None and s.history.branch_commit(self.branch_of(new)) is None:
                origin, why = found
                self._open(new, origin, why, left=j)
                return True
        self.dry.clear()
        return False

    def best_commit(self, k: int) -> str:
        """What line k's next proposal builds on: its best (the session's start before the
        baseline)."""
        best = self.s.state.line_best(k)
        if best is None or best.commit is None:
            return self.s.state.base
        return best.commit

    def line_of(self, n: int) -> int:
        """The line experiment n was proposed on."""
        exp = self.s.state.get(n)
        return exp.line if exp is not None else 0

    def branch_of(self, k: int) -> str:
        return line_branch(History.branch_for(self.s.tag), k)

    def line_of_branch(self, name: str) -> int:
        """The line a branch of the session's is (its workers' branches: line 0)."""
        return next((k for k in self.s.state.lines if self.branch_of(k) == name), 0)

    def targets(self) -> dict[str, str]:
        """Every line's branch -> the commit it stands on (its best)."""
        return {self.branch_of(k): self.best_commit(k) for k in self.s.state.lines}

    # -- results held for their line's bar ------------------------------------------------
    def bar_pending(self, line: int = 0) -> bool:
        best = self.s.state.line_best(line)
        return self.s.scheduler.bar_pending(best.commit if best is not None else None)

    def judge_held(self) -> None:
        """Judge the held results whose line's bar is in, in the order they came (a
        judgement may queue re-runs that hold the rest again)."""
        while True:
            ready = next((f for f in self.s.held
                          if not self.bar_pending(self.line_of(f.job.n))), None)
            if ready is None:
                return
            self.s.held.remove(ready)
            self.s.outcomes.judge(ready)

    # -- opening a line ---------------------------------------------------------------------
    def asked(self, n: int) -> str:
        """The human's `branch N`: a new line from #N, or a line left on a plateau reopened
        at its best; what was done, in words (CommandRefused in one line when it cannot)."""
        state = self.s.state
        exp = state.get(n)
        if exp is None:
            raise CommandRefused(f"there is no experiment #{n} (`cockpit status` lists the "
                                 "session)")
        if exp.status is None:
            raise CommandRefused(f"#{n} has not been judged yet: branch from it once it is")
        if exp.status in ("crash", "rejected") or exp.metric is None or exp.commit is None:
            how = {"crash": "crashed", "rejected": "was rejected and never ran"}.get(
                exp.status, "was stopped early")
            raise CommandRefused(f"#{n} {how}: a line builds on a measured commit; branch "
                                 "from a kept or discarded experiment")
        for k, line in state.lines.items():
            if line.best is exp and line.open:
                raise CommandRefused(f"#{n} is line {k}'s best: the line builds on it "
                                     f"already ({self.branch_of(k)})")
            if line.best is exp:
                self._open(k, exp, "human")
                return f"line {k} reopened at #{n} ({self.branch_of(k)})"
        k = len(state.lines)
        taken = self.s.history.branch_commit(self.branch_of(k))
        if taken is not None:
            raise CommandRefused(f"branch {self.branch_of(k)} already exists and is not this "
                                 "session's: delete it or rename it, then branch again")
        self._open(k, exp, "human")
        return f"line {k} from #{n} ({self.branch_of(k)}): its next proposals build on #{n}"

    def after_result(self, exp: Experiment) -> None:
        """A result on a line that has plateaued: the session branches on its own. (A
        result may give the agent new moves anywhere: no line stays dry.)"""
        s = self.s
        self.dry.clear()
        if s.control.stopping or s.ending is not None:
            return
        found = plateau_origin(s.state, exp.line, s.config.research.plateau)
        if found is None:
            return
        origin, why = found
        k = len(s.state.lines)
        if s.history.branch_commit(self.branch_of(k)) is not None:
            return  # a branch of that name is someone else's: stay on this line
        self._open(k, origin, why, left=exp.line)

    def _open(self, k: int, origin: Experiment, why: str, left: int | None = None) -> None:
        s = self.s
        assert origin.commit is not None  # only a measured commit starts a line
        s.recorder.record("branch", line=k, from_n=origin.n, commit=origin.commit, why=why,
                          left=left)
        s.outcomes.move(self.branch_of(k), self.best_commit(k))
        for commit, purpose in self.owed(k):
            s.scheduler.queue(commit, purpose)
        s.outcomes.render_experiments()

    def owed(self, k: int) -> list[tuple[str, str]]:
        """The re-runs line k's best still needs before results are judged against it."""
        s = self.s
        best = s.state.line_best(k)
        if best is None or best.commit is None or best is s.state.baseline \
                or s.state.noise is None:
            return []
        queued = sum(m.commit == best.commit for m in s.scheduler.queued_or_running())
        missing = 1 + s.config.judge.keep_reruns - len(s.state.values_of(best.commit)) - queued
        return [(best.commit, "keep" if best.status == "keep" else BRANCH_RERUN)] * max(0, missing)
