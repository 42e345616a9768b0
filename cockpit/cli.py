"""`cockpit`: the command line. User mistakes end in one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from cockpit.config import CHOICES, ConfigError, load_config, set_value
from cockpit.history import History, HistoryError
from cockpit.loop import LoopError, ResearchLoop
from cockpit.workspace import (WorkspaceError, check_workspace, fresh_tag, init_workspace,
                               latest_session, validate_tag)

USER_ERRORS = (ConfigError, HistoryError, LoopError, WorkspaceError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cockpit",
        description="An autonomous ML research loop: an agent edits train.py, each run gets a "
        "fixed time budget, the metric decides keep or discard, git records every step.",
    )
    parser.add_argument("-C", "--workspace", type=Path, default=Path("."),
                        help="the workspace directory (default: the current one)")
    sub = parser.add_subparsers(dest="command")

    init = sub.add_parser("init", help="scaffold a new workspace (program.md, train.py, "
                          "prepare.py, cockpit.toml, a git repo)")
    init.add_argument("directory", type=Path)

    run = sub.add_parser("run", help="run the research loop")
    add_run_options(run)
    return parser


def add_run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument("--headless", action="store_true",
                     help="no screen: print one line per step (for tmux, nohup, CI)")
    run.add_argument("--experiments", type=int, metavar="N",
                     help="stop after N experiments (default: run until stopped)")
    run.add_argument("--budget", type=int, metavar="SECONDS",
                     help="training time budget per experiment (overrides cockpit.toml)")
    run.add_argument("--timeout", type=int, metavar="SECONDS",
                     help="hard kill of a run (default: 2 x budget + 120)")
    run.add_argument("--agent", choices=CHOICES[("agent", "kind")],
                     help="who proposes the next change (default: tune, offline)")
    run.add_argument("--tag", help="session name: branch autoresearch/TAG "
                     "(default: resume the latest session, or a new one named after today)")
    run.add_argument("--train-command", metavar="CMD",
                     help='how to run training (default: "python train.py")')


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "init":
            return cmd_init(args)
        if args.command is None:  # plain `cockpit`: run the loop here
            args = parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "run"])
        return cmd_run(args)
    except USER_ERRORS as exc:
        print(f"cockpit: {exc}", file=sys.stderr)
        return 2


def cmd_init(args) -> int:
    target = args.directory
    done = init_workspace(target)
    where = target.resolve()
    if done:
        print(f"workspace ready in {where}: " + "; ".join(done))
    else:
        print(f"{where} is already a workspace; nothing to do")
    print(f"next: cd {target} && cockpit run --headless")
    return 0


def cmd_run(args) -> int:
    workspace = args.workspace.resolve()
    if not workspace.is_dir():
        raise WorkspaceError(f"{workspace} does not exist: create a workspace with "
                             f"`cockpit init {args.workspace}`")
    config = load_config(workspace)
    overrides = {
        ("experiment", "time_budget"): args.budget,
        ("experiment", "timeout"): args.timeout,
        ("experiment", "train_command"): args.train_command,
        ("agent", "kind"): args.agent,
    }
    for (section, key), value in overrides.items():
        if value is not None:
            set_value(config, section, key, value,
                      source="--" + {"time_budget": "budget"}.get(key, key.replace("_", "-")))
    if args.experiments is not None and args.experiments < 1:
        raise ConfigError("--experiments must be at least 1")
    check_workspace(workspace, config.experiment.editable)
    history = History(workspace)
    tag = validate_tag(args.tag) if args.tag else (
        latest_session(workspace) or fresh_tag(history.branch_exists))

    from cockpit.headless import HeadlessPrinter

    printer = HeadlessPrinter(metric=config.metric.name)
    loop = ResearchLoop(workspace, config, tag, on_event=printer.on_event,
                        on_output=printer.on_output)
    interrupted = _stop_on_signals(loop, printer)
    printer.say(f"cockpit: {config.agent.kind} agent, {config.experiment.time_budget} s budget, "
                f"`{config.experiment.train_command}` in {workspace}")
    why = loop.run(args.experiments)
    printer.say(f"done: {why}. Results: results.tsv, experiments.md")
    return 130 if interrupted() else 0


def _stop_on_signals(loop: ResearchLoop, printer) -> callable:
    """First Ctrl-C (or SIGTERM) ends the current run and records it; a second one quits."""
    count = 0

    def handle(signum, frame):
        nonlocal count
        count += 1
        if count > 1:
            raise KeyboardInterrupt
        printer.say("stopping: ending the current run (Ctrl-C again to quit at once)")
        loop.request_stop(now=True)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return lambda: count > 0


if __name__ == "__main__":
    sys.exit(main())
