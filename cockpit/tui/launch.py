"""Opening the cockpit from the command line: attach to the workspace's session, or start
one in the background and attach; offer to resume a session that died; replay."""
from __future__ import annotations

import sys
from pathlib import Path

from cockpit.workspace.config import load_config
from cockpit.workspace.paths import session_dir
from cockpit.cli.options import run_config, session_options
from cockpit.workspace.checks import WorkspaceError, check_workspace
from cockpit.workspace.sessions import latest_session


def require_terminal() -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise WorkspaceError("the cockpit needs a terminal (this is not a TTY): "
                             "use `cockpit run --headless` (or --detach) without a screen")


def open_cockpit(workspace: Path, args, running, choose_tag) -> int:
    """`cockpit`: attach to the running session, or start one (asking first to resume one
    that died) and attach. Quitting detaches; the session goes on."""
    from cockpit.tui.app import CockpitApp
    from cockpit.client.bootstrap import start_detached

    require_terminal()
    config = run_config(workspace, args)
    options = session_options(args)
    if not args.auto_approve and "--review" not in options:
        options.append("--review")  # a human is here: proposals wait for their approval
    if running is not None and running.alive:
        tag = running.tag
        if options != ["--review"] or args.tag and args.tag != tag:
            print(f"cockpit: attaching to the running session {tag}; the options given "
                  "apply to a new session only", file=sys.stderr)
    else:
        if running is not None and not _ask(f"The {running.described} is not running (it "
                                             "died). Resume it? [Y/n] "):
            return 0
        tag = choose_tag()
        pid, log = start_detached(workspace, tag, options)

    def resume() -> None:
        start_detached(workspace, tag, options)

    app = CockpitApp(workspace, tag, metric=config.metric.name,
                     direction=config.metric.direction, resume=resume)
    result = app.run()
    if result == "stop":
        print(f"cockpit: session {tag} is stopping (the runs in flight end now)")
    elif result == "detach":
        print(f"cockpit: detached; session {tag} goes on. `cockpit` attaches again, "
              "`cockpit status` tells where it is, `cockpit stop` ends it")
    return 0


def _ask(question: str) -> bool:
    try:
        answer = input(question).strip().lower()
    except EOFError:
        return False
    return answer in ("", "y", "yes")


def replay(workspace: Path, tag: str | None) -> int:
    from cockpit.tui.app import ReplayApp
    from cockpit.workspace.sessions import validate_tag

    config = load_config(workspace)
    check_workspace(workspace, config.experiment.editable, tuple(config.experiment.fixed))
    if tag:
        validate_tag(tag)
    tag = tag or latest_session(workspace)
    if tag is None or not (session_dir(workspace, tag) / "journal.jsonl").exists():
        raise WorkspaceError(f"no session {'named ' + tag + ' ' if tag else ''}to replay in "
                             f"{workspace}: run `cockpit` first")
    require_terminal()
    ReplayApp(workspace, tag, config.metric.name).run()
    return 0
