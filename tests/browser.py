"""Headless Chromium, driven through the DevTools protocol over a websocket (aiohttp's
client): open a page, read what the served cockpit's terminal was sent, press keys, take a
screenshot. Debian's chromium at /usr/bin/chromium (CHROMIUM overrides the path)."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import aiohttp

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0"]

# Keeps what the page's websockets receive as text (the terminal's output, escape codes
# and all) in window.__screen, and when each wanted marker first appeared in
# window.__marks (ms since the page's navigation began).
CAPTURE = """
(() => {
  window.__screen = "";
  window.__want = [];
  window.__marks = {};
  const decoder = new TextDecoder();
  const Native = window.WebSocket;
  function Capturing(url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    ws.addEventListener("message", (event) => {
      if (typeof event.data === "string") return;
      const chunk = decoder.decode(new Uint8Array(event.data), {stream: true});
      window.__screen += chunk;
      if (window.__screen.length > 8e6) window.__screen = window.__screen.slice(-4e6);
      const tail = window.__screen.slice(-(chunk.length + 256));
      for (const marker of window.__want) {
        if (!(marker in window.__marks) && tail.includes(marker)) {
          window.__marks[marker] = performance.now();
        }
      }
    });
    return ws;
  }
  Capturing.prototype = Native.prototype;
  Object.assign(Capturing, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  window.WebSocket = Capturing;
})();
"""


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one page."""

    def __init__(self, profile: Path, width: int = 1280, height: int = 800) -> None:
        self.profile = profile
        self.size = (width, height)
        self.process: subprocess.Popen | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws = None
        self._next_id = 0
        self._pending: dict[int, asyncio.Future] = {}
        self._reader: asyncio.Task | None = None

    async def start(self, timeout: float = 30.0) -> None:
        self.profile.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [chromium_path(), *FLAGS, f"--user-data-dir={self.profile}",
             f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        self._session = aiohttp.ClientSession()
        async with self._session.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json(content_type=None)
        page = next(t for t in targets if t["type"] == "page")
        self._ws = await self._session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        await self.call("Page.enable")
        await self.call("Page.addScriptToEvaluateOnNewDocument", source=CAPTURE)

    async def _read(self) -> None:
        async for message in self._ws:
            data = json.loads(message.data)
            future = self._pending.pop(data.get("id"), None)
            if future is not None and not future.done():
                if "error" in data:
                    future.set_exception(RuntimeError(str(data["error"])))
                else:
                    future.set_result(data.get("result", {}))

    async def call(self, method: str, **params) -> dict:
        self._next_id += 1
        future = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        await self._ws.send_str(json.dumps({"id": self._next_id, "method": method,
                                            "params": params}))
        return await asyncio.wait_for(future, 30)

    async def evaluate(self, expression: str):
        answer = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return answer.get("result", {}).get("value")

    async def open(self, url: str, markers: tuple[str, ...] = ()) -> None:
        """Navigate; `markers` are the strings whose first arrival is timed (first_seen)."""
        await self.call("Page.navigate", url=url)
        await self.evaluate(f"window.__want = {json.dumps(list(markers))}")

    async def screen(self) -> str:
        return await self.evaluate("window.__screen || ''") or ""

    async def first_seen(self, marker: str) -> float | None:
        """Seconds from the page's navigation to the marker's arrival (None: not yet)."""
        ms = await self.evaluate(f"(window.__marks || {{}})[{json.dumps(marker)}]")
        return None if ms is None else ms / 1000

    async def wait_for_text(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in await self.screen():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never reached the page")
            await asyncio.sleep(0.1)

    async def press(self, key: str) -> None:
        """A key, typed into the terminal (xterm.js's hidden textarea has the focus)."""
        await self.evaluate("document.querySelector('.xterm-helper-textarea').focus()")
        code = f"Key{key.upper()}" if key.isalpha() else ""
        for kind in ("keyDown", "keyUp"):
            await self.call("Input.dispatchKeyEvent", type=kind, key=key, code=code,
                            text=key if kind == "keyDown" else "",
                            windowsVirtualKeyCode=ord(key.upper()))

    async def screenshot(self, path: Path) -> Path:
        shot = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
        if self._session is not None:
            await self._session.close()
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the browser and its helpers
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
