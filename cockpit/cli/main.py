"""`cockpit`: the command line. User mistakes end in one line on stderr and exit code 2
(every exit code is in cockpit.domain.exits)."""
from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path
from typing import NoReturn

from cockpit.cli import notify, review, serve, verbs
from cockpit.cli.args import workspace_of
from cockpit.cli.options import (
    add_agent_options,
    add_run_options,
    auto_approve_of,
    run_config,
    session_options,
)
from cockpit.domain.errors import LOGGED, CockpitError
from cockpit.domain.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USER
from cockpit.workspace.checks import WorkspaceError, check_workspace
from cockpit.workspace.config import Config, load_config
from cockpit.workspace.paths import CONFIG_NAME, session_log
from cockpit.workspace.scaffold import init_workspace
from cockpit.workspace.sessions import validate_tag

MACHINE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


class Parser(argparse.ArgumentParser):
    """argparse, with its mistakes said in one line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        raise WorkspaceError(f"{message} (see `{self.prog} --help`)")


def build_parser(config: Config | None = None, source: str = "") -> argparse.ArgumentParser:
    """The command line; `config` (cockpit.toml's, named by `source`) sets the defaults
    the help shows."""
    parser = Parser(
        prog="cockpit",
        description="An autonomous ML research loop: an agent edits train.py, each run gets a "
        "fixed time budget, the metric decides keep or discard, git records every step.",
    )
    parser.add_argument("-C", "--workspace", type=Path, default=Path("."),
                        help="the workspace directory (default: the current one)")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)

    init = sub.add_parser("init", help="scaffold a new workspace (program.md, train.py, "
                          "prepare.py, cockpit.toml, a git repo)")
    init.add_argument("directory", type=Path)

    run = sub.add_parser("run", help="run the research session")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--headless", action="store_true",
                      help="the session in the foreground, printing one line per step "
                      "(cron, CI, nohup); Ctrl-C stops it")
    mode.add_argument("--detach", action="store_true",
                      help="start the session in the background and return (attach with "
                      "`cockpit`, steer with `cockpit status/pause/steer/...`)")
    run.add_argument("--background", action="store_true", help=argparse.SUPPRESS)
    add_run_options(run, config, source)

    verbs.add_verbs(sub)

    doctor = sub.add_parser("doctor", help="check the workspace, the data, the device and the "
                            "configured model (one tiny request), and say what to fix")
    doctor.add_argument("--agent", choices=("tune", "llm", "command"),
                        help="the agent to check (default: cockpit.toml's)")
    add_agent_options(doctor, config.agent if config else None, source)

    replay = sub.add_parser("replay", help="step through a session's experiments in the "
                            "cockpit (kept or not: diff, log, metric)")
    replay.add_argument("--tag", help="the session to replay (default: the latest)")
    review.add_commands(sub)
    serve.add_command(sub, config, source)
    notify.add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(*help_config(argv))
    try:
        args = parser.parse_args(default_to_run(parser, argv))
        return dispatch(args)
    except CockpitError as exc:
        print(f"cockpit: {exc}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("cockpit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # a full disk, a read-only file: the machine's state, in one line
        if exc.errno not in MACHINE_ERRORS:
            return _logged_or_raise(exc)
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"cockpit: {exc.strerror}{where}: free the space or fix the permission, then "
              "run again (nothing recorded is lost)", file=sys.stderr)
        return EXIT_USER
    except Exception as exc:
        return _logged_or_raise(exc)


def help_config(argv: list[str]) -> tuple[Config | None, str]:
    """For --help: the workspace's cockpit.toml, so the defaults shown are the ones a run
    would use (none, quietly, when it is missing or wrong: the run itself says why)."""
    if not {"-h", "--help"} & set(argv):
        return None, ""
    workspace = Path(".")
    for i, arg in enumerate(argv[:-1]):
        if arg in ("-C", "--workspace"):
            workspace = Path(argv[i + 1])
    if not (workspace / CONFIG_NAME).is_file():
        return None, ""
    try:
        return load_config(workspace), CONFIG_NAME
    except CockpitError:
        return None, ""


def _logged_or_raise(exc: BaseException) -> int:
    """A session's bug whose traceback the session already printed exits 4, not twice."""
    if getattr(exc, "__dict__", {}).get(LOGGED):
        return EXIT_FAILED
    raise exc


def dispatch(args) -> int:
    if args.command == "init":
        return cmd_init(args)
    if args.command in verbs.VERBS:
        return verbs.run_verb(args)
    if args.command == "replay":
        from cockpit.cli.cockpit import replay

        return replay(workspace_of(args), args.tag)
    if args.command in review.COMMANDS:
        return review.run(args)
    if args.command in ("serve", "notify"):
        return {"serve": serve, "notify": notify}[args.command].run(args)
    if args.command == "doctor":
        from cockpit.cli.doctor import cmd_doctor

        return cmd_doctor(args)
    return cmd_run(args)


def cmd_init(args) -> int:
    target = args.directory
    done = init_workspace(target)
    where = target.resolve()
    if done:
        print(f"workspace ready in {where}: " + "; ".join(done))
    else:
        print(f"{where} is already a workspace; nothing to do")
    print(f"next: cd {target} && cockpit run --headless")
    return EXIT_OK


def cmd_run(args) -> int:
    from cockpit.client.bootstrap import choose_tag, require_commits, start_detached
    from cockpit.session.sandboxing import check_footguns
    from cockpit.workspace.lock import read_session

    workspace = workspace_of(args)
    config = run_config(workspace, args)
    check_workspace(workspace, config.experiment.editable, tuple(config.experiment.fixed))
    for warning in check_footguns(config, workspace):
        print(f"cockpit: warning: {warning}", file=sys.stderr)
    if args.tag:
        validate_tag(args.tag)
    require_commits(workspace)
    running = read_session(workspace)
    if args.headless or args.detach:
        if running is not None and running.alive:
            raise WorkspaceError(f"a cockpit {running.described} is already running here: "
                                 "`cockpit` attaches to it, `cockpit stop` ends it")
        tag = choose_tag(workspace, args.tag, running)
        if args.detach:
            pid, log = start_detached(workspace, tag, session_options(args))
            print(f"session {tag} started in the background (pid {pid}); log: {log}")
            print("attach with `cockpit`; see `cockpit status`; end it with `cockpit stop`")
            return EXIT_OK
        return run_headless(workspace, config, tag, args)
    from cockpit.cli.cockpit import open_cockpit

    return open_cockpit(workspace, args, running)


def run_headless(workspace: Path, config, tag: str, args) -> int:
    from cockpit.session.coordinator import Coordinator
    from cockpit.session.printer import HeadlessPrinter
    from cockpit.session.server import serve_session

    asked, default = auto_approve_of(args)
    coordinator = Coordinator(workspace, config, tag, auto_approve=asked,
                              auto_approve_default=default, wait_when_paused=args.background)
    printer = HeadlessPrinter(metric=config.metric.name, state=lambda: coordinator.state)
    coordinator.observers.append(printer)
    printer.say(f"cockpit: {config.agent.kind} agent, {config.experiment.time_budget} s budget, "
                f"`{config.experiment.train_command}` in {workspace}")
    log = str(session_log(workspace, tag)) if args.background else ""
    ending = serve_session(coordinator, args.experiments, args.background, log,
                           companions=[notifier_of(workspace, config, tag),
                                       tracker_of(workspace, config, tag)])
    cost = coordinator.state.cost_usd
    spent = f" Model cost: ${cost:.4f}." if cost else ""
    printer.say(f"done: {ending.why}. Results: results.tsv, experiments.md.{spent}")
    if coordinator.interrupted:
        return EXIT_INTERRUPTED
    return ending.code


def notifier_of(workspace: Path, config, tag: str):
    """The notifier, a client of the session in its process (none without a URL)."""
    from cockpit.notify.notifier import attach

    return lambda since: attach(workspace, config.notify, tag, since)


def tracker_of(workspace: Path, config, tag: str):
    """The tracking export, a process beside the session (none when nothing is tracked)."""
    from cockpit.tracking.companion import attach

    return lambda since: attach(workspace, config.tracking, tag, since)


def default_to_run(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`cockpit [-C DIR] [run options]` means `cockpit [-C DIR] run [run options]`: the
    first word that is not -C and its value decides (an option's value, like `--tag report`,
    is never taken for a command)."""
    commands = next(a.choices for a in parser._actions
                    if isinstance(a, argparse._SubParsersAction))
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-C", "--workspace"):
            i += 2
            continue
        if arg.startswith(("--workspace=",)) or (arg.startswith("-C") and len(arg) > 2):
            i += 1
            continue
        break
    if i >= len(argv):
        return argv + ["run"]
    if argv[i] in commands or argv[i] in ("-h", "--help"):
        return argv
    return argv[:i] + ["run"] + argv[i:]


if __name__ == "__main__":
    sys.exit(main())
