"""`cockpit serve` measured in headless Chromium, side by side in one run.

- First paint: seconds from the page's navigation to the cockpit's timeline on screen,
  against a one-widget Textual app served by the same server code (textual-serve's own
  floor: the page, xterm.js, a Python process starting Textual), alternated, median of N.
- Log flood: a train.py printing 50,000 lines a second for 10 s; the session process's CPU
  over the flood with no client attached, then with one browser tab attached (its cockpit
  App, the server and Chromium measured too).
- Notifications: a session of N fast experiments with no [notify], then with every event
  sent to a webhook that never answers in time; the loop's wall time (first to last
  journal event) side by side (the notifier is a client of the session's socket).

    python bench/bench_serve.py [--rounds 5] [--rate 50000] [--flood-seconds 10]
                                [--experiments 20]
"""
from __future__ import annotations

import argparse
import asyncio
import http.server
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import Browser, chromium_path
from fake_train import cpu_seconds, flood_train
from support import make_workspace

from cockpit.workspace.config import Config
from cockpit.workspace.lock import read_session

FAST = "[judge]\nbaseline_runs = 1\n"
MARKER = "timeline"

MINIMAL_APP = f"""
from textual.app import App
from textual.widgets import Static
class Minimal(App):
    def compose(self):
        yield Static("{MARKER}")
Minimal().run()
"""

MINIMAL_SERVER = """
import shlex, sys
from aiohttp import web
from textual_serve.server import Server
from cockpit.serve import Guard, listen, make_app
sock = listen("127.0.0.1", 0)
port = sock.getsockname()[1]
print(port, flush=True)
command = shlex.join([sys.executable, "-c", sys.argv[1]])
web.run_app(make_app(Server(command), Guard("", port)), sock=sock, print=None, access_log=None)
"""

def cockpit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cockpit", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def spawn(command: list[str], cwd: Path) -> tuple[subprocess.Popen, str]:
    """A server in its own process group, and the first line it prints."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    return process, process.stdout.readline()


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def serve(ws: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "cockpit", "serve", "--port", "0"],
                               cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, start_new_session=True)
    for line in process.stdout:
        if "in a browser at " in line:
            return process, line.split("in a browser at ")[1].strip()
    raise SystemExit("bench: `cockpit serve` printed no URL")


def processes(match) -> list[int]:
    """The pids whose (pid, pgid, argv) match."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            pgid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
        except (OSError, ValueError, IndexError):
            continue
        if match(int(proc.name), pgid, argv):
            found.append(int(proc.name))
    return found


async def first_paints(tmp: Path, rounds: int) -> None:
    ws = make_workspace(tmp / "paint", extra={"cockpit.toml": FAST})
    result = cockpit("run", "--detach", "--review", "--tag", "p", cwd=ws)
    assert result.returncode == 0, result.stderr
    served, url = serve(ws)
    minimal, port = spawn([sys.executable, "-c", MINIMAL_SERVER, MINIMAL_APP], tmp)
    targets = {"cockpit": url, "minimal": f"http://localhost:{port.strip()}/"}
    browser = Browser(tmp / "chromium-paint")
    await browser.start()
    times: dict[str, list[float]] = {name: [] for name in targets}
    try:
        for round_ in range(rounds + 1):  # round 0 warms the browser's cache: not counted
            order = list(targets) if round_ % 2 == 0 else list(reversed(targets))
            for name in order:
                await browser.open(targets[name], markers=(MARKER,))
                await browser.wait_for_text(MARKER)
                seconds = await browser.first_seen(MARKER)
                if round_:
                    times[name].append(seconds)
                await browser.open("about:blank")
                await asyncio.sleep(1.0)  # the tab's process ends
    finally:
        await browser.close()
        stop(served)
        stop(minimal)
        cockpit("stop", "--now", cwd=ws)
    a, b = statistics.median(times["cockpit"]), statistics.median(times["minimal"])
    print(f"first paint in Chromium (navigation to the timeline on screen, median of {rounds}): "
          f"cockpit {a:.2f} s, a one-widget Textual app {b:.2f} s: ratio {a / b:.2f}")
    print("  cockpit rounds: " + ", ".join(f"{t:.2f}" for t in times["cockpit"]))


async def flood(tmp: Path, rate: int, seconds: int, attached: bool) -> dict:
    ws = make_workspace(tmp / f"flood-{attached}", extra={"cockpit.toml": FAST},
                        train=flood_train(rate, seconds, delay=8, tail=1))
    result = cockpit("run", "--detach", "--tag", "f", "--experiments", "1", cwd=ws)
    assert result.returncode == 0, result.stderr
    session = read_session(ws).pid
    log = ws / ".cockpit" / "f" / "runs" / "0001" / "run.log"
    served = browser = None
    if attached:
        served, url = serve(ws)
        browser = Browser(tmp / "chromium-flood")
        await browser.start()
        await browser.open(url)
        await browser.wait_for_text(MARKER)
    groups = {
        "session": lambda: [session],
        "tab": lambda: processes(lambda pid, pgid, argv: b"--tab" in argv
                                 and str(ws).encode() in argv),
        "server": lambda: [served.pid] if served else [],
        "chromium": lambda: processes(lambda pid, pgid, argv: browser is not None
                                      and pgid == browser.process.pid),
    }
    try:
        while not log.exists() or b"FLOOD-START" not in log.read_bytes()[:4096]:
            await asyncio.sleep(0.01)
        pids = {name: find() for name, find in groups.items()}
        before = {name: cpu_seconds(*p) for name, p in pids.items()}
        start = time.monotonic()
        while b"FLOOD-END" not in _tail(log):
            await asyncio.sleep(0.01)
        wall = time.monotonic() - start
        after = {name: cpu_seconds(*p) for name, p in pids.items()}
        if browser is not None:
            await browser.wait_for_text("FLOOD-END", timeout=30)
    finally:
        if browser is not None:
            await browser.close()
        if served is not None:
            stop(served)
        cockpit("stop", "--now", cwd=ws)
    return {name: 100 * (after[name] - before[name]) / wall for name in groups} | {"wall": wall}


def _tail(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 4096))
        return f.read()


async def floods(tmp: Path, rate: int, seconds: int) -> None:
    alone = await flood(tmp, rate, seconds, attached=False)
    tab = await flood(tmp, rate, seconds, attached=True)
    print(f"log flood ({rate:,} lines/s for {seconds} s): the session's CPU "
          f"{alone['session']:.0f}% of one core with no client, {tab['session']:.0f}% with one "
          f"browser tab attached: ratio {tab['session'] / alone['session']:.2f}")
    print(f"  with the tab: its cockpit App {tab['tab']:.0f}%, the server {tab['server']:.0f}%, "
          f"Chromium {tab['chromium']:.0f}% (flood {alone['wall']:.1f} s and "
          f"{tab['wall']:.1f} s)")


class Hanging(http.server.BaseHTTPRequestHandler):
    """A webhook that takes a minute to answer."""

    def do_POST(self):
        time.sleep(60)

    def log_message(self, *args):
        pass


def notify_session(ws: Path, experiments: int, urls: list[str]) -> float:
    """The loop's wall seconds (first to last journal event), the notifier subscribed to
    the session as `cockpit run` starts it."""
    from cockpit.cli.main import notifier_of
    from cockpit.session.coordinator import Coordinator
    from cockpit.session.server import serve_session

    config = Config()
    config.judge.baseline_runs = 1
    config.notify.urls = urls
    config.notify.min_interval = 0.0  # every event a message of its own
    config.notify.stalled_experiments = 1
    coordinator = Coordinator(ws, config, "n")
    serve_session(coordinator, experiments, background=False,
                  companions=[notifier_of(ws, config, "n")])
    times = [e["time"] for e in coordinator.events]
    return max(times) - min(times)


def notifications(tmp: Path, experiments: int) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hanging)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"json://127.0.0.1:{server.server_address[1]}/hook"
    quiet = notify_session(make_workspace(tmp / "quiet"), experiments, [])
    start = time.monotonic()
    hanging = notify_session(make_workspace(tmp / "hanging"), experiments, [url])
    flushed = time.monotonic() - start - hanging
    print(f"notifications: {experiments} experiments, the loop {quiet:.2f} s with no [notify], "
          f"{hanging:.2f} s with every event sent to a webhook that never answers: ratio "
          f"{hanging / quiet:.2f}")
    print(f"  the notifier reads the session's feed (the loop never calls it); the session's "
          f"last messages then had up to {flushed:.1f} s after its end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=int, default=50_000)
    parser.add_argument("--flood-seconds", type=int, default=10)
    parser.add_argument("--experiments", type=int, default=20)
    args = parser.parse_args()
    if chromium_path() is None:
        raise SystemExit("bench: chromium is not installed")
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-serve-") as tmp:
        tmp = Path(tmp)
        asyncio.run(first_paints(tmp, args.rounds))
        asyncio.run(floods(tmp, args.rate, args.flood_seconds))
        notifications(tmp, args.experiments)


if __name__ == "__main__":
    main()
