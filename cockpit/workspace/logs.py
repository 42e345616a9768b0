"""Reading a run's log in bounded memory: its head (what it printed before training) and
its tail (the summary block, the last error), whatever the size of the file."""
from __future__ import annotations

import os
from pathlib import Path

TAIL_BYTES = 256 * 1024  # the summary block and the last error are at the end of a log

HEAD_BYTES = 64 * 1024  # what a run prints before training (device, data_fingerprint, ...)

def read_tail(path: Path | str, max_bytes: int = TAIL_BYTES) -> str:
    """The end of a log (at most `max_bytes` of it) as text, from its first whole line on:
    memory stays bounded whatever the log's size or shape (a flood of `\\r` included)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            f.seek(start)
            data = f.read(max_bytes)
    except OSError:
        return ""
    if start > 0:  # the first line is cut: drop it (a line ends at \n, a progress state at \r)
        ends = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
        data = data[min(ends) + 1:] if ends else data
    return data.decode("utf-8", errors="replace")

def read_head(path: Path | str, max_bytes: int = HEAD_BYTES) -> str:
    """The beginning of a log (at most `max_bytes` of it) as text."""
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes)
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace")
