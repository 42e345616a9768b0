"""The prompt an agent answers: the program, the facts, lessons from earlier sessions, the
history, the current file.

The history lists every experiment of the session; ideas the human rejected are listed apart
with the human's reason (they never ran: no result), runs stopped early say so and why, and
near-misses (better than the best, within the noise) are listed with their gain in units of
the noise, as candidates to combine. Lessons from earlier sessions in the workspace (what
helped, what hurt, what crashed, each with its measured effect) come from `ctx.prior`.

It stays under a token budget as the session grows: the lessons are condensed, then
dropped, before the current session's history is condensed level by level (fewer detailed
diffs, then shorter lines for older experiments); the history is never dropped, so the
baseline, the best and every idea already tried stay listed. program.md and the editable
file are never cut.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from cockpit.agents.base import AgentContext
from cockpit.agents.edits import one_line
from cockpit.domain.earlystop import describe_stop
from cockpit.domain.judge import gain_of
from cockpit.domain.state import Experiment, best_of

CHARS_PER_TOKEN = 4  # a rough, provider-independent estimate (code runs ~3.5-4.5)
RECENT_ROWS = 30  # the last rows of the history table keep their full text


@dataclass(frozen=True)
class Level:
    details: int  # recent experiments shown with hypothesis and diff
    diff_lines: int  # a detailed diff is cut after this many lines
    old_chars: int  # older rows: description cut to this length
    old_reason_chars: int  # older rows: crash reason cut to this length (0: none)
    recent_rows: int = RECENT_ROWS
    terse: bool = False  # older rows: one-letter status, delta only
    near_misses: int = 10  # near-misses listed, the largest gains first


# From the richest prompt to the most condensed one; the first that fits is used.
LEVELS = (
    Level(details=6, diff_lines=80, old_chars=120, old_reason_chars=160),
    Level(details=4, diff_lines=40, old_chars=80, old_reason_chars=80, near_misses=8),
    Level(details=2, diff_lines=30, old_chars=60, old_reason_chars=40, near_misses=5),
    Level(details=1, diff_lines=20, old_chars=40, old_reason_chars=0, near_misses=3),
    # The last level sizes older descriptions to whatever room is left (MIN_TERSE at least).
    Level(details=0, diff_lines=0, old_chars=0, old_reason_chars=0, recent_rows=10, terse=True,
          near_misses=3),
)
MIN_TERSE, MAX_TERSE = 16, 120


@dataclass(frozen=True)
class LessonLevel:
    items: int  # lines per section (helped, hurt, crashed)
    chars: int  # a description cut to this length
    reason_chars: int  # a crash reason cut to this length (0: none)


# Lessons from earlier sessions, from the richest to the most condensed; when none fits the
# room the history leaves, the block is dropped.
LESSON_LEVELS = (LessonLevel(10, 100, 120), LessonLevel(6, 60, 60), LessonLevel(3, 40, 0))


@dataclass
class RepairTask:
    crashed: Experiment
    log_tail: str


SYSTEM = """\
You are an ML researcher running experiments on your own, one at a time. Each experiment \
changes {editable}, trains for a fixed wall-clock budget of {budget} s, and is judged by \
{metric} ({direction} is better): a result that beats the best is kept and becomes the new \
best; anything else is discarded and the next experiment starts again from the best.

Rules:
- Change only {editable}. Every other file (data, tokenizer, evaluation) is fixed.
- One idea per experiment, so the result says whether the idea works.
- Keep the run within the time budget and the device's memory; a crash wastes a run.
- Cockpit measures every result itself. It times the run (training past the budget is a \
crash), and when {editable} hands its model over (hand_over(model) from evaluate.py), \
cockpit evaluates it in a process of its own on a validation split the run cannot read, \
after checking that the model is causal (later tokens must not change earlier logits). \
A printed {metric} that differs from the measured one is a crash; changing only the seed \
is never kept. Make the model better, not the number.
- Do not repeat an idea the history shows, unless you say why it deserves another try.
- Follow the human's steering notes.

"""

# How the answer comes back: search/replace blocks in the reply (the llm agent) ...
EDIT_BLOCKS = """\
Answer in exactly this format:

HYPOTHESIS: <why this change should improve {metric}, one or two sentences>
DESCRIPTION: <what changes, one line under 80 characters>

{editable}
<<<<<<< SEARCH
<lines copied exactly from the current {editable}>
=======
<the lines that replace them>
>>>>>>> REPLACE

Use as many blocks as the change needs; each SEARCH must match exactly one place in the \
current file. For a large rewrite, send instead the complete new file in one ```python block."""

# ... or edits made in place by a coding agent that works in the workspace (command).
EDIT_IN_PLACE = """\
You work in the experiment's workspace: make the change by editing {editable} in place. \
Do not edit, create or delete any other file, do not run the training, and do not commit \
(all of that is undone). When done, print two lines:

HYPOTHESIS: <why this change should improve {metric}, one or two sentences>
DESCRIPTION: <what changes, one line under 80 characters>"""

TASK = "Propose the next experiment: the one most likely to improve {metric} from the best."

REPAIR = """\
Experiment #{n} ("{description}") crashed: {reason}
Its hypothesis: {hypothesis}

The last lines of its log:
```
{log_tail}
```

The {editable} below is the crashed version. Fix the cause of the crash and keep the idea, \
answering in the same format. If the idea cannot work, answer with one line \
`ABANDON: <why>` instead."""


def estimate_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def build_messages(ctx: AgentContext, max_tokens: int, repair: RepairTask | None = None,
                   answer_format: str = EDIT_BLOCKS) -> list[dict]:
    """System and user messages for a proposal (or a repair), within max_tokens if the
    condensed history allows; the fixed parts (program, file) are never cut."""
    system = (SYSTEM + answer_format).format(editable=ctx.editable, budget=ctx.time_budget,
                                             metric=ctx.metric, direction=ctx.direction)
    head = "\n\n".join(p for p in (_program(ctx), _setup(ctx), _notes(ctx)) if p)
    tail = "\n\n".join((_current_file(ctx, repair), _task(ctx, repair)))
    fixed = estimate_tokens(system) + estimate_tokens(head) + estimate_tokens(tail)
    history, room = "", 0
    for level in LEVELS:  # the history first: lessons get the room it leaves
        if level.terse:
            level = _fit_terse(ctx, level, repair, max_tokens - fixed)
        history = _history(ctx, level, repair)
        room = max_tokens - fixed - estimate_tokens(history)
        if room >= 0:
            break
    lessons = ""
    if ctx.prior:
        for lesson_level in LESSON_LEVELS:
            text = _lessons(ctx, lesson_level)
            if estimate_tokens(text) + 1 <= room:  # + 1: the blank line that joins it
                lessons = text
                break
    user = "\n\n".join(p for p in (head, lessons, history, tail) if p)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _fit_terse(ctx: AgentContext, level: Level, repair: RepairTask | None, room: int) -> Level:
    """The terse level with older descriptions as long as the remaining room allows."""
    older = max(1, sum(_ran(e) for e in ctx.history) - level.recent_rows)
    bare = estimate_tokens(_history(ctx, level, repair))
    width = (room - bare) * CHARS_PER_TOKEN // older - 1  # -1: the budget's rounding
    return replace(level, old_chars=max(MIN_TERSE, min(MAX_TERSE, width)))


def as_document(messages: list[dict]) -> str:
    """The messages as one Markdown file, for an agent that reads a prompt file."""
    return "\n\n".join(m["content"] for m in messages) + "\n"


def prompt_tokens(messages: list[dict]) -> int:
    return sum(estimate_tokens(m["content"]) for m in messages)


# -- sections ----------------------------------------------------------------------
def _program(ctx: AgentContext) -> str:
    text = ctx.program.strip() or "(program.md is empty: improve the metric)"
    return f"# Research program (program.md, written by the human)\n\n{text}"


def _setup(ctx: AgentContext) -> str:
    lines = ["# Setup",
             f"- Each run trains for {ctx.time_budget} s of wall clock, then is evaluated.",
             f"- Metric: {ctx.metric}, {ctx.direction} is better."]
    if ctx.hardware:
        lines.append(f"- Machine: {ctx.hardware}.")
    best = _best(ctx)
    if ctx.line:
        lines.append(f"- The research is a tree of lines; you work on line {ctx.line}: its best "
                     "is the file below, and your result is judged against it.")
    if best is not None and best.metric is not None:
        facts = [f"{ctx.metric} {best.metric:.6f}"]
        if best.memory_gb:
            facts.append(f"peak memory {best.memory_gb:.1f} GB")
        for key in ("num_params_M", "num_steps", "total_tokens_M", "mfu_percent",
                    "training_seconds"):
            if key in best.summary:
                facts.append(f"{key} {best.summary[key]}")
        lines.append(f"- The best run (#{best.n}): " + ", ".join(facts) + ".")
    return "\n".join(lines)


def _best(ctx: AgentContext) -> Experiment | None:
    """The best the proposal builds on: its line's (a context made without one: the last
    keep)."""
    return ctx.best if ctx.best is not None else best_of(ctx.history)


def _notes(ctx: AgentContext) -> str:
    if not ctx.notes:
        return ""
    return "# The human's steering notes (latest last; follow them)\n\n" + "\n".join(
        f"- {one_line(note, 400)}" for note in ctx.notes)


def _ran(e: Experiment) -> bool:
    return e.finished and e.status != "rejected"


def _history(ctx: AgentContext, level: Level, repair: RepairTask | None) -> str:
    finished = [e for e in ctx.history if e.finished]
    done = [e for e in finished if _ran(e)]
    rejected = _rejected(finished, level)
    pending = _pending(ctx)
    if not done:
        return "\n\n".join(p for p in ("# History\n\nNo experiments yet.", pending, rejected)
                           if p)
    best, base = _best(ctx), next((e for e in done if e.metric is not None), None)
    counts = {s: sum(e.status == s for e in finished)
              for s in ("keep", "discard", "crash", "rejected")}
    stopped = sum(e.early_stop is not None for e in done)
    header = (f"# History: {len(done)} experiments ({counts['keep']} kept, {counts['discard']} "
              f"discarded" + (f" ({stopped} stopped early)" if stopped else "")
              + f", {counts['crash']} crashed)"
              + (f"; {counts['rejected']} ideas rejected by the human, listed apart"
                 if counts["rejected"] else ""))
    facts = []
    if base is not None:
        facts.append(f"baseline #{base.n} {ctx.metric} {base.metric:.6f}")
    if best is not None and best.metric is not None:
        on = f" on line {ctx.line}" if ctx.line else ""
        facts.append(f"best{on} #{best.n} {best.metric:.6f} ({best.description})")
    lines = [header, "", "; ".join(facts) + ".", "",
             f"   # status   {ctx.metric:>9}    vs best  description"]
    recent_from = len(done) - level.recent_rows
    if level.terse and recent_from > 0:
        lines.insert(-1, "Older rows are terse: k keep, d discard, s stopped early, c crash; "
                         "the change vs the best before it.")
    for i, e in enumerate(done):
        recent = i >= recent_from or e is best or e is base
        if recent or not level.terse:
            lines.append(_row(e, 120 if recent else level.old_chars,
                              160 if recent else level.old_reason_chars))
        else:
            lines.append(_terse_row(e, level.old_chars))
    parts = ["\n".join(lines)]
    near = _near_misses(ctx, done, level)
    parts += [p for p in (pending, near, rejected) if p]
    shown = [e for e in done if e.n != (base.n if base else None)][-level.details:] \
        if level.details else []
    if repair is not None:
        shown = [e for e in shown if e.n != repair.crashed.n]
    if shown:
        parts.append("# Recent experiments in detail\n\n" + "\n\n".join(
            _detail(e, ctx.metric, level.diff_lines) for e in shown))
    return "\n\n".join(parts)


def _pending(ctx: AgentContext) -> str:
    """Ideas already on their way (running, or waiting for a worker or the human): a new
    proposal should not repeat them."""
    pending = [e for e in ctx.history if not e.finished and e.description != "baseline"]
    if not pending:
        return ""
    return ("# Already being tested (results pending; do not repeat these)\n\n"
            + "\n".join(f"- #{e.n}: {one_line(e.description, 120)}" for e in pending))


def _status(e: Experiment) -> str:
    return "stopped" if e.early_stop is not None else e.status or "?"


def _row(e: Experiment, chars: int, reason_chars: int) -> str:
    metric = f"{e.metric:.6f}" if e.metric is not None and e.status != "crash" else "-"
    if e.delta_best is not None and e.status != "crash":
        delta = f"{e.delta_best:+.6f}"
    else:
        delta = "baseline" if e.description == "baseline" else "-"
    text = one_line(e.description, chars)
    if e.repair_of:
        text += f" [fix of #{e.repair_of}]"
    if e.early_stop is not None:
        text += f" ({describe_stop(e.early_stop)})"
    elif e.status == "crash" and reason_chars and e.reason:
        text += f" (crash: {one_line(e.reason, reason_chars)})"
    return f"{e.n:>4} {_status(e):<8} {metric:>9} {delta:>10}  {text}"


def _terse_row(e: Experiment, chars: int) -> str:
    delta = f"{e.delta_best:+.4f}" if e.delta_best is not None and e.status != "crash" else "-"
    fix = f" [fix of #{e.repair_of}]" if e.repair_of else ""
    text = one_line(e.description, chars) if chars else ""
    return f"{e.n} {_status(e)[0]} {delta} {text}{fix}"


def _gain(e: Experiment, direction: str) -> float:
    """The gain of an experiment known to have a delta (a near miss, a measured one)."""
    gain = gain_of(e.delta_best, direction)
    assert gain is not None
    return gain


def _near_misses(ctx: AgentContext, done: list[Experiment], level: Level) -> str:
    """Discards that measured better than the best before them, within the noise."""
    near = [e for e in done if e.near_miss(ctx.direction)]
    if not near or not level.near_misses:
        return ""
    near.sort(key=lambda e: -_gain(e, ctx.direction))
    lines = [f"# Near-misses: better than the best before them, but within the noise "
             f"({len(near)}; two together may clear it)", ""]
    for e in near[:level.near_misses]:
        gain = _gain(e, ctx.direction)
        units = f" = {e.confidence:.1f}x the noise" if e.confidence is not None else ""
        lines.append(f"- #{e.n} {one_line(e.description, 100)}: gain {gain:.6f}{units}")
    if len(near) > level.near_misses:
        lines.append(f"- ... and {len(near) - level.near_misses} smaller ones")
    return "\n".join(lines)


def _rejected(finished: list[Experiment], level: Level) -> str:
    """Ideas the human rejected before they ran: no result, and the human's reason."""
    rejected = [e for e in finished if e.status == "rejected"]
    if not rejected:
        return ""
    chars = level.old_chars if level.terse else 100
    lines = ["# Ideas the human rejected (never run, so no result; do not propose them "
             "again unless the notes ask)", ""]
    for e in rejected:
        reason = e.reason.removeprefix("rejected by the human:").strip() or "no reason given"
        lines.append(f"- #{e.n} {one_line(e.description, chars)}: \"{one_line(reason, 200)}\"")
    return "\n".join(lines)


def _lessons(ctx: AgentContext, level: LessonLevel) -> str:
    """What earlier sessions in this workspace measured: what helped, what hurt, what
    crashed, each with its effect (against the best of its own session)."""
    prior = [e for e in ctx.prior if _ran(e)]
    if not prior:
        return ""
    sessions = len({e.session for e in prior})
    measured = [e for e in prior if e.status in ("keep", "discard") and e.early_stop is None
                and e.delta_best is not None]
    helped = sorted((e for e in measured if e.status == "keep"),
                    key=lambda e: -_gain(e, ctx.direction))
    hurt = sorted((e for e in measured if e.status == "discard"
                   and _gain(e, ctx.direction) <= 0),
                  key=lambda e: _gain(e, ctx.direction))
    stopped = [e for e in prior if e.early_stop is not None]
    crashed = [e for e in prior if e.status == "crash"]
    out = [f"# Lessons from earlier sessions ({len(prior)} experiments in {sessions} "
           f"session{'s' if sessions != 1 else ''} on the same data; each effect is vs the "
           f"best of its own session; these configurations were measured already)"]

    def effect(e: Experiment) -> str:
        units = f", {e.confidence:+.1f}x the noise" if e.confidence is not None else ""
        return f"{ctx.metric} {e.delta_best:+.4f}{units}"

    def name(e: Experiment) -> str:
        where = f"{e.session} #{e.n}" if e.session else f"#{e.n}"
        return f"{one_line(e.description, level.chars)} ({where})"

    sections = [("Helped (kept)", helped, effect), ("Hurt", hurt, effect),
                ("Stopped early, behind the best", stopped,
                 lambda e: describe_stop(e.early_stop)),
                ("Crashed", crashed,
                 lambda e: one_line(e.reason, level.reason_chars) if level.reason_chars else "")]
    for title, items, words in sections:
        if not items:
            continue
        out += ["", f"{title}: {len(items)}"]
        for e in items[:level.items]:
            said = words(e)
            out.append(f"- {name(e)}" + (f": {said}" if said else ""))
        if len(items) > level.items:
            out.append(f"- ... {len(items) - level.items} more")
    return "\n".join(out)


def _detail(e: Experiment, metric: str, diff_lines: int) -> str:
    result = e.status or "?"  # only finished experiments are shown: the status is set
    if e.early_stop is not None:
        result = f"discarded, {describe_stop(e.early_stop)}"
    elif e.metric is not None and e.status != "crash":
        result += f", {metric} {e.metric:.6f}"
        if e.delta_best is not None:
            result += f" ({e.delta_best:+.6f} vs the best before it)"
    if e.reason and e.early_stop is None:
        result += f": {one_line(e.reason, 300)}"
    out = [f"## #{e.n}: {one_line(e.description)}", f"Hypothesis: {one_line(e.hypothesis, 400)}",
           f"Result: {result}"]
    if e.diff and diff_lines:
        diff = e.diff.splitlines()
        cut = diff[:diff_lines]
        if len(diff) > diff_lines:
            cut.append(f"... ({len(diff) - diff_lines} more lines)")
        out.append("```diff\n" + "\n".join(cut) + "\n```")
    return "\n".join(out)


def _current_file(ctx: AgentContext, repair: RepairTask | None) -> str:
    what = (f"the crashed version of #{repair.crashed.n}" if repair
            else "the best version; your edits apply to it")
    fence = "```python" if ctx.editable.endswith(".py") else "```"
    return f"# Current {ctx.editable} ({what})\n\n{fence}\n{ctx.source.rstrip()}\n```"


def _task(ctx: AgentContext, repair: RepairTask | None) -> str:
    if repair is None:
        return "# Task\n\n" + TASK.format(metric=ctx.metric)
    e = repair.crashed
    return "# Task: repair a crash\n\n" + REPAIR.format(
        n=e.n, description=one_line(e.description), reason=one_line(e.reason, 400),
        hypothesis=one_line(e.hypothesis, 400), log_tail=repair.log_tail.rstrip(),
        editable=ctx.editable)


