"""What a session's results rest on, besides the code: the fixed files of a worktree
(prepare.py, the evaluation) and the data the runs read, snapshot and compared after every
run."""
from __future__ import annotations

import os
from pathlib import Path

from cockpit.workspace.config import Config
from cockpit.workspace.history import History, HistoryError
from cockpit.workspace.paths import config_path

MAX_DATA_FILES = 100_000  # a data dir with more files is not watched file by file

# -- fixed files and data ---------------------------------------------------------------
def changed_fixed_files(history: History, tree: Path, commit: str, fixed: list[str]) -> list[str]:
    """The fixed files a run changed (or deleted) in its worktree, against its commit."""
    changed = []
    for name in fixed:
        try:
            expected = history.blob_at(commit, name)
        except HistoryError:
            continue  # not tracked here: nothing to compare with
        path = tree / name
        try:
            if path.is_symlink() or path.read_bytes() != expected:
                changed.append(name)
        except OSError:
            changed.append(name)
    return changed

def data_dir_of(config: Config, workspace: Path) -> Path | None:
    """Where the data the runs read lives, when it can be known."""
    setting = config.experiment.data_dir
    if setting == "":
        return None
    if setting != "auto":
        return config_path(setting, workspace)
    prepare = workspace / "prepare.py"
    try:
        uses_ours = "COCKPIT_DATA_DIR" in prepare.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not uses_ours:
        return None
    return Path(os.environ.get("COCKPIT_DATA_DIR") or Path.home() / ".cache" / "cockpit" / "data")

def data_snapshot(data_dir: Path | None) -> dict[str, tuple[int, int]] | None:
    """Every data file's size and modification time (cheap: no file is read)."""
    if data_dir is None or not data_dir.is_dir():
        return None
    snapshot = {}
    for root, _, files in os.walk(data_dir):
        for name in files:
            path = Path(root) / name
            try:
                stat = path.stat()
            except OSError:
                continue
            snapshot[str(path.relative_to(data_dir))] = (stat.st_size, stat.st_mtime_ns)
            if len(snapshot) > MAX_DATA_FILES:
                return None
    return snapshot

def data_changes(before: dict | None, after: dict | None) -> list[str]:
    """The data files added, removed or rewritten between two snapshots."""
    if before is None or after is None:
        return []
    return sorted(name for name in before.keys() | after.keys()
                  if before.get(name) != after.get(name))
