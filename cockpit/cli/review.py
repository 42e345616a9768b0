"""The morning after: `cockpit noise`, `confirm`, `report` and `finalize`.

noise and confirm re-run commits of a session (never as experiments: as `measure`
events in its journal); report and finalize only read the journal and git.
"""
from __future__ import annotations

import statistics
from pathlib import Path

from cockpit import protocol
from cockpit.cli.args import workspace_of
from cockpit.client.bootstrap import shown_tag
from cockpit.domain.exits import EXIT_FOUND, EXIT_OK
from cockpit.domain.judge import Noise, welch_t
from cockpit.domain.state import SessionState
from cockpit.workspace.checks import WorkspaceError, check_workspace
from cockpit.workspace.config import load_config
from cockpit.workspace.finalize import finalize
from cockpit.workspace.history import History, short
from cockpit.workspace.journal import Journal
from cockpit.workspace.paths import journal_path
from cockpit.workspace.report import SessionFacts, write_report

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
    report = sub.add_parser("report", help="write progress.png and report.md from the "
                            "session's journal")
    report.add_argument("--out", type=Path, help="the directory to write them in (default: "
                        "the workspace)")
    final = sub.add_parser("finalize", help="the kept changes as a clean branch, one commit "
                           "each (the session branch is left as it is)")
    final.add_argument("--branch", help="default: autoresearch/<tag>-final (line K: "
                       "autoresearch/<tag>-K-final)")
    final.add_argument("--line", type=int, default=0, metavar="K",
                       help="the line of the search tree to finalize (default 0, the "
                       "session's own)")
    for parser in (noise, confirm, report, final):
        parser.add_argument("--tag", help="the session (default: the latest)")


def run(args) -> int:
    runs = getattr(args, "runs", None)
    if runs is not None and runs < 2:
        raise WorkspaceError(f"--runs must be at least 2 (a spread needs two runs), got {runs}")
    if getattr(args, "top", 0) < 0:
        raise WorkspaceError(f"--top must be 0 or more, got {args.top}")
    workspace = workspace_of(args)
    config = load_config(workspace)
    check_workspace(workspace, config.experiment.editable, tuple(config.experiment.fixed))
    tag = shown_tag(workspace, args.tag)
    return {"noise": cmd_noise, "confirm": cmd_confirm, "report": cmd_report,
            "finalize": cmd_finalize}[args.command](args, workspace, config, tag)


def _events(workspace: Path, tag: str) -> list[dict]:
    return Journal(journal_path(workspace, tag)).read()


def measure(workspace: Path, config, tag: str, plan: list[tuple[str, int, str]]) -> dict:
    """Re-run commits as jobs of the session's pool: through the running session when there
    is one, else in a session of their own here. commit -> the values measured now."""
    from cockpit.workspace.lock import read_session

    running = read_session(workspace)
    if running is not None and running.alive:
        if running.tag != tag:
            raise WorkspaceError(f"the running session is {running.tag}, not {tag}: stop it "
                                 "first, or leave --tag out")
        return _measure_in_session(workspace, plan)
    from cockpit.session.coordinator import Coordinator
    from cockpit.session.printer import HeadlessPrinter
    from cockpit.session.server import serve_session

    events = _events(workspace, tag)
    _as_measured(config, events)
    coordinator = Coordinator(workspace, config, tag)
    coordinator.observers.append(HeadlessPrinter(metric=config.metric.name,
                                                 state=lambda: coordinator.state))
    start = len(events)
    ending = serve_session(coordinator, None, background=False, measure=plan)
    if coordinator.interrupted:
        raise KeyboardInterrupt
    if ending.code:
        raise WorkspaceError(ending.why)
    return _values_since(coordinator.events[start:], plan)


def _as_measured(config, events: list[dict]) -> None:
    """Re-runs measure what the session measured: its recorded budget and hard timeout,
    whatever cockpit.toml says today (a `run --budget 60` session is confirmed at 60 s)."""
    recorded: dict = next((e["config"].get("experiment", {}) for e in reversed(events)
                           if e["event"] == "session" and e.get("config")), {})
    for name in ("time_budget", "timeout"):
        if name in recorded:
            setattr(config.experiment, name, recorded[name])


def _measure_in_session(workspace: Path, plan: list[tuple[str, int, str]]) -> dict:
    """Queue the re-runs in the running session and wait for them, printing as they land."""
    import queue

    from cockpit.client.connection import Subscription, request

    events: queue.Queue = queue.Queue()
    count = request(workspace, "status")["status"]["events"]
    feed = Subscription(workspace, count, events.put)
    try:
        for commit, runs, purpose in plan:
            answer = request(workspace, "measure", commits=[commit], runs=runs, purpose=purpose)
            if not answer.get("ok"):
                raise WorkspaceError(answer.get("message", "the session refused"))
        print(f"queued in the running session: {sum(r for _, r, _ in plan)} re-runs")
        wanted = {(c, p): r for c, r, p in plan}
        seen: list[dict] = []
        while sum(min(r, sum(1 for e in seen if (e["commit"], e["purpose"]) == key))
                  for key, r in wanted.items()) < sum(wanted.values()):
            message = events.get()
            if message["type"] == protocol.CLOSED:
                raise WorkspaceError("the session ended before the re-runs were done")
            if message["type"] != protocol.JOURNAL:
                continue
            for event in message["events"]:
                if event["event"] == "measure" and (event.get("commit"), event.get("purpose")) \
                        in wanted:
                    value = event.get("metric")
                    print(f"  {short(event['commit'])} {event['purpose']}: "
                          + (f"{value:.6f}" if value is not None else f"crash {event['reason']}")
                          + (f" (left out: {event['disturbed']}; measured again)"
                             if event.get("disturbed") else ""))
                    if not event.get("disturbed"):  # its place is taken by another run
                        seen.append(event)
        return _values_since(seen, plan)
    finally:
        feed.close()


def _values_since(events: list[dict], plan) -> dict:
    commits = {c for c, _, _ in plan}
    values: dict[str, list[float]] = {c: [] for c in commits}
    for e in events:
        if e.get("event") == "measure" and e.get("commit") in commits \
                and e.get("metric") is not None and not e.get("disturbed"):
            values[e["commit"]].append(e["metric"])
    return values


def cmd_noise(args, workspace, config, tag) -> int:
    state = SessionState.from_events(_events(workspace, tag))
    best = state.best
    if best is None or best.commit is None:
        raise WorkspaceError(f"session {tag} has no measured commit yet: run `cockpit run`")
    values = measure(workspace, config, tag, [(best.commit, args.runs, "noise")])[best.commit]
    if len(values) < 2:
        print("fewer than 2 runs produced a metric: no noise floor measured")
        return EXIT_FOUND
    noise = Noise(values)
    print(f"noise of {short(best.commit)} over {len(values)} runs: std {noise.std:.6f}, "
          f"MAD {noise.mad:.6f}")
    return EXIT_OK


def cmd_confirm(args, workspace, config, tag) -> int:
    events = _events(workspace, tag)
    state = SessionState.from_events(events)
    base, best = state.baseline, state.best
    if base is None or best is None or best is base:
        raise WorkspaceError(f"session {tag} has no kept change over its baseline to confirm")
    facts = SessionFacts(state, None, 0.0, 0.0, 0.0)
    others = [e for e in facts.kept_changes if e is not best][: args.top]
    chosen = [base, best, *others]
    runs = measure(workspace, config, tag, [(e.commit, args.runs, "confirm") for e in chosen])
    metric = state.judged_by  # as the session judged, whatever cockpit.toml says today
    print(f"\n{'commit':8} {'mean':>10} {'std':>9} {'vs baseline':>12} {'t':>6}  verdict")
    base_values = runs[base.commit]
    holds_all = True
    for e in chosen:
        values = runs[e.commit]
        if not values:
            print(f"{short(e.commit):8} every run crashed")
            holds_all = False
            continue
        mean = statistics.fmean(values)
        std = Noise(values).std
        if e is base:
            print(f"{short(e.commit):8} {mean:10.6f} {std:9.6f} {'':>12} {'':>6}  baseline")
            continue
        if not base_values:
            print(f"{short(e.commit):8} {mean:10.6f} {std:9.6f}  no baseline run to compare")
            holds_all = False
            continue
        gain = metric.gain(mean, statistics.fmean(base_values))
        worse, better = (base_values, values) if metric.lower_is_better else (values, base_values)
        t = welch_t(worse, better)  # positive: the change beats the baseline
        holds = t is not None and t > HOLDS_T
        holds_all &= holds or e is not best
        verdict = ("holds beyond the noise" if holds else "not distinguishable from noise")
        print(f"{short(e.commit):8} {mean:10.6f} {std:9.6f} {gain:+12.6f} "
                    f"{t if t is not None else float('nan'):6.1f}  {verdict}: {e.description}")
    return EXIT_OK if holds_all else EXIT_FOUND


def cmd_report(args, workspace, config, tag) -> int:
    events = _events(workspace, tag)
    out = (args.out or workspace).expanduser()
    if not out.is_dir():
        raise WorkspaceError(f"--out {args.out}: not a directory")
    plot, md = write_report(events, out.resolve())
    state = SessionState.from_events(events)
    base, best = state.baseline, state.best
    line = f"wrote {plot.name} and {md.name}: {len(state.ran)} experiments"
    if base is not None and best is not None:
        line += f", {state.metric} {base.metric:.6f} -> {best.metric:.6f}"
    print(line)
    return EXIT_OK


def cmd_finalize(args, workspace, config, tag) -> int:
    events = _events(workspace, tag)
    state = SessionState.from_events(events)
    line = args.line
    branch = args.branch or f"autoresearch/{tag}{f'-{line}' if line else ''}-final"
    noise = SessionFacts.from_events(events).noise
    made = finalize(History(workspace), state, branch, noise.spread if noise else None, line)
    print(f"branch {branch}: {len(made)} commit{'s' * (len(made) != 1)} on "
          f"{short(state.base)}, one per kept change" + (f" of line {line}" if line else "")
          + f" (session branch {state.branch} unchanged)")
    return EXIT_OK
