"""Room on the disks a run writes to: a run that would fill one is stopped while the
session still has room to record it (its journal line, its row, a git ref)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

MB = 1024 * 1024
MIN_FREE_INODES = 1000  # a journal line, a git ref, a row: cockpit needs a few new files


@dataclass
class DiskFloor:
    """The free space the disks holding `paths` must keep (`min_free` bytes; 0: no floor)."""

    paths: list[Path] = field(default_factory=list)
    min_free: int = 0

    def short(self) -> str:
        """Where free space fell below the floor, in words ("" when it did not)."""
        if self.min_free <= 0:
            return ""
        seen: set[int] = set()
        for path in self.paths:
            try:
                device = os.stat(path).st_dev
                if device in seen:
                    continue
                seen.add(device)
                stats = os.statvfs(path)
            except OSError:
                continue
            free = stats.f_bavail * stats.f_frsize
            if free < self.min_free:
                return f"{free / MB:.0f} MB left on the disk of {path}"
            if stats.f_files and stats.f_favail < MIN_FREE_INODES:  # files, not bytes
                return f"{stats.f_favail} files left on the disk of {path}"
        return ""
