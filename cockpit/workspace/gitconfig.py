"""The repository's config, watched: code of an experiment (a run without the sandbox, a
command agent) may plant a key that makes git run a command (a filter, a textconv, an
include, fsmonitor). Before each of cockpit's git commands the config is compared with the
one the session began with: a new key of that kind is refused (ConfigTampered) and can be
put back, the planted copy kept; a harmless change (a new remote) is the new normal.
"""
from __future__ import annotations

import os
import re
import shutil
import threading
import time
from pathlib import Path

from cockpit.workspace.errors import HistoryError

# Keys in a repository's config that make git run a command or read another file.
RISKY_SECTIONS = ("filter", "include", "includeif", "merge", "diff", "gpg", "credential")
RISKY_KEYS = {"core.fsmonitor", "core.hookspath", "core.sshcommand", "core.pager",
              "core.editor", "core.askpass", "core.gitproxy", "extensions.worktreeconfig",
              "sequence.editor", "uploadpack.packobjectshook"}
CONFIG_SETTLE = 0.02  # seconds between two reads of a changed config: is a write under way?



class ConfigTampered(HistoryError):
    """The repository's config gained keys that would make git run a command."""

    def __init__(self, path: Path, keys: list[str], before: bytes) -> None:
        super().__init__(f"{path} gained {', '.join(keys)} during the session; cockpit runs "
                         "no git command over it")
        self.keys = keys
        self.before = before



def risky_config_keys(text: bytes) -> set[str]:
    """The keys of a git config file (its text) that can make git run a command."""
    found, section = set(), ""
    for raw in text.decode("utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        header = re.match(r'^\[\s*([A-Za-z0-9.-]+)(?:\s+"(.*)")?\s*\]', line)
        if header:
            section = header.group(1).lower() + (f'."{header.group(2)}"' if header.group(2) else "")
            line = line[header.end():].strip()
            if not line:
                continue
        key = line.split("=", 1)[0].strip().lower()
        name = section.split(".", 1)[0]
        full = f"{name}.{key}"
        if name in RISKY_SECTIONS or full in RISKY_KEYS:
            found.add(f"{section}.{key}")
    return found


class ConfigGuard:
    def __init__(self, path: Path) -> None:
        self._config_path = path
        self._config_seen = self._read_config()
        self.lock = threading.RLock()  # the agent's thread runs git too

    def check(self) -> None:
        """Refuse a config that gained a key that runs a command since the session began
        (ConfigTampered); a harmless change is accepted as the new normal."""
        with self.lock:
            current = self._read_config()
            if current == self._config_seen:
                return
            current = self._read_settled(current)  # never take half a write as the new normal
            planted = risky_config_keys(current) - risky_config_keys(self._config_seen)
            if planted:
                raise ConfigTampered(self._config_path, sorted(planted), self._config_seen)
            self._config_seen = current

    def restore(self, tampered: ConfigTampered, keep_in: Path) -> Path:
        """Put the config back as it was, keeping the tampered copy (nothing is lost)."""
        with self.lock:
            keep_in.mkdir(parents=True, exist_ok=True)
            stamp, k = time.strftime('%Y%m%d-%H%M%S'), 1
            copy = keep_in / f"git-config-{stamp}"
            while copy.exists():  # planted again within the second: a copy of its own
                k += 1
                copy = keep_in / f"git-config-{stamp}-{k}"
            shutil.copyfile(self._config_path, copy)
            self._replace_config(tampered.before)
            self._config_seen = tampered.before
            return copy

    def _replace_config(self, text: bytes) -> None:
        """Write the config whole, by rename, as git does: a run still appending to it writes
        into the file it opened, never into the one put back, and no reader sees it empty."""
        fresh = self._config_path.with_name("config.cockpit-restore")
        fresh.write_bytes(text)
        try:
            shutil.copymode(self._config_path, fresh)
        except OSError:
            pass
        os.replace(fresh, self._config_path)

    def _read_settled(self, first: bytes, tries: int = 50) -> bytes:
        """The config once two reads a moment apart agree (a writer may be half done)."""
        for _ in range(tries):
            time.sleep(CONFIG_SETTLE)
            again = self._read_config()
            if again == first:
                return again
            first = again
        return first

    def _read_config(self) -> bytes:
        try:
            return self._config_path.read_bytes()
        except OSError:
            return b""
