"""The session's branches, moved only from where cockpit left them.

autoresearch/<tag> stands on the best, and autoresearch/<tag>-gpu<k> on each worker's run.
A branch cockpit never had must not exist before it writes one; one that moved since cockpit
last set it holds a commit of the human's. Such a commit is kept under
refs/cockpit/<tag>/yours/<sha> and taken up as an experiment of its own when it builds on
the best and changes only the editable file; otherwise the way out is said in one line.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from cockpit.domain.lines import line_branch
from cockpit.domain.proposals import Proposal, Ticket
from cockpit.domain.state import SessionState
from cockpit.workspace.history import (
    NO_COMMIT,
    REF_PREFIX,
    BranchMoved,
    History,
    short,
)


@dataclass
class Yours:
    """A commit of the human's on a session branch: taken up (the ticket to offer) or not
    (why, with the way out)."""

    ticket: Ticket | None = None
    refused: str = ""


class Branches:
    def __init__(self, history: History, tag: str, editable: str) -> None:
        self.history = history
        self.tag = tag
        self.editable = editable
        self.session = History.branch_for(tag)
        self.at: dict[str, str] = {}  # each session branch: where cockpit left it

    def worker(self, worker: int, workers: int, line: int = 0) -> str:
        """The branch a worker's experiments sit on: their line's own with one worker."""
        return line_branch(self.session, line) if workers == 1 else f"{self.session}-gpu{worker}"

    def taken(self) -> list[str]:
        """The session's branches that exist already (a fresh session must find none)."""
        pattern = re.compile(rf"refs/heads/{re.escape(self.session)}(-gpu\d+)?")
        return [ref.removeprefix("refs/heads/") for ref in self.history.branch_refs()
                if pattern.fullmatch(ref)]

    def move(self, name: str, sha: str, take_up: Callable[[str, str], None]) -> None:
        """Move `name` to `sha` from where cockpit left it; a commit the human made on it
        meanwhile goes to `take_up(name, commit)` (kept, then taken up or refused) first."""
        try:
            self.history.set_branch(name, sha, expected=self.at.get(name, NO_COMMIT))
        except BranchMoved as moved:
            if moved.now is not None:
                take_up(name, moved.now)
            self.history.set_branch(name, sha)
        self.at[name] = sha

    def settle(self, state: SessionState, best: str, lines: dict[str, str]
               ) -> list[tuple[str, str]]:
        """At a resume: each line's branch goes back to the line's best (`lines`: branch ->
        commit; one a kill left unmade is made), a worker's to the best (a run cut short
        left one on its commit); the (branch, commit) pairs that hold a commit the session
        never made are returned for taking up, left where they are."""
        ours = {e.commit for e in state.experiments if e.commit} | {state.base}
        foreign = []
        for name in dict.fromkeys([*self.taken(), *lines]):
            target = lines.get(name, best)
            head = self.history.branch_commit(name)
            if head is not None and head not in ours and head != target:
                foreign.append((name, head))
                continue
            if head != target:
                self.history.set_branch(name, target)
            self.at[name] = target
        return foreign

    def yours(self, branch: str, head: str, best: str, ticket_n: int, line: int = 0) -> Yours:
        """A commit of the human's on `branch` (of `line`): kept under its ref; taken up
        when it builds on `best` (its line's) and changes only the editable file."""
        self.history.set_ref(f"{REF_PREFIX}{self.tag}/yours/{head}", head)
        subject = self.history.subject(head)
        named = (f"{branch} has {short(head)} (\"{subject}\"), a commit session {self.tag} "
                 "did not make")
        way_out = (f"keep it on a branch of yours (`git branch my-work {short(head)}`), put "
                   f"the session's back (`git branch -f {branch} {short(best)}`) and run again")
        if not self.history.is_ancestor(best, head):
            return Yours(refused=f"{named} and not on its best ({short(best)}): {way_out}")
        others = [f for f in self.history.changed_files(best, head) if f != self.editable]
        if others:
            return Yours(refused=f"{named} that changes {', '.join(others[:3])} besides "
                         f"{self.editable}: {way_out}")
        source = self.history.file_at(head, self.editable)
        proposal = Proposal(f"your commit {short(head)}: {subject}",
                            f"a change you committed on {branch}", source)
        return Yours(Ticket(n=ticket_n, base=best, proposal=proposal, made=head,
                            approved=True, line=line))
