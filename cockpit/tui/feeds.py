"""Where the screen's data comes from, without blocking it.

- OutputBuffer: the session's feed appends training output; the UI drains it on a timer.
  Bounded: in a flood the oldest text is dropped (it is all in run.log anyway).
- JournalTail: new events appended to a journal since the last poll (an attached view,
  and replay of a live session).
- FileTail: new text appended to a file (an attached view follows the current run.log).
"""
from __future__ import annotations

import json
import os
import threading
from collections import deque
from pathlib import Path

BUFFER_CHARS = 2_000_000
TAIL_CHARS = 200_000  # how much of an existing log a view starts from


class OutputBuffer:
    def __init__(self, max_chars: int = BUFFER_CHARS) -> None:
        self.max_chars = max_chars
        self._chunks: deque[str] = deque()
        self._size = 0
        self._dropped = 0  # lines dropped since the last drain
        self._lock = threading.Lock()

    def append(self, text: str, dropped_chars: int = 0) -> None:
        """Add output; `dropped_chars` were already lost upstream (counted as lines)."""
        with self._lock:
            if dropped_chars:
                self._dropped += max(1, dropped_chars // 80)
            self._chunks.append(text)
            self._size += len(text)
            while self._size > self.max_chars and len(self._chunks) > 1:
                old = self._chunks.popleft()
                self._size -= len(old)
                self._dropped += old.count("\n")

    def drain(self) -> tuple[str, int]:
        """Everything buffered since the last drain, and how many lines were dropped."""
        with self._lock:
            text = "".join(self._chunks)
            dropped = self._dropped
            self._chunks.clear()
            self._size = 0
            self._dropped = 0
        return text, dropped

    def __len__(self) -> int:
        return self._size


class JournalTail:
    """Reads a JSONL journal incrementally; a torn last line waits for its end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._rest = b""

    def poll(self) -> list[dict]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self.offset:  # replaced: start over
            self.offset, self._rest = 0, b""
        if size == self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(size - self.offset)
        self.offset = size
        lines = (self._rest + data).split(b"\n")
        self._rest = lines.pop()
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue  # torn by a kill mid-write, as Journal.read skips it
        return events


class FileTail:
    """Follows a growing file, starting near its end."""

    def __init__(self, path: Path, start_chars: int = TAIL_CHARS) -> None:
        self.path = path
        self.offset: int | None = None
        self.start_chars = start_chars

    def poll(self) -> str:
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return ""
        if self.offset is None or size < self.offset:
            self.offset = max(0, size - self.start_chars)
        if size == self.offset:
            return ""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(size - self.offset)
        self.offset = size
        return data.decode("utf-8", errors="replace")


def read_tail(path: Path, max_chars: int = TAIL_CHARS) -> str:
    """The end of a finished log, for review (a huge log costs no more than its tail)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            f.seek(max(0, size - max_chars))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if size > max_chars:
        text = f"... (the first {size - max_chars} bytes are in {path})\n" + text.split("\n", 1)[-1]
    return text
