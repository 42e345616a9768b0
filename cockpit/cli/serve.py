"""`cockpit serve`: the cockpit in a browser (see cockpit.serve for who may connect), and
`cockpit serve --tab`, one browser tab's cockpit, started by the server per websocket."""
from __future__ import annotations

import argparse
import getpass
import os
import secrets
import shlex
import socket
import sys
from pathlib import Path

from cockpit.cli.args import workspace_of
from cockpit.cli.options import add_run_options, attended_options, resume_options, run_config
from cockpit.client import bootstrap
from cockpit.domain.exits import EXIT_OK
from cockpit.serve import Guard, ServeError, is_loopback, listen, serve_tabs
from cockpit.workspace.checks import check_workspace


def add_command(sub, config=None, source: str = "") -> None:
    serve = sub.add_parser("serve", help="the cockpit in a browser (textual-serve): on "
                           "127.0.0.1 by default, reached through an SSH tunnel")
    serve.add_argument("--host", help="the address to listen on (default: cockpit.toml "
                       "[serve] host, 127.0.0.1); any other than the loopback is reachable "
                       "from the network and needs the token printed at start")
    serve.add_argument("--port", type=int, help="the port (default: [serve] port, 8000; 0 = "
                       "any free one)")
    serve.add_argument("--tab", action="store_true", help=argparse.SUPPRESS)
    add_run_options(serve, config, source)  # for the session it starts when none runs


def run(args) -> int:
    """`cockpit serve` (or, with --tab, one browser tab's cockpit)."""
    workspace = workspace_of(args)
    if args.tab:
        return run_tab(workspace, args)
    config = run_config(workspace, args)
    check_workspace(workspace, config.experiment.editable)
    host = args.host or config.serve.host
    port = config.serve.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise ServeError(f"--port must be between 0 and 65535, got {port}")
    try:
        import textual_serve  # noqa: F401  (said before a session starts for nothing)
    except ImportError:
        raise ServeError("textual-serve is not installed: pip install textual-serve") from None
    loopback = is_loopback(host)
    sock = listen(host, port)
    port = sock.getsockname()[1]
    guard = Guard(secrets.token_urlsafe(24), port, loopback)
    options = attended_options(args)
    tag = ensure_session(workspace, args, options)
    command = shlex.join([sys.executable, "-m", "cockpit", "-C", str(workspace), "serve",
                          "--tab", *options])
    _announce(host, port, guard, tag, loopback)
    serve_tabs(sock, guard, command, title=f"cockpit · {workspace.name}")
    print("cockpit: stopped serving; the session goes on (`cockpit status`)", flush=True)
    return EXIT_OK


def ensure_session(workspace: Path, args, options: list[str]) -> str:
    """The running session's tag; one started in the background when none runs."""
    session = bootstrap.ensure_session(workspace, args.tag, options)
    if session.how == "running":
        if args.tag and args.tag != session.tag:
            print(f"cockpit: serving the running session {session.tag}; the options given "
                  "apply to a new session only", file=sys.stderr)
    else:
        print(f"cockpit: session {session.tag} {session.how} in the background (pid "
              f"{session.pid}); log: {session.log}")
    return session.tag


def _announce(host: str, port: int, guard: Guard, tag: str, loopback: bool) -> None:
    if loopback:
        where = f"localhost:{port}" if host in ("127.0.0.1", "localhost") else \
            f"{host if ':' not in host else f'[{host}]'}:{port}"
        print(f"cockpit: session {tag} in a browser at http://{where}/?token={guard.token}")
        print(f"from your laptop: ssh -L {port}:localhost:{port} {getpass.getuser()}@"
              f"{socket.gethostname()}   then open that URL")
    else:
        print(f"cockpit: warning: serving on {host}, reachable from the network: anyone with "
              "the URL below has full control of the research (the default 127.0.0.1 with "
              "an SSH tunnel is safer)", file=sys.stderr)
        shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
        print(f"cockpit: session {tag} in a browser at "
              f"http://{shown if ':' not in shown else f'[{shown}]'}:{port}/?token={guard.token}")
    print("Ctrl-C stops serving; the research goes on", flush=True)


def run_tab(workspace: Path, args) -> int:
    """One browser tab's cockpit: attached to the running session (or showing the latest
    one's journal), its screen drawn by textual-serve's web driver, not a terminal."""
    from cockpit.client.bootstrap import shown_tag, start_detached
    from cockpit.tui.app import CockpitApp
    from cockpit.tui.keymap import keymap_from
    from cockpit.workspace.config import load_config

    for name in ("VISUAL", "EDITOR"):  # no terminal to hand to an editor: edit in the page
        os.environ.pop(name, None)
    config = load_config(workspace)
    tag = shown_tag(workspace)
    options = attended_options(args)
    app = CockpitApp(workspace, tag, keymap=keymap_from(config.keys),
                     resume=lambda: start_detached(workspace, tag, resume_options(options)))
    app.run()
    return EXIT_OK
