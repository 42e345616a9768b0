"""`cockpit`: the command line. User mistakes end in one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from cockpit import review
from cockpit.config import CHOICES, ConfigError, load_config, set_value
from cockpit.errors import CockpitError
from cockpit.history import History
from cockpit.loop import ResearchLoop
from cockpit.parallel import make_loop
from cockpit.workspace import (
    WorkspaceError,
    check_workspace,
    fresh_tag,
    init_workspace,
    latest_session,
    validate_tag,
)

USER_ERRORS = (CockpitError,)
EXIT_PAUSED = 3  # headless: the loop paused (cost limit, provider down) with no one to resume


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
    add_agent_options(run)

    doctor = sub.add_parser("doctor", help="check the workspace, the data, the device and the "
                            "configured model (one tiny request), and say what to fix")
    doctor.add_argument("--agent", choices=CHOICES[("agent", "kind")],
                        help="the agent to check (default: cockpit.toml's)")
    add_agent_options(doctor)

    replay = sub.add_parser("replay", help="step through a session's experiments in the "
                            "cockpit (kept or not: diff, log, metric)")
    replay.add_argument("--tag", help="the session to replay (default: the latest)")
    review.add_commands(sub)
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
    run.add_argument("--runner", choices=CHOICES[("runner", "kind")],
                     help="where experiments run: local (one at a time), gpus (one worker "
                     "per GPU of this box), ray (workers on a Ray cluster)")
    run.add_argument("--workers", type=int, metavar="N",
                     help="experiments in flight at once (gpus, ray; with the local runner it "
                     "means gpus); default: one per GPU")
    run.add_argument("--auto-approve", action="store_true",
                     help="in the cockpit, run proposals without waiting for approval "
                     "(toggle with A)")


def add_agent_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="MODEL",
                        help="llm agent: a litellm model, e.g. anthropic/claude-sonnet-4-5, "
                        "openai/gpt-4o, ollama/qwen2.5-coder (keys: the provider's env var)")
    parser.add_argument("--api-base", metavar="URL",
                        help="llm agent: an OpenAI-compatible server, e.g. http://localhost:8000/v1")
    parser.add_argument("--agent-cmd", metavar="CMD",
                        help='command agent: e.g. "claude -p" (prompt on stdin) or '
                        '"aider --yes --message-file {prompt_file} train.py"')


def agent_overrides(args) -> dict:
    """(section, key) -> value of the agent options given on the command line."""
    return {("agent", "kind"): args.agent, ("agent", "model"): args.model,
            ("agent", "api_base"): args.api_base, ("agent", "command"): args.agent_cmd}


OPTION_NAMES = {"time_budget": "budget", "command": "agent-cmd"}


def check_runner(config) -> None:
    runner = config.runner
    if runner.kind == "local" and runner.workers > 1:
        raise ConfigError(f"[runner] workers = {runner.workers} needs kind = \"gpus\" or "
                          "\"ray\" (the local runner runs one experiment at a time)")
    if runner.address and runner.kind != "ray":
        raise ConfigError("[runner] address is for kind = \"ray\" only")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(_default_to_run(parser, argv))
    try:
        if args.command == "init":
            return cmd_init(args)
        if args.command == "replay":
            return cmd_replay(args)
        if args.command in review.COMMANDS:
            return review.run(args)
        if args.command == "doctor":
            from cockpit.doctor import cmd_doctor

            return cmd_doctor(args)
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
        **agent_overrides(args),
        ("runner", "workers"): args.workers,
    }
    if args.workers is not None and args.runner is None and config.runner.kind == "local":
        overrides[("runner", "kind")] = "gpus"  # N workers on this box, GPUs or not
    if args.runner is not None:
        overrides[("runner", "kind")] = args.runner
    for (section, key), value in overrides.items():
        if value is not None:
            set_value(config, section, key, value,
                      source="--" + OPTION_NAMES.get(key, key.replace("_", "-")))
    check_runner(config)
    if args.experiments is not None and args.experiments < 1:
        raise ConfigError("--experiments must be at least 1")
    check_workspace(workspace, config.experiment.editable)
    history = History(workspace)
    tag = validate_tag(args.tag) if args.tag else (
        latest_session(workspace) or fresh_tag(history.branch_exists))

    if not args.headless:
        return open_cockpit(args, workspace, config, tag)

    from cockpit.headless import HeadlessPrinter

    printer = HeadlessPrinter(metric=config.metric.name)
    loop = make_loop(workspace, config, tag, on_event=printer.on_event,
                     on_output=printer.on_output)
    interrupted = _stop_on_signals(loop, printer)
    printer.say(f"cockpit: {config.agent.kind} agent, {config.experiment.time_budget} s budget, "
                f"`{config.experiment.train_command}` in {workspace}")
    why = loop.run(args.experiments)
    cost = loop.cost_usd
    spent = f" Model cost: ${cost:.4f}." if cost else ""
    printer.say(f"done: {why}. Results: results.tsv, experiments.md.{spent}")
    if interrupted():
        return 130
    return EXIT_PAUSED if loop.paused_reason else 0


def open_cockpit(args, workspace: Path, config, tag: str) -> int:
    """The TUI: a live session here, or a read-only view when another process runs one."""
    from cockpit import tui

    tui.require_terminal()
    owner = tui.lock_owner(workspace)
    if owner is not None:
        return tui.watch(workspace, config, owner, args.tag)
    loop = make_loop(workspace, config, tag)
    return tui.run_live(workspace, config, loop, args.auto_approve, args.experiments)


def cmd_replay(args) -> int:
    from cockpit import tui

    workspace = args.workspace.resolve()
    config = load_config(workspace) if workspace.is_dir() else None
    check_workspace(workspace, config.experiment.editable if config else "train.py")
    if args.tag:
        validate_tag(args.tag)
    tui.require_terminal()
    return tui.replay(workspace, config, args.tag)


def _default_to_run(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`cockpit [-C DIR] [run options]` means `cockpit [-C DIR] run [run options]`."""
    commands = next(a.choices for a in parser._actions
                    if isinstance(a, argparse._SubParsersAction))
    if any(arg in commands for arg in argv):
        return argv
    i = 0
    while i < len(argv) and argv[i] in ("-C", "--workspace"):
        i += 2
    while i < len(argv) and argv[i].startswith(("-C", "--workspace=")):
        i += 1
    if i < len(argv) and argv[i] in ("-h", "--help"):
        return argv
    return argv[:i] + ["run"] + argv[i:]


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
