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

import asyncio
import errno
import ipaddress
import re
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cockpit.domain.errors import CockpitError
from cockpit.domain.findings import FIX, OK, WARN, Finding

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
SHUTDOWN_SECONDS = 5.0  # open tabs get this long to quit when serving stops


class ServeError(CockpitError):
    """`cockpit serve` cannot serve as asked (one line: what to fix)."""



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
    aiohttp_jinja2.setup(app, loader=jinja2.DictLoader(
        {"app_index.html": offline_page(Path(server.templates_path) / "app_index.html")}))
    app.add_routes([
        web.get("/", index),
        web.get("/ws", tab),
        web.get("/download/{key}", server.handle_download),
        web.static("/static", server.statics_path),
    ])
    return app


def offline_page(template: Path) -> str:
    """textual-serve's page without what it fetches from the internet (a web font): the
    box may have no way out, and the page must not call anyone (a local monospace font
    takes its place)."""
    return re.sub(r"<link[^>]*https?://[^>]*>", "", template.read_text(encoding="utf-8"))


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

def serve_tabs(sock: socket.socket, guard: Guard, command: str, title: str) -> None:
    """Serve the page and a cockpit per tab (each `command`, a process of its own) on
    `sock` until Ctrl-C."""
    try:
        from textual_serve.server import Server
    except ImportError:
        raise ServeError("textual-serve is not installed: pip install textual-serve") from None
    from aiohttp import web

    host, port = sock.getsockname()[:2]
    server = Server(command, host=host, port=port, title=title)
    web.run_app(make_app(server, guard), sock=sock, print=None, access_log=None,
                shutdown_timeout=SHUTDOWN_SECONDS)


def check(config) -> list[Finding]:
    """`cockpit doctor`: textual-serve imports, and [serve]'s port is free."""
    try:
        import textual_serve  # noqa: F401
    except ImportError:
        return [Finding(FIX, "serve", "textual-serve is not installed: pip install textual-serve")]
    host, port = config.serve.host, config.serve.port
    try:
        listen(host, port).close()
    except ServeError as exc:
        return [Finding(WARN, "serve", f"{exc} (or set [serve] port)")]
    return [Finding(OK, "serve", f"`cockpit serve` can listen on {host}:{port}"
                    + ("" if is_loopback(host) else " (not the loopback: a token guards it)"))]


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default
