"""A run's log on disk, bounded: its start and its end are kept, the middle of a flood is not.

The first quarter of the limit keeps the beginning of the output (what the run set up, its
data fingerprint); past it, one line says that output was left out, and the rest of the
limit keeps the newest output. The tail is kept by appending and, once the file has grown a
tail's worth past the limit, moving its newest part down and truncating: the file never
holds more than twice the limit, and each byte is copied at most twice on average.
"""
from __future__ import annotations

import os
from typing import BinaryIO

MB = 1024 * 1024
GAP = b"\n[cockpit: output left out here: the log keeps its first and last part]\n"
COPY_CHUNK = 1024 * 1024


class CappedLog:
    """Writes a run's output to `file` (opened "w+b"), keeping at most about `limit` bytes
    (None: everything)."""

    def __init__(self, file: BinaryIO, limit: int | None) -> None:
        self.file = file
        self.limit = limit
        self.head = limit // 4 if limit else 0
        self.keep = max(1, limit - self.head - len(GAP)) if limit else 0  # the newest output
        self.written = 0  # bytes of output seen
        self.dropped = 0  # bytes of output left out
        self._size = 0  # the file's size

    def write(self, data: bytes) -> None:
        self.written += len(data)
        self.file.write(data)
        self._size += len(data)
        if self.limit is not None and self._size - self.head > 2 * self.keep:
            self._compact()

    def flush(self) -> None:
        self.file.flush()

    def _compact(self) -> None:
        """Keep the head; then the gap line; then the newest `keep` bytes, from the start
        of a line (or of a progress update)."""
        self.file.flush()
        fd = self.file.fileno()
        start = self._size - self.keep
        first = os.pread(fd, min(self.keep, 4096), start)
        start += next((i + 1 for i, b in enumerate(first) if b in b"\n\r"), 0)
        tail_start = self.head + len(GAP)
        self.dropped += start - tail_start if self.dropped else start - self.head
        os.pwrite(fd, GAP, self.head)
        to, at = tail_start, start
        while at < self._size:
            chunk = os.pread(fd, min(COPY_CHUNK, self._size - at), at)
            os.pwrite(fd, chunk, to)
            at += len(chunk)
            to += len(chunk)
        os.ftruncate(fd, to)
        self._size = to
        self.file.seek(to)
