"""Shared by the bench scripts: stand-in train.py files that load the cockpit, not a model,
and a process's CPU time from /proc."""
from __future__ import annotations

import os
from pathlib import Path

SUMMARY = '''
print("---")
print("val_bpb:          1.000000")
print("peak_vram_mb:     1024.0")
'''

_FLOOD = '''\
import sys, time
LEARNING_RATE = 0.01
RATE, SECONDS, DELAY, TAIL = {rate}, {seconds}, {delay}, {tail}
time.sleep(DELAY)  # time for a client to attach first
print("FLOOD-START", flush=True)
batch = RATE // 20
line = "x" * 60
out = sys.stdout
start = time.monotonic()
n = 0
while time.monotonic() - start < SECONDS:
    out.write("".join(f"flood {{n + i:08d}} {{line}}\\n" for i in range(batch)))
    out.flush()
    n += batch
    time.sleep(max(0.0, start + n / RATE - time.monotonic()))
print(f"FLOOD-END {{n}} lines at {{time.time()!r}}", flush=True)
time.sleep(TAIL)
'''

_STEADY = '''\
import time
LEARNING_RATE = 0.01
steps = {steps}
for i in range(steps):
    time.sleep(0.25)
    print(f"\\rstep {{i:05d}} ({{100 * i / steps:.1f}}%) | loss: {{3 - i / steps:.6f}} | "
          f"lrm: 1.00 | dt: 250ms | tok/sec: 52,480 | mfu: 38.1% | epoch: 1 | remaining: 9s",
          end="", flush=True)
print()
'''


def flood_train(rate: int, seconds: float, delay: float = 0.0, tail: float = 3.0) -> str:
    """A train.py printing `rate` lines a second for `seconds`, then
    `FLOOD-END <n> lines at <time>`."""
    return _FLOOD.format(rate=rate, seconds=seconds, delay=delay, tail=tail) + SUMMARY


def steady_train(steps: int) -> str:
    """A train.py printing a progress line every 0.25 s, `steps` times."""
    return _STEADY.format(steps=steps) + SUMMARY


def cpu_seconds(*pids: int) -> float:
    """User + system CPU seconds of the given processes (gone ones count 0)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total
