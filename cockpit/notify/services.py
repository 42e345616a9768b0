"""The services a note goes to, through apprise: the URLs configured and where each was
set, how to name a service without its tokens, one send, and a channel per service that
rate-limits, merges a burst into one message and resends with a backoff."""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote

from cockpit.domain.errors import CockpitError
from cockpit.workspace.config import NotifyConfig

MAX_ERROR = 200  # characters of a service's error kept
UNKNOWN = "is not a URL apprise knows: see https://github.com/caronc/apprise/wiki"


class NotifyError(CockpitError):
    """[notify] cannot be used as set (one line: what to fix)."""


@dataclass
class Note:
    """One message: what it is about (one of NOTIFY_EVENTS, or "test"), its words, files."""

    kind: str
    title: str
    body: str
    attach: tuple[str, ...] = ()


@dataclass
class Service:
    """One URL of [notify] urls, and how to speak of it without its tokens."""

    label: str  # "Telegram (urls[2])"
    url: str
    attachments: bool  # the service takes files


URLS_ENV = "COCKPIT_NOTIFY_URLS"
URLS_FILE = "~/.config/cockpit/notify"


def configured_urls(settings: NotifyConfig) -> list[tuple[str, str]]:
    """Every notification URL with where it was set: (origin, url), cockpit.toml's first."""
    found = [(f"urls[{i}]", url) for i, url in enumerate(settings.urls, 1)]
    found += [(f"{URLS_ENV}[{i}]", url)
              for i, url in enumerate(os.environ.get(URLS_ENV, "").split(), 1)]
    path = Path(os.path.expanduser(URLS_FILE))
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    found += [(f"{URLS_FILE}:{k}", line.strip()) for k, line in enumerate(lines, 1)
              if line.strip() and not line.lstrip().startswith("#")]
    return found


def parse_services(urls: list[tuple[str, str]]) -> tuple[list[Service], list[Service]]:
    """The URLs apprise knows, as services, and the ones it does not (named by scheme)."""
    import apprise

    quiet_apprise()
    known, unknown = [], []
    for origin, url in urls:
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            scheme = url.split("://", 1)[0] if "://" in url else "no scheme"
            unknown.append(Service(f"{origin} ({scheme}://...)", url, False))
        else:
            known.append(Service(f"{plugin.service_name} ({origin})", url,
                                 bool(getattr(plugin, "attachment_support", False))))
    return known, unknown


def url_secrets(url: str) -> list[str]:
    """The parts of a URL that may be secret (user, password, host, path, query values),
    longest first."""
    rest = url.split("://", 1)[-1]
    rest, _, query = rest.partition("?")
    parts = re.split(r"[/:@#]", rest) + [value for _, value in parse_qsl(query)]
    found = {p for part in parts for p in (part, unquote(part)) if len(p) >= 3}
    return sorted(found, key=len, reverse=True)


def redact(text: str, urls: list[str]) -> str:
    """text with every part of the URLs that may be secret masked."""
    for url in urls:
        for secret in url_secrets(url):
            text = text.replace(secret, "***")
    return text


def quiet_apprise() -> None:
    """apprise logs URLs with their tokens: its records stop here (never on stderr); why a
    send failed is read from its result instead."""
    logger = logging.getLogger("apprise")
    if logger.propagate:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def send(service: Service, note: Note) -> tuple[bool, str]:
    """Send one note to one service: (delivered, why not, redacted)."""
    import apprise

    quiet_apprise()
    sender = apprise.Apprise()
    sender.add(service.url)
    attach = None
    if note.attach and service.attachments:
        attach = apprise.AppriseAttachment()
        for path in note.attach:
            attach.add(path)
    try:
        result = sender.notify(title=note.title, body=note.body, attach=attach)
    except Exception as exc:  # a plugin's bug must not end the notifier
        return False, redact(f"{type(exc).__name__}: {exc}", [service.url])[:MAX_ERROR]
    if result:
        return True, ""
    problems = [entry.message for entry in getattr(result, "logs", lambda: ())()
                if entry.level in ("WARNING", "ERROR", "CRITICAL")]
    why = problems[-1] if problems else "not delivered"
    return False, redact(why, [service.url])[:MAX_ERROR]


def merge(notes: list[Note], tag: str) -> Note:
    """A burst as one message."""
    if len(notes) == 1:
        return notes[0]
    body = "\n\n".join(f"{note.title}\n{note.body}" for note in notes)
    attach = tuple(dict.fromkeys(path for note in notes for path in note.attach))
    return Note("+".join(dict.fromkeys(n.kind for n in notes)),
                f"cockpit {tag}: {len(notes)} updates", body, attach)


class Channel:
    """One service: a thread of its own, at most one message per min_interval (what comes
    meanwhile is merged into the next), resends with a doubling backoff."""

    def __init__(self, service: Service, settings: NotifyConfig, tag: str,
                 on_result: Callable[[Service, bool, str], None]) -> None:
        self.service = service
        self.settings = settings
        self.tag = tag
        self.on_result = on_result
        self.pending: list[Note] = []
        self.cond = threading.Condition()
        self.closing = False
        self._last = float("-inf")
        self.thread = threading.Thread(target=self._run, name=f"notify-{service.label}",
                                       daemon=True)
        self.thread.start()

    def put(self, note: Note) -> None:
        with self.cond:
            self.pending.append(note)
            self.cond.notify()

    def close(self) -> None:
        """Send what is pending now (the rate limit waived), then end."""
        with self.cond:
            self.closing = True
            self.cond.notify()

    def _run(self) -> None:
        while True:
            with self.cond:
                while True:
                    if self.closing and not self.pending:
                        return
                    wait = None
                    if self.pending:
                        wait = 0.0 if self.closing else \
                            self._last + self.settings.min_interval - time.monotonic()
                        if wait <= 0:
                            break
                    self.cond.wait(wait)
                notes, self.pending = self.pending, []
            self._deliver(merge(notes, self.tag))
            self._last = time.monotonic()

    def _deliver(self, note: Note) -> None:
        why = ""
        for attempt in range(self.settings.retries + 1):
            if attempt:
                time.sleep(self.settings.backoff * 2 ** (attempt - 1))
            ok, why = send(self.service, note)
            if ok:
                self.on_result(self.service, True, "")
                return
        self.on_result(self.service, False, why)
