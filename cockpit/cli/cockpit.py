"""Opening the cockpit from the command line: attach to the workspace's session, or start
one in the background and attach; offer to resume a session that died; replay."""
from __future__ import annotations

import sys
from pathlib import Path

from cockpit.cli.options import REVIEW_IF_NEW, attended_options, resume_options, run_config
from cockpit.client.bootstrap import choose_tag, shown_tag, start_detached
from cockpit.domain.exits import EXIT_OK
from cockpit.workspace.checks import WorkspaceError, check_workspace
from cockpit.workspace.config import load_config
from cockpit.workspace.lock import SessionInfo


def require_terminal() -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise WorkspaceError("the cockpit needs a terminal (this is not a TTY): "
                             "use `cockpit run --headless` (or --detach) without a screen")


def open_cockpit(workspace: Path, args, running: SessionInfo | None) -> int:
    """`cockpit`: attach to the running session, or start one (asking first to resume one
    that died) and attach. Quitting detaches; the session goes on."""
    from cockpit.tui.app import CockpitApp
    from cockpit.tui.keymap import keymap_from

    require_terminal()
    config = run_config(workspace, args)
    keymap = keymap_from(config.keys)  # a wrong key is one line, before anything starts
    options = attended_options(args)  # a human is here: proposals wait for their approval
    if running is not None and running.alive:
        tag = running.tag
        if options != [REVIEW_IF_NEW] or (args.tag and args.tag != tag):
            print(f"cockpit: attaching to the running session {tag}; the options given "
                  "apply to a new session only", file=sys.stderr)
    else:
        if running is not None and not _ask(f"The {running.described} is not running (it "
                                             "died). Resume it? [Y/n] "):
            return EXIT_OK
        tag = choose_tag(workspace, args.tag, running)
        start_detached(workspace, tag, options)

    def resume() -> None:  # R: the session's own approval setting, as it was left
        start_detached(workspace, tag, resume_options(options))

    app = CockpitApp(workspace, tag, resume=resume, keymap=keymap)
    result = app.run()
    if result == "stop":
        print(f"cockpit: session {tag} is stopping (the runs in flight end now)")
    elif result == "detach":
        print(f"cockpit: detached; session {tag} goes on. `cockpit` attaches again, "
              "`cockpit status` tells where it is, `cockpit stop` ends it")
    return EXIT_OK


def _ask(question: str) -> bool:
    try:
        answer = input(question).strip().lower()
    except EOFError:
        return False
    return answer in ("", "y", "yes")


def replay(workspace: Path, tag: str | None) -> int:
    from cockpit.tui.replay_app import ReplayApp

    config = load_config(workspace)
    check_workspace(workspace, config.experiment.editable, tuple(config.experiment.fixed))
    tag = shown_tag(workspace, tag)
    require_terminal()
    ReplayApp(workspace, tag).run()
    return EXIT_OK
