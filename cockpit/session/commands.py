"""What any client may ask of the session: a registry of typed commands, each with its
arguments declared once, and their handlers.

A command names what it acts on (#7, note 3, the run of #12) and is refused in one line
when that thing is gone or the asking makes no sense (CommandRefused); arguments of the
wrong type are refused the same way. A bug inside a handler is a bug: its traceback goes to
the session's stderr (its log) and the client gets an error answer, never "refused".
"""
from __future__ import annotations

import dataclasses
import sys
import traceback
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cockpit.agents.edits import EditRefused, validate_source
from cockpit.domain.diffs import edited_description, unified_diff
from cockpit.domain.proposals import Ticket
from cockpit.domain.state import Experiment
from cockpit.session.errors import CommandRefused
from cockpit.session.proposer import sha

if TYPE_CHECKING:
    from cockpit.session.coordinator import Coordinator

COMMANDS: dict[str, type] = {}


def command(name: str) -> Callable[[type[Any]], type[Any]]:
    def register(cls: type[Any]) -> type[Any]:
        cls.OP = name
        COMMANDS[name] = cls
        return dataclass(frozen=True)(cls)
    return register


@command("status")
class Status:
    pass


@command("pause")
class Pause:
    pass


@command("resume")
class Resume:
    pass


@command("stop")
class Stop:
    now: bool = False
    runs: list[int] | None = None  # the experiments to end now (None: every run in flight)
    by: str = ""  # "signal": Ctrl-C or SIGTERM


@command("stop_run")
class StopRun:
    n: int


@command("steer")
class Steer:
    text: str


@command("drop_note")
class DropNote:
    id: int


@command("approve")
class Approve:
    n: int | None = None
    source: str | None = None  # the proposal as the human edited it


@command("reject")
class Reject:
    n: int | None = None
    reason: str = ""


@command("auto_approve")
class AutoApprove:
    on: bool


@command("hold")
class Hold:
    """A client shows a decision (a dialog): auto-approve waits until it is closed."""

    client: str
    on: bool


@command("notified")
class Notified:
    """The notifier's word on a service (named without its tokens)."""

    service: str
    ok: bool
    error: str = ""


@command("branch")
class Branch:
    """A new line of the search tree from experiment n (see session.tree)."""

    n: int


@command("measure")
class Measure:
    commits: list[str]
    runs: int
    purpose: str = "confirm"


def parse(op: str, args: dict[str, Any]) -> Any:
    """The command `op` with `args`, its arguments' types checked; CommandRefused in one
    line when there is no such command or an argument does not fit."""
    cls = COMMANDS.get(op)
    if cls is None:
        raise CommandRefused(f"unknown command {op!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for name, value in args.items():
        if name not in fields:
            raise CommandRefused(f"{op}: no argument {name!r}")
        # a union admits each of its members; a list[str] admits a list
        union = typing.get_origin(hints[name]) in (typing.Union, types.UnionType)
        options = typing.get_args(hints[name]) if union else (hints[name],)
        kinds = tuple(typing.get_origin(o) or o for o in options)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise CommandRefused(f"{op}: {name} must be {' or '.join(k.__name__ for k in kinds)}"
                                 f", got {type(value).__name__}")
    missing = [f.name for f in fields.values() if f.name not in args
               and f.default is dataclasses.MISSING]
    if missing:
        raise CommandRefused(f"{op}: {missing[0]} is missing")
    return cls(**args)


def answer(session: Coordinator, op: str, args: dict[str, Any]) -> dict[str, Any]:
    """Parse and carry out one command: {"ok": True, "message", ...}, or {"ok": False,
    "message"} when refused, or {"ok": False, "error": "bug", "message"} on a bug."""
    try:
        cmd = parse(op, args)
        result = HANDLERS[type(cmd)](session, cmd)
    except CommandRefused as exc:
        return {"ok": False, "message": str(exc)}
    except Exception as exc:
        print(f"cockpit: the command {op} failed (a bug):\n{traceback.format_exc()}",
              file=sys.stderr, flush=True)
        return {"ok": False, "error": "bug", "message": f"cockpit failed on {op}: "
                f"{type(exc).__name__}: {exc} (the traceback is in the session log)"}
    session.publish_live()
    return {"ok": True, **result} if isinstance(result, dict) \
        else {"ok": True, "message": result or "done"}


# -- the handlers ----------------------------------------------------------------------------
def _status(s: Coordinator, cmd: Status) -> dict[str, Any]:
    state = s.state
    best, base = state.best, state.baseline
    floor = state.floor()
    return {"message": "running", "live": s.live(), "status": {
        "tag": s.tag, "branch": state.branch, "metric": state.metric,
        "direction": state.direction, "experiments": len(state.ran),
        "kept": sum(e.status == "keep" for e in state.ran),
        "crashed": sum(e.status == "crash" for e in state.ran),
        # a commit scores the mean of its runs: the judge's number, with its run count
        "best": state.mean_of(best) if best else None, "best_n": best.n if best else None,
        "best_runs": len(state.values_of(best.commit)) or 1 if best else 0,
        "baseline": state.mean_of(base) if base else None,
        "baseline_runs": len(state.values_of(base.commit)) or 1 if base else 0,
        "noise": floor.std if floor else None, "noise_runs": floor.runs if floor else 0,
        "budget": s.config.experiment.time_budget, "events": len(s.events),
        "best_measured": best.measured if best else "", "measuring": state.measuring,
        "seeds": state.seeds, "lines": [
            {"line": k, "branch": s.lines.branch_of(k), "open": line.open,
             "from_n": line.origin.n if line.origin else None,
             "best_n": line.best.n if line.best else None,
             "best": state.mean_of(line.best) if line.best else None}
            for k, line in state.lines.items()]}}


def _pause(s: Coordinator, cmd: Pause) -> str:
    if s.control.paused:
        raise CommandRefused("already paused")
    s.pause("paused by the human", "human")
    return "paused: no new run starts; runs in flight finish"


def _resume(s: Coordinator, cmd: Resume) -> str:
    if not s.control.paused:
        raise CommandRefused("not paused")
    s.resume()
    return "resumed"


def _stop(s: Coordinator, cmd: Stop) -> str:
    """Stop the session: after the runs in flight, or now (ending the experiments named,
    or all, and every re-run: a re-run only serves experiments the session will not run
    any more)."""
    s.control.stopping = "stopped" + (" by the human" if cmd.by != "signal" else "")
    s.recorder.record("stopping", now=cmd.now, runs=cmd.runs, by=cmd.by)
    jobs = s.scheduler.running_jobs()
    if not cmd.now:
        busy = [f"#{job.n}" for job in jobs if job.kind == "experiment"]
        return "stopping after " + (", ".join(busy) if busy else "nothing: no run in flight")
    ended = []
    s.stop_cause = "human"
    for job in jobs:
        if cmd.runs is not None and job.kind == "experiment" and job.n not in cmd.runs:
            continue
        assert s.pool is not None  # a job runs: the pool is up
        s.pool.stop(job.worker)
        ended.append(f"#{job.n}" if job.kind == "experiment" else f"re-run {job.n}")
    return "stopping now: " + (", ".join(ended) + " ended" if ended else "no run in flight")


def _stop_run(s: Coordinator, cmd: StopRun) -> str:
    """End experiment n's run now (recorded as stopped by the human); the loop pauses."""
    slot = s.scheduler.slot_of(cmd.n)
    if slot is None:
        exp = s.state.get(cmd.n)
        if exp is None:
            raise CommandRefused(f"there is no experiment #{cmd.n}")
        raise CommandRefused(f"#{cmd.n} is not running (it {_whereabouts(exp)})")
    assert s.pool is not None  # its run has a slot: the pool is up
    s.pool.stop(slot.worker)
    if not s.control.paused:
        s.pause("paused by the human after stopping a run", "human")
    return f"#{cmd.n} stopped (recorded as a crash); the loop is paused: resume when ready"


def _steer(s: Coordinator, cmd: Steer) -> str:
    text = " ".join(str(cmd.text).split())
    if not text:
        raise CommandRefused("an empty note steers nothing")
    note_id = 1 + max(s.state.notes, default=0)
    s.recorder.record("note", id=note_id, text=text)
    return f"note {note_id} added for the next proposals"


def _drop_note(s: Coordinator, cmd: DropNote) -> str:
    if cmd.id not in s.state.notes:
        raise CommandRefused(f"there is no note {cmd.id}")
    s.recorder.record("note_dropped", id=cmd.id)
    return f"note {cmd.id} dropped"


def _approve(s: Coordinator, cmd: Approve) -> str:
    ticket = _awaiting(s, cmd.n)
    assert ticket.proposal is not None  # a ticket awaits approval once proposed
    if cmd.source is not None and cmd.source != ticket.proposal.source:
        _edit(s, ticket, cmd.source)
    del s.scheduler.awaiting[ticket.n]
    ticket.approved = True
    s.scheduler.ready.append(ticket)
    s.recorder.record("approved", n=ticket.n, edited=ticket.edited)
    return f"#{ticket.n} approved" + (" as edited" if ticket.edited else "")


def _edit(s: Coordinator, ticket: Ticket, source: str) -> None:
    """The human's version of a proposal, checked as an agent's answer is, journaled (its
    diff, file and a description of what it now changes), and taken as the fold has it:
    the commit, results.tsv, experiments.md and every screen say the human's change."""
    assert ticket.proposal is not None  # only a proposal is edited
    if ticket.made:
        raise CommandRefused(f"#{ticket.n} is your own commit and runs as it is: commit "
                             "your change on the session's branch instead")
    base_source = s.history.file_at(ticket.base, s.editable)
    try:
        validate_source(source, base_source, s.editable)
    except EditRefused as exc:
        raise CommandRefused(f"#{ticket.n} as edited is refused: {exc}") from None
    diff = unified_diff(base_source, source, s.editable)
    s.recorder.record("edited", n=ticket.n, diff=diff, source_sha=sha(source),
                      source_blob=s.history.write_blob(source),
                      description=edited_description(diff))
    exp = s.state.get(ticket.n)
    assert exp is not None  # it awaits approval: its proposal is in the journal
    ticket.proposal.source, ticket.proposal.description = source, exp.description
    ticket.proposal.params, ticket.proposal.move = exp.params, exp.move
    ticket.diff, ticket.edited = exp.diff, True


def _reject(s: Coordinator, cmd: Reject) -> str:
    from cockpit.domain import causes

    ticket = _awaiting(s, cmd.n)
    del s.scheduler.awaiting[ticket.n]
    s.recorder.record("result", n=ticket.n, status="rejected", metric=None,
                      cause=causes.REJECTED,
                      reason=f"rejected by the human: {cmd.reason.strip() or 'no reason given'}")
    s.outcomes.render_experiments()
    return f"#{ticket.n} rejected"


def _auto_approve(s: Coordinator, cmd: AutoApprove) -> str:
    s.control.auto_approve = bool(cmd.on)
    s.recorder.record("auto_approve", on=cmd.on)
    return "auto-approve " + ("on" if cmd.on else "off: each proposal waits for a human")


def _hold(s: Coordinator, cmd: Hold) -> str:
    s.scheduler.hold(cmd.client, cmd.on)
    return "held" if cmd.on else "released"


def _notified(s: Coordinator, cmd: Notified) -> str:
    """A service failing is journaled once until it works again, or working again."""
    if cmd.ok and s.control.notify_failing.pop(cmd.service, None) is not None:
        s.recorder.record("notify_recovered", service=cmd.service)
    elif not cmd.ok and cmd.service not in s.control.notify_failing:
        s.control.notify_failing[cmd.service] = cmd.error
        s.recorder.record("notify_failed", service=cmd.service, error=cmd.error)
    return "noted"


def _branch(s: Coordinator, cmd: Branch) -> str:
    return s.lines.asked(cmd.n)


def _measure(s: Coordinator, cmd: Measure) -> str:
    for commit in cmd.commits:
        for _ in range(cmd.runs):
            s.scheduler.queue(str(commit), cmd.purpose)
    return (f"{cmd.runs} re-run{'s' * (cmd.runs != 1)} of {len(cmd.commits)} commit"
            f"{'s' * (len(cmd.commits) != 1)} queued")


def _awaiting(s: Coordinator, n: int | None) -> Ticket:
    """The ticket awaiting approval that `n` names (the oldest without n)."""
    awaiting = s.scheduler.awaiting
    if n is None:
        if not awaiting:
            raise CommandRefused("no proposal awaits approval")
        return awaiting[min(awaiting)]
    if n in awaiting:
        return awaiting[n]
    exp = s.state.get(n)
    if exp is None and n in s.scheduler.proposing:
        raise CommandRefused(f"#{n} is still being proposed")
    if exp is None:
        raise CommandRefused(f"there is no proposal #{n}")
    raise CommandRefused(f"#{n} does not await approval: {_whereabouts(exp)}")


def _whereabouts(exp: Experiment) -> str:
    if exp.status is None:
        return "it is running" if exp.log else "it is waiting for a worker"
    return "it was rejected" if exp.status == "rejected" else f"it ended as a {exp.status}"


HANDLERS: dict[type, Callable[..., Any]] = {
    Status: _status, Pause: _pause, Resume: _resume, Stop: _stop, StopRun: _stop_run,
    Steer: _steer, DropNote: _drop_note, Approve: _approve, Reject: _reject,
    AutoApprove: _auto_approve, Hold: _hold, Notified: _notified, Measure: _measure,
    Branch: _branch,
}
