"""`cockpit serve`: the cockpit in a browser, through textual-serve.

Each browser tab gets a cockpit App of its own (`cockpit serve --tab`, a process the server
starts per websocket), a client of the workspace's one session with full control: the
same panes, keys and dialogs as in a terminal. Closing the tab ends that App only; the
session runs on. When no session runs, `cockpit serve` starts one in the background.

Who may connect: only the user who started it, like the session's own socket. Every request
must carry the token printed at start (`?token=...` in the URL, then a cookie the page
keeps): page, websocket and assets alike are refused with HTTP 403 without it, so the
other users of a shared GPU box cannot use a port they can all reach. It binds 127.0.0.1 by
default (from a laptop: `ssh -L`); there a request must also name the loopback as its Host
(a web page elsewhere cannot point its own name at this port). A websocket must come from
the page's own origin (another site's script cannot drive the cockpit). Another address is
reachable from the network and is warned about.
"""
from __future__ import annotations

import argparse
import asyncio
import errno
import getpass
import ipaddress
import os
import secrets
import shlex
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cockpit.domain.errors import CockpitError

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
SHUTDOWN_SECONDS = 5.0  # open tabs get this long to quit when serving stops


class ServeError(CockpitError):
    """`cockpit serve` cannot serve as asked (one line: what to fix)."""


def add_command(sub) -> None:
    from cockpit.cli.options import add_run_options

    serve = sub.add_parser("serve", help="the cockpit in a browser (textual-serve): on "
                           "127.0.0.1 by default, reached through an SSH tunnel")
    serve.add_argument("--host", help="the address to listen on (default: cockpit.toml "
                       "[serve] host, 127.0.0.1); any other than the loopback is reachable "
                       "from the network and needs the token printed at start")
    serve.add_argument("--port", type=int, help="the port (default: [serve] port, 8000; 0 = "
                       "any free one)")
    serve.add_argument("--tab", action="store_true", help=argparse.SUPPRESS)
    add_run_options(serve)  # for the session it starts when none runs


def is_loopback(host: str) -> bool:
    """host names this machine's loopback (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Guard:
    """Who may reach the server: see the module's doc. `refusal` is why a request is
    refused, "" when it may pass."""

    token: str  # every request carries it (query, then cookie)
    port: int
    loopback: bool = True  # bound to the loopback: the Host must name it too

    @property
    def cookie(self) -> str:
        return f"cockpit_token_{self.port}"  # cookies are per host, not per port

    def refusal(self, path: str, headers, query, cookies) -> str:
        host = headers.get("Host", "")
        if self.loopback and not is_loopback(urlsplit(f"//{host}").hostname or ""):
            return "this cockpit answers on localhost only (reach it through `ssh -L`)"
        given = query.get("token") or cookies.get(self.cookie) or ""
        if not secrets.compare_digest(given.encode(), self.token.encode()):
            return "this cockpit needs its token: open the URL `cockpit serve` printed"
        origin = headers.get("Origin")
        if path == "/ws" and origin is not None and urlsplit(origin).netloc != host:
            return "a websocket from another site is refused"
        return ""


def make_app(server, guard: Guard):
    """The aiohttp application: textual-serve's page, websocket and assets, behind the
    guard."""
    import aiohttp_jinja2
    import jinja2
    from aiohttp import web

    @web.middleware
    async def check(request, handler):
        why = guard.refusal(request.path, request.headers, request.query, request.cookies)
        if why:
            raise web.HTTPForbidden(text=f"403: {why}\n")
        response = await handler(request)
        if guard.token and request.path == "/" and request.query.get("token"):
            response.set_cookie(guard.cookie, guard.token, httponly=True, samesite="Strict")
        return response

    async def index(request):
        secure = request.secure or request.headers.get("X-Forwarded-Proto") == "https"
        context = {
            "font_size": _int(request.query.get("fontsize"), 16),
            "app_websocket_url": f"{'wss' if secure else 'ws'}://{request.host}/ws",
            "config": {"static": {"url": "/static/"}},
            "application": {"name": server.title},
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    tabs: set[asyncio.Task] = set()

    async def tab(request):
        task = asyncio.current_task()
        tabs.add(task)
        try:
            return await server.handle_websocket(request)
        finally:
            tabs.discard(task)

    async def close_tabs(app) -> None:
        """Serving stops: each tab's cockpit is told to quit now (the session goes on)."""
        for task in list(tabs):
            task.cancel()

    app = web.Application(middlewares=[check])
    app.on_shutdown.append(close_tabs)
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(server.templates_path))
    app.add_routes([
        web.get("/", index),
        web.get("/ws", tab),
        web.get("/download/{key}", server.handle_download),
        web.static("/static", server.statics_path),
    ])
    return app


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or ServeError saying why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        taken = exc.errno == errno.EADDRINUSE
        raise ServeError(f"cannot listen on {host}:{port}: "
                         + ("the port is in use (another `cockpit serve`?): pass --port N"
                            if taken else f"{exc.strerror or exc}")) from None
    return sock


def run(args) -> int:
    """`cockpit serve` (or, with --tab, one browser tab's cockpit)."""
    from cockpit.cli.options import run_config
    from cockpit.workspace.checks import check_workspace
    from cockpit.cli.args import workspace_of

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
        from textual_serve.server import Server
    except ImportError:
        raise ServeError("textual-serve is not installed: pip install textual-serve") from None
    loopback = is_loopback(host)
    sock = listen(host, port)
    port = sock.getsockname()[1]
    guard = Guard(secrets.token_urlsafe(24), port, loopback)
    options = _session_options(args)
    tag = ensure_session(workspace, args, options)
    command = shlex.join([sys.executable, "-m", "cockpit", "-C", str(workspace), "serve",
                          "--tab", *options])
    server = Server(command, host=host, port=port, title=f"cockpit · {workspace.name}")
    _announce(host, port, guard, tag, loopback)
    from aiohttp import web

    web.run_app(make_app(server, guard), sock=sock, print=None, access_log=None,
                shutdown_timeout=SHUTDOWN_SECONDS)
    print("cockpit: stopped serving; the session goes on (`cockpit status`)", flush=True)
    return 0


def ensure_session(workspace: Path, args, options: list[str]) -> str:
    """The running session's tag; one started in the background when none runs."""
    from cockpit.client.bootstrap import start_detached
    from cockpit.workspace.lock import read_session
    from cockpit.workspace.history import History
    from cockpit.workspace.checks import WorkspaceError
    from cockpit.workspace.sessions import fresh_tag, latest_session, validate_tag

    running = read_session(workspace)
    if running is not None and running.alive:
        if args.tag and args.tag != running.tag:
            print(f"cockpit: serving the running session {running.tag}; the options given "
                  "apply to a new session only", file=sys.stderr)
        return running.tag
    history = History(workspace)
    if not history.has_commits():
        raise WorkspaceError(f"{workspace} has no commits yet: commit your files first")
    tag = validate_tag(args.tag) if args.tag else (
        running.tag if running is not None and running.tag else
        latest_session(workspace) or fresh_tag(history.branch_exists))
    history.close()
    pid, log = start_detached(workspace, tag, options)
    what = "resumed" if running is not None else "started"
    print(f"cockpit: session {tag} {what} in the background (pid {pid}); log: {log}")
    return tag


def _session_options(args) -> list[str]:
    """The run options, as for the session a cockpit starts: a human is here, so proposals
    wait for approval unless --auto-approve."""
    from cockpit.cli.options import session_options

    options = session_options(args)
    if not args.auto_approve and "--review" not in options:
        options.append("--review")
    return options


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
    from cockpit.tui.app import CockpitApp
    from cockpit.client.bootstrap import start_detached
    from cockpit.workspace.config import load_config
    from cockpit.workspace.lock import read_session
    from cockpit.workspace.checks import WorkspaceError
    from cockpit.workspace.sessions import latest_session

    for name in ("VISUAL", "EDITOR"):  # no terminal to hand to an editor: edit in the page
        os.environ.pop(name, None)
    config = load_config(workspace)
    running = read_session(workspace)
    tag = running.tag if running is not None and running.tag else latest_session(workspace)
    if tag is None:
        raise WorkspaceError(f"no session in {workspace}: start one with `cockpit run --detach`")
    options = _session_options(args)
    app = CockpitApp(workspace, tag, metric=config.metric.name,
                     direction=config.metric.direction,
                     resume=lambda: start_detached(workspace, tag, options))
    app.run()
    return 0


def check(report, config) -> None:
    """`cockpit doctor`: textual-serve imports, and [serve]'s port is free."""
    from cockpit.cli.doctor import FIX, OK, WARN

    try:
        import textual_serve  # noqa: F401
    except ImportError:
        report.line(FIX, "serve", "textual-serve is not installed: pip install textual-serve")
        return
    host, port = config.serve.host, config.serve.port
    try:
        listen(host, port).close()
    except ServeError as exc:
        report.line(WARN, "serve", f"{exc} (or set [serve] port)")
        return
    report.line(OK, "serve", f"`cockpit serve` can listen on {host}:{port}"
                + ("" if is_loopback(host) else " (not the loopback: a token guards it)"))


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default
