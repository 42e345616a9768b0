"""`cockpit serve` for real: the server a subprocess, the session a detached process, the
page opened in headless Chromium and driven through the DevTools protocol; the token and
the loopback's guards checked with plain HTTP requests."""
from __future__ import annotations

import asyncio
import http.client
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import pytest
from browser import Browser, chromium_path
from support import cockpit, live_journal, make_workspace, read_journal, wait_for

from cockpit.serve import SHUTDOWN_SECONDS, Guard
from cockpit.workspace.config import Config
from cockpit.workspace.lock import read_session

FAST = "[judge]\nbaseline_runs = 1\n"
WS_HEADERS = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


class Served:
    """`cockpit serve` running in a subprocess; its printed lines, its URL and port."""

    def __init__(self, ws: Path, *args: str) -> None:
        self.ws = ws
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cockpit", "serve", "--port", "0", *args], cwd=ws,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lines: queue.Queue = queue.Queue()
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, kept in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, kept), daemon=True).start()
        self.url = self.wait_for(r"in a browser at (http://\S+)").group(1)
        self.port = int(re.search(r":(\d+)/", self.url).group(1))

    def _read(self, stream, kept: list[str]) -> None:
        for line in stream:
            kept.append(line)
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.out + self.err:
                found = re.search(pattern, line)
                if found:
                    return found
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"{pattern!r} never printed: {self.out} {self.err}")
            time.sleep(0.05)

    def get(self, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        response.body = response.read()
        conn.close()
        return response

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(30)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def served():
    """Starts `cockpit serve`; at the end kills it and the session it served."""
    made: list[Served] = []

    def start(ws: Path, *args: str) -> Served:
        made.append(Served(ws, *args))
        return made[-1]

    yield start
    for server in made:
        server.kill()
        info = read_session(server.ws)
        if info is not None and info.alive:
            os.kill(info.pid, signal.SIGKILL)


def tabs_of(ws: Path) -> list[int]:
    """The pids of the browser tabs' cockpit processes serving this workspace."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"--tab" in args and str(ws).encode() in args:
            pids.append(int(proc.name))
    return pids


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed (.ci/run "
                    "installs it)")
def test_a_proposal_approved_in_chromium(tmp_path, served):
    ws = make_workspace(tmp_path / "ws", extra={"cockpit.toml": FAST})
    started = cockpit("run", "--detach", "--review", "--tag", "t", cwd=ws)
    assert started.returncode == 0, started.stderr
    server = served(ws)
    assert server.url.startswith(f"http://localhost:{server.port}/?token=")
    assert f"ssh -L {server.port}:localhost:{server.port} " in "".join(server.out)
    shot = tmp_path / "cockpit-in-chromium.png"

    async def scenario() -> float:
        browser = Browser(tmp_path / "chromium")
        await browser.start()
        try:
            await browser.open(server.url, markers=("timeline",))
            await browser.wait_for_text("timeline")  # the pane's title: the cockpit is drawn
            await browser.wait_for_text("awaits your approval")  # #2, on screen
            await browser.press("a")
            wait_for(lambda: [e for e in live_journal(ws, "t") if e["event"] == "approved"],
                       what="the approval in the journal")
            await browser.wait_for_text("#2 approved")
            await browser.screenshot(shot)
            return await browser.first_seen("timeline")
        finally:
            await browser.close()

    first_paint = asyncio.run(scenario())
    print(f"\nscreenshot: {shot} (the timeline {first_paint:.2f} s after the page opened)")
    approved = [e for e in read_journal(ws, "t") if e["event"] == "approved"]
    assert [e["n"] for e in approved] == [2] and not approved[0]["edited"]
    assert shot.read_bytes().startswith(b"\x89PNG")
    # the tab closed: its cockpit ends, the research goes on
    wait_for(lambda: not tabs_of(ws), what="the tab's cockpit to end")
    assert read_session(ws).alive
    assert server.interrupt() == 0
    assert "stopped serving; the session goes on" in "".join(server.out)
    assert read_session(ws).alive
    assert cockpit("stop", "--now", cwd=ws).returncode == 0


def test_the_loopback_answers_to_its_own_name_only(tmp_path, served):
    ws = make_workspace(tmp_path / "ws", extra={"cockpit.toml": FAST})
    server = served(ws, "--tag", "l")
    assert "session l started in the background" in "".join(server.out)
    assert read_session(ws).alive and read_session(ws).tag == "l"
    local = f"localhost:{server.port}"
    token = re.search(r"\?token=(\S+)", server.url).group(1)
    cookie = {"Cookie": f"cockpit_token_{server.port}={token}"}
    # even on the loopback, only the one who started it: other users can reach the port
    assert server.get("/", {"Host": local}).status == 403
    assert server.get(f"/?token={token}", {"Host": local}).status == 200
    assert server.get("/static/js/textual.js",
                      {"Host": f"127.0.0.1:{server.port}", **cookie}).status == 200
    rebound = server.get(f"/?token={token}", {"Host": f"evil.example:{server.port}"})
    assert rebound.status == 403 and b"localhost only" in rebound.body
    foreign = server.get("/ws", {"Host": local, "Origin": "http://evil.example", **WS_HEADERS,
                                 **cookie})
    assert foreign.status == 403
    own = server.get("/ws", {"Host": local, "Origin": f"http://{local}", **WS_HEADERS, **cookie})
    assert own.status == 101


@pytest.mark.slow
def test_a_network_bind_needs_its_token(tmp_path, served):
    ws = make_workspace(tmp_path / "ws", extra={"cockpit.toml": FAST})
    server = served(ws, "--host", "0.0.0.0", "--tag", "n")
    token = re.search(r"\?token=(\S+)", server.url).group(1)
    assert "warning: serving on 0.0.0.0, reachable from the network" in "".join(server.err)
    for path in ("/", "/static/js/textual.js", "/static/css/xterm.css", "/download/x",
                 "/?token=wrong"):
        refused = server.get(path)
        assert refused.status == 403 and b"needs its token" in refused.body, path
    assert server.get("/ws", WS_HEADERS).status == 403

    page = server.get(f"/?token={token}")
    assert page.status == 200 and b"textual.js" in page.body
    # the page fetches nothing from the internet (the box may have no way out)
    assert b"googleapis" not in page.body and b"https://" not in page.body
    cookie = page.getheader("Set-Cookie").split(";")[0]
    assert cookie == f"cockpit_token_{server.port}={token}" and "HttpOnly" in \
        page.getheader("Set-Cookie")
    assert server.get("/static/js/textual.js", {"Cookie": cookie}).status == 200
    assert server.get("/ws", {"Cookie": cookie, "Origin": "http://evil.example",
                              **WS_HEADERS}).status == 403

    async def tab_then_stop() -> tuple[bytes, int, float]:
        """A tab that the token lets in (a cockpit draws on it), open while serving stops."""
        async with aiohttp.ClientSession() as session, session.ws_connect(
                f"ws://127.0.0.1:{server.port}/ws?token={token}&width=100&height=30") as tab:
            received = b""
            deadline = time.monotonic() + 60
            while b"timeline" not in received and time.monotonic() < deadline:
                message = await tab.receive(timeout=60)
                if message.type == aiohttp.WSMsgType.BINARY:
                    received += message.data
            assert tabs_of(ws)
            reading = asyncio.create_task(tab.receive(timeout=60))
            start = time.monotonic()
            code = await asyncio.to_thread(server.interrupt)
            await reading
            return received, code, time.monotonic() - start

    drawn, code, seconds = asyncio.run(tab_then_stop())
    assert b"timeline" in drawn
    assert code == 0 and seconds < SHUTDOWN_SECONDS, seconds
    wait_for(lambda: not tabs_of(ws), what="the tab's cockpit to end")
    assert read_session(ws).alive  # serving stopped; the research goes on


def test_a_port_in_use_is_said_in_one_line(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = cockpit("serve", "--port", str(port), cwd=ws, timeout=60)
        assert result.returncode == 2
        assert result.stderr.strip() == (f"cockpit: cannot listen on 127.0.0.1:{port}: the "
                                         "port is in use (another `cockpit serve`?): pass "
                                         "--port N")
        from cockpit.serve import check

        config = Config()
        config.serve.port = port
        (finding,) = check(config)
        assert (finding.level, finding.what) == ("warn", "serve")
        assert finding.text.startswith("cannot listen on")
    assert read_session(ws) is None  # nothing was started
    (finding,) = check(config)
    assert (finding.level, finding.text) == ("ok", "`cockpit serve` can listen on "
                                                   f"127.0.0.1:{port}")


def test_guard_rules():
    local = Guard("s3cr3t", 8000)
    token = {"token": "s3cr3t"}
    assert local.refusal("/", {"Host": "localhost:8000"}, token, {}) == ""
    assert local.refusal("/", {"Host": "127.0.0.1:9999"}, token, {}) == ""  # a forwarded port
    assert local.refusal("/", {"Host": "[::1]:8000"}, token, {}) == ""
    assert local.refusal("/", {"Host": "localhost:8000"}, {}, {})  # another user: no token
    assert local.refusal("/", {"Host": "gpu-box:8000"}, token, {})
    assert local.refusal("/", {}, token, {})
    assert local.refusal("/ws", {"Host": "localhost:8000", "Origin": "null"}, token, {})
    net = Guard("t0k3n", 8000, loopback=False)
    assert net.refusal("/", {"Host": "gpu-box:8000"}, {"token": "t0k3n"}, {}) == ""
    assert net.refusal("/x", {"Host": "gpu-box:8000"}, {}, {"cockpit_token_8000": "t0k3n"}) == ""
    assert net.refusal("/x", {"Host": "gpu-box:8000"}, {}, {"cockpit_token_8001": "t0k3n"})
    assert net.refusal("/", {"Host": "gpu-box:8000"}, {"token": "t0k3"}, {})
