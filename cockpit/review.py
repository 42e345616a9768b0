"""The morning after: `cockpit noise`, `confirm`, `report` and `finalize`.

noise and confirm re-run commits of a session (never as experiments: as `measure`
events in its journal); report and finalize only read the journal and git.
"""
from __future__ import annotations

import statistics
from pathlib import Path

from cockpit.config import load_config
from cockpit.finalize import finalize
from cockpit.history import History, short
from cockpit.journal import Journal, SessionState, session_dir
from cockpit.judge import Noise, welch_t
from cockpit.report import SessionFacts, write_report
from cockpit.workspace import (
    WorkspaceError,
    check_workspace,
    latest_session,
    validate_tag,
)

COMMANDS = ("noise", "confirm", "report", "finalize")
HOLDS_T = 2.0  # Welch t above this: the gain is unlikely to be noise (about 95%)


def add_commands(sub) -> None:
    noise = sub.add_parser("noise", help="re-run the best commit to measure the metric's noise")
    noise.add_argument("--runs", type=int, default=3, help="how many runs (default 3)")
    confirm = sub.add_parser("confirm", help="re-run the baseline and the best commit (and "
                             "the top kept ones) and say whether the gain holds beyond noise")
    confirm.add_argument("--runs", type=int, default=3, help="runs per commit (default 3)")
    confirm.add_argument("--top", type=int, default=0, metavar="N",
                         help="also the N kept changes with the largest gains")
    sub.add_parser("report", help="write progress.png and report.md from the session's journal")
    final = sub.add_parser("finalize", help="the kept changes as a clean branch, one commit "
                           "each (the session branch is left as it is)")
    final.add_argument("--branch", help="default: autoresearch/<tag>-final")
    for parser in (noise, confirm, sub.choices["report"], final):
        parser.add_argument("--tag", help="the session (default: the latest)")


def run(args) -> int:
    workspace = args.workspace.resolve()
    config = load_config(workspace) if workspace.is_dir() else None
    check_workspace(workspace, config.experiment.editable if config else "train.py")
    tag = validate_tag(args.tag) if args.tag else latest_session(workspace)
    if tag is None or not (session_dir(workspace, tag) / "journal.jsonl").exists():
        raise WorkspaceError(f"no session {'named ' + tag + ' ' if tag else ''}in {workspace} "
                             "yet: run `cockpit run` first")
    return {"noise": cmd_noise, "confirm": cmd_confirm, "report": cmd_report,
            "finalize": cmd_finalize}[args.command](args, workspace, config, tag)


def _events(workspace: Path, tag: str) -> list[dict]:
    return Journal(session_dir(workspace, tag) / "journal.jsonl").read()


def _loop(workspace: Path, config, tag: str):
    from cockpit.cli import _stop_on_signals
    from cockpit.headless import HeadlessPrinter
    from cockpit.loop import ResearchLoop

    printer = HeadlessPrinter(metric=config.metric.name)
    loop = ResearchLoop(workspace, config, tag, on_event=printer.on_event,
                        on_output=printer.on_output)
    _stop_on_signals(loop, printer)
    return loop, printer


def cmd_noise(args, workspace, config, tag) -> int:
    if args.runs < 2:
        raise WorkspaceError("--runs must be at least 2 to measure a spread")
    loop, printer = _loop(workspace, config, tag)
    loop.open_session()
    try:
        best = loop.state.best
        if best is None:
            raise WorkspaceError(f"session {tag} has no measured commit yet: run `cockpit run`")
        values = loop.measure(best.commit, args.runs, "noise")
        if len(values) < 2:
            printer.say("fewer than 2 runs produced a metric: no noise floor recorded")
            return 1
        loop.record_noise(best.commit, values)
    finally:
        loop.close_session()
    return 0


def cmd_confirm(args, workspace, config, tag) -> int:
    if args.runs < 2:
        raise WorkspaceError("--runs must be at least 2 to tell a gain from noise")
    loop, printer = _loop(workspace, config, tag)
    loop.open_session()
    try:
        state = loop.state
        base, best = state.baseline, state.best
        if base is None or best is None or best is base:
            raise WorkspaceError(f"session {tag} has no kept change over its baseline to confirm")
        facts = SessionFacts(state, None, 0.0, 0.0, 0.0)
        others = [e for e in facts.kept_changes if e is not best][: args.top]
        chosen = [base, best, *others]
        runs = {e.n: loop.measure(e.commit, args.runs, "confirm") for e in chosen}
    finally:
        loop.close_session()
    lower = config.metric.direction == "lower"
    printer.say(f"\n{'commit':8} {'mean':>10} {'std':>9} {'vs baseline':>12} {'t':>6}  verdict")
    base_values = runs[base.n]
    holds_all = True
    for e in chosen:
        values = runs[e.n]
        if not values:
            printer.say(f"{short(e.commit):8} every run crashed")
            holds_all = False
            continue
        mean = statistics.fmean(values)
        std = Noise(values).std
        if e is base:
            printer.say(f"{short(e.commit):8} {mean:10.6f} {std:9.6f} {'':>12} {'':>6}  baseline")
            continue
        gain = statistics.fmean(base_values) - mean if lower else mean - statistics.fmean(base_values)
        t = welch_t(base_values, values) if lower else welch_t(values, base_values)
        holds = t is not None and t > HOLDS_T
        holds_all &= holds or e is not best
        verdict = ("holds beyond the noise" if holds else "not distinguishable from noise")
        printer.say(f"{short(e.commit):8} {mean:10.6f} {std:9.6f} {gain:+12.6f} "
                    f"{t if t is not None else float('nan'):6.1f}  {verdict}: {e.description}")
    return 0 if holds_all else 1


def cmd_report(args, workspace, config, tag) -> int:
    events = _events(workspace, tag)
    plot, md = write_report(events, workspace)
    state = SessionState.from_events(events)
    base, best = state.baseline, state.best
    line = f"wrote {plot.name} and {md.name}: {len(state.ran)} experiments"
    if base is not None and best is not None:
        line += f", {state.metric} {base.metric:.6f} -> {best.metric:.6f}"
    print(line)
    return 0


def cmd_finalize(args, workspace, config, tag) -> int:
    events = _events(workspace, tag)
    state = SessionState.from_events(events)
    branch = args.branch or f"autoresearch/{tag}-final"
    noise = SessionFacts.from_events(events).noise
    made = finalize(History(workspace), state, branch, noise.spread if noise else None)
    print(f"branch {branch}: {len(made)} commit{'s' * (len(made) != 1)} on "
          f"{short(state.base)}, one per kept change (session branch {state.branch} unchanged)")
    return 0
