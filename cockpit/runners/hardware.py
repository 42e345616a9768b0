"""The machine in a few words (device, memory) for the agent's prompt and `cockpit doctor`.

Read without importing torch (seconds, and gigabytes of address space) in the cockpit's
own process: nvidia-smi for GPUs, /proc and os for the CPU side.
"""
from __future__ import annotations

import functools
import os
import subprocess

NVIDIA_SMI_TIMEOUT = 10


def gpus() -> list[tuple[str, float]]:
    """(name, memory in GiB) of each NVIDIA GPU nvidia-smi sees; [] without one."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in out.strip().splitlines():
        name, _, memory = line.rpartition(",")
        try:
            found.append((name.strip(), float(memory) / 1024))
        except ValueError:
            continue
    return found


def ram_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


@functools.lru_cache(maxsize=1)
def describe_machine() -> str:
    """E.g. '1 x NVIDIA H100 80GB HBM3 (79.6 GiB each), 16 CPU cores, 125 GiB RAM'."""
    parts = []
    found = gpus()
    if found:
        names = {name for name, _ in found}
        memory = min(m for _, m in found)
        label = names.pop() if len(names) == 1 else ", ".join(n for n, _ in found)
        parts.append(f"{len(found)} x {label} ({memory:.1f} GiB each)")
    else:
        parts.append("no NVIDIA GPU seen (training may run on CPU or Apple MPS)")
    parts.append(f"{os.cpu_count() or 1} CPU cores")
    ram = ram_gib()
    if ram:
        parts.append(f"{ram:.0f} GiB RAM")
    return ", ".join(parts)
