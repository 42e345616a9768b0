"""The session process and its clients, measured side by side in one run.

- Latency: from a journal event's write (a steering note, sent by one client) to its arrival
  in another subscribed client: median and p99, at idle and while the run floods its log
  at 50,000 lines a second.
- Cost: the session process's CPU while a run streams a progress line every 0.25 s, with 0, 1
  and 3 clients subscribed (each client reads everything, output included), and during the
  flood with 0 and 3.

    python bench/bench_session.py [--samples 200] [--seconds 10]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_train import cpu_seconds, flood_train, steady_train
from support import make_workspace

from cockpit.client.connection import Subscription, request
from cockpit.workspace.lock import read_session


def start(ws: Path) -> int:
    done = subprocess.run([sys.executable, "-m", "cockpit", "-C", str(ws), "run", "--detach",
                           "--tag", "b", "--budget", "3600"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the baseline run is streaming
        if request(ws, "status")["live"]["running"]:
            return read_session(ws).pid
        time.sleep(0.1)
    raise SystemExit("bench: the run never started")


def stop(ws: Path) -> None:
    subprocess.run([sys.executable, "-m", "cockpit", "-C", str(ws), "stop", "--now"],
                   capture_output=True)
    deadline = time.monotonic() + 30
    while read_session(ws) is not None and time.monotonic() < deadline:
        time.sleep(0.1)


def latencies(ws: Path, samples: int) -> list[float]:
    """Milliseconds from sending a note to seeing its event in another client's feed."""
    arrived: dict[str, float] = {}
    seen = threading.Condition()

    def feed(message: dict) -> None:
        if message["type"] == "journal":
            for event in message["events"]:
                if event["event"] == "note":
                    with seen:
                        arrived[event["text"]] = time.perf_counter()
                        seen.notify_all()

    count = request(ws, "status")["status"]["events"]
    sub = Subscription(ws, count, feed)
    out = []
    try:
        for k in range(samples):
            text = f"probe {k}"
            sent = time.perf_counter()
            request(ws, "steer", text=text)
            with seen:
                seen.wait_for(lambda text=text: text in arrived, timeout=10)
            written = sent  # the note is journaled while `steer` is answered
            out.append((arrived[text] - written) * 1000)
            time.sleep(0.01)
    finally:
        sub.close()
    return out


def session_cpu(ws: Path, pid: int, clients: int, seconds: float) -> float:
    subs = [Subscription(ws, 0, lambda message: None) for _ in range(clients)]
    try:
        time.sleep(1.0)
        c0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        return 100 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
    finally:
        for sub in subs:
            sub.close()


def summary(values: list[float]) -> str:
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(0.99 * len(values)))]
    return f"median {statistics.median(values):.1f} ms, p99 {p99:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-session-") as tmp:
        tmp = Path(tmp)
        steady = make_workspace(tmp / "steady", train=steady_train(100000))
        pid = start(steady)
        try:
            idle = latencies(steady, args.samples)
            cpu = {k: session_cpu(steady, pid, k, args.seconds) for k in (0, 1, 3)}
        finally:
            stop(steady)
        flood = make_workspace(tmp / "flood", train=flood_train(50000, 3600))
        flood_pid = start(flood)
        try:
            flooded = latencies(flood, args.samples)
            flood_cpu = {k: session_cpu(flood, flood_pid, k, args.seconds) for k in (0, 3)}
        finally:
            stop(flood)
    print(f"event -> client latency, {args.samples} steering notes each:")
    print(f"  idle (a run streams 4 lines/s):   {summary(idle)}   (target p99 < 100 ms)")
    print(f"  during a 50,000 lines/s flood:     {summary(flooded)}   (target p99 < 250 ms)")
    print("session process CPU while a run streams (share of one core):")
    for k, share in cpu.items():
        print(f"  {k} client{'s' * (k != 1)}: {share:.1f}%")
    print(f"  3 clients vs none: +{cpu[3] - cpu[0]:.1f} points (target: < 3% with 3 clients)")
    print(f"during the flood: {flood_cpu[0]:.1f}% with no client, {flood_cpu[3]:.1f}% with 3 "
          "(the session reads, logs and forwards 3.5 MB/s of output)")


if __name__ == "__main__":
    main()
