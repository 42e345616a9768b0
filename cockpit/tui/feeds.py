"""Training output between the session's feed and the screen: the feed's thread appends,
the screen drains on a timer. Bounded: in a flood the oldest text is dropped (it is all in
the run's log anyway)."""
from __future__ import annotations

import threading
from collections import deque

BUFFER_CHARS = 2_000_000


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
