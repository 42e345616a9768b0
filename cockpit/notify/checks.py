"""`cockpit doctor` on notifications: each URL parses (named without its tokens), and none
sits in a cockpit.toml that git tracks (every run's worktree has a copy of it)."""
from __future__ import annotations

from pathlib import Path

from cockpit.domain.findings import FIX, OK, WARN, Finding
from cockpit.notify.services import UNKNOWN, URLS_ENV, URLS_FILE, configured_urls, parse_services
from cockpit.workspace.config import Config
from cockpit.workspace.history import History, HistoryError
from cockpit.workspace.paths import CONFIG_NAME


def check(config: Config, workspace: Path | None = None) -> list[Finding]:
    found = []
    if config.notify.urls and workspace is not None and _tracked(workspace, CONFIG_NAME):
        found.append(Finding(WARN, "notify", f"[notify] urls in {CONFIG_NAME}, which git "
                             "tracks: their tokens are in your history and in every run's "
                             f"worktree; move them to {URLS_FILE} (one a line) or {URLS_ENV}, "
                             "which runs never see"))
    urls = configured_urls(config.notify)
    if not urls:
        return found + [Finding(OK, "notify", "no notification URL: no notifications")]
    try:
        services, unknown = parse_services(urls)
    except ImportError:
        return found + [Finding(FIX, "notify", "apprise is not installed: pip install apprise")]
    found += [Finding(FIX, "notify", f"{service.label} {UNKNOWN}") for service in unknown]
    if services:
        found.append(Finding(OK, "notify", ", ".join(s.label for s in services)
                             + " (`cockpit notify --test` sends a test message)"))
    return found


def _tracked(workspace: Path, name: str) -> bool:
    try:
        with History(workspace) as history:
            return bool(history.git("ls-files", "--", name).strip())
    except HistoryError:
        return False
