"""Notifications: the session's news on a phone or in a chat, through apprise.

`[notify] urls` names the services (one apprise URL each: ntfy, Telegram, Discord, Slack,
e-mail, a JSON webhook ...), `events` what is worth a message: a new best, a pause that
waits for a human (cost limit, provider down, a proposal waiting too long for approval), a
crash streak, a stall (no keep for N experiments or H hours), the session's end, and a
daily summary at a set local time (with the progress plot where the service takes files).

The coordinator never waits on a network: `Notifier.observe` only queues the message. A
watcher thread folds the journal into notes (`Watcher`, no I/O), and each service has a
channel thread of its own that rate-limits (a burst becomes one message), sends, and
resends with a backoff. A service that still fails is reported once to the session (a
`notify_failed` journal event, the status line) and on stderr; the research goes on.

A service is named by apprise's name for it and where its URL was set ("Telegram
(urls[2])", "ntfy (COCKPIT_NOTIFY_URLS[1])"): the tokens a URL holds never reach the
journal, a log or the screen.

The URLs come from `[notify] urls` in cockpit.toml, the COCKPIT_NOTIFY_URLS environment
variable (whitespace-separated) and the file ~/.config/cockpit/notify (one a line). The
last two are where secrets belong: a run never sees either (the environment it gets drops
COCKPIT_* and every URL; the sandbox hides ~/.config), while a committed cockpit.toml is in
every run's worktree (`cockpit doctor` warns).
"""
from __future__ import annotations

import logging
import os
import queue
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qsl, unquote

from cockpit.workspace.config import CONFIG_NAME, NOTIFY_EVENTS, NotifyConfig
from cockpit.domain.errors import CockpitError
from cockpit.domain.state import SessionState
from cockpit.domain.events import NOT_THE_IDEAS_FAULT, legacy_cause
from cockpit.domain.judge import gain_of

TICK = 1.0  # seconds between the watcher's looks at the clock (approvals, stalls, summary)
FLUSH_SECONDS = 10.0  # the session's last messages get this long once it ended
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


class Watcher:
    """What is worth a message, folded from the journal and the live state: notes, no I/O.

    `history` folds events that happened before (nothing is said of them); `journal` and
    `live` fold what comes and return the notes it makes; `tick` returns the notes the
    clock makes (a proposal waiting too long, hours without a keep, the daily summary)."""

    def __init__(self, settings: NotifyConfig, tag: str, now: float) -> None:
        self.settings = settings
        self.tag = tag
        self.state = SessionState()
        self.events: list[dict] = []
        self.host = socket.gethostname()
        self.awaiting: dict[int, float] = {}  # n -> since when it waits for a human
        self.told_awaiting: set[int] = set()
        self.crashes = 0  # in a row
        self.since_keep = 0  # judged experiments since the last keep
        self.keep_time = now  # when the last keep came (or the watch began)
        self.stall_told = False
        self.ended = False
        self.last_tick = now

    # -- folding -------------------------------------------------------------------------
    def history(self, events: list[dict]) -> None:
        for event in events:
            self.journal(event, quiet=True)
        self.keep_time = max(self.keep_time, self.last_tick)  # a resumed session's clock

    def journal(self, event: dict, quiet: bool = False) -> list[Note]:
        self.events.append(event)
        self.state.apply(event)
        kind = event.get("event")
        notes: list[Note] = []
        if kind == "session":  # a resumed session runs again
            self.ended = False
        if kind == "result" and event.get("status") in ("keep", "discard", "crash"):
            notes += self._result(event)
        elif kind == "paused" and event.get("kind") in ("cost", "provider", "proposals"):
            notes.append(self._note("paused", "paused: it waits for you", (
                f"{event.get('reason', '')}\n"
                + ("`cockpit resume` spends past the limit" if event.get("kind") == "cost"
                   else "`cockpit resume` (or p in the cockpit) goes on"))))
        elif kind == "session_end":
            self.ended = True
            notes.append(self._note("ended", f"session ended: {event.get('why', '')}",
                                    self.figures()))
        return [] if quiet else [n for n in notes if n.kind in self.settings.events]

    def _result(self, event: dict) -> list[Note]:
        notes = []
        status = event["status"]
        exp = self.state.get(event.get("n"))
        stopped = (event.get("cause") or legacy_cause(status, event.get("reason") or "")) \
            in NOT_THE_IDEAS_FAULT
        if status == "crash" and not stopped:
            self.crashes += 1
            if self.crashes == self.settings.crash_streak:
                notes.append(self._note("crashes", f"{self.crashes} crashes in a row", (
                    f"the last: #{event.get('n')} {exp.description if exp else ''}: "
                    f"{event.get('reason', '')}")))
        elif status != "crash":
            self.crashes = 0
        if status == "keep":
            self.since_keep, self.stall_told = 0, False
            self.keep_time = float(event.get("time") or time.time())
            if exp is not None and exp is not self.state.baseline:
                notes.append(self._best(exp))
            return notes
        if not stopped:
            self.since_keep += 1
        limit = self.settings.stalled_experiments
        if limit and self.since_keep >= limit and not self.stall_told:
            self.stall_told = True
            notes.append(self._stalled(f"{self.since_keep} experiments"))
        return notes

    def live(self, live: dict, now: float) -> list[Note]:
        waiting = set(live.get("awaiting") or [])
        for n in waiting - set(self.awaiting):
            self.awaiting[n] = now
        for n in set(self.awaiting) - waiting:
            del self.awaiting[n]
        return []

    def tick(self, now: float) -> list[Note]:
        notes = []
        minutes = self.settings.approval_minutes
        for n, since in sorted(self.awaiting.items()):
            if minutes and now - since >= minutes * 60 and n not in self.told_awaiting:
                self.told_awaiting.add(n)
                exp = self.state.get(n)
                notes.append(self._note("paused", f"#{n} waits for your approval", (
                    f"#{n} {exp.description if exp else ''} has waited {_span(now - since)}: "
                    f"`cockpit approve {n}` or `cockpit reject {n}` (a / r in the cockpit)")))
        hours = self.settings.stalled_hours
        if hours and not self.stall_told and self.state.baseline is not None \
                and now - self.keep_time >= hours * 3600 and not self.ended:
            self.stall_told = True
            notes.append(self._stalled(_span(now - self.keep_time)))
        if self._summary_due(self.last_tick, now):
            notes.append(self._note("summary", "daily summary", self.figures(now)))
        self.last_tick = now
        return [n for n in notes if n.kind in self.settings.events]

    def _summary_due(self, last: float, now: float) -> bool:
        """The summary time (local) fell in (last, now]."""
        if not self.settings.summary_at or not self.state.experiments:
            return False
        h, m, *s = (int(x) for x in self.settings.summary_at.split(":"))
        target = datetime.fromtimestamp(now).replace(hour=h, minute=m, second=s[0] if s else 0,
                                                     microsecond=0).timestamp()
        return last < target <= now

    # -- words ---------------------------------------------------------------------------
    def _note(self, kind: str, title: str, body: str) -> Note:
        return Note(kind, f"cockpit {self.tag}@{self.host}: {title}", body)

    def _best(self, exp) -> Note:
        state = self.state
        gain = gain_of(exp.delta_best, state.direction)
        words = [f"#{exp.n} {exp.description}: {state.metric} {exp.metric:.6f}"]
        if gain is not None:
            confidence = (f", {exp.confidence:.1f}x the noise" if exp.confidence is not None
                          else "")
            words.append(f"gain {gain:.6f} over the best{confidence}")
        base = state.baseline
        if base is not None and base.metric:
            words.append(f"{100 * (exp.metric - base.metric) / base.metric:+.2f}% vs the "
                         f"baseline {base.metric:.6f}")
        return self._note("best", f"new best {state.metric} {exp.metric:.6f}", "; ".join(words))

    def _stalled(self, span: str) -> Note:
        best = self.state.best
        where = f"; the best is still #{best.n} {best.metric:.6f}" if best is not None else ""
        return self._note("stalled", f"no keep in {span}", f"no change kept in {span}{where}. "
                          "program.md or a steering note (`cockpit steer`) may help")

    def figures(self, now: float | None = None) -> str:
        """The session in a few lines: best vs baseline, kept, crashes, pace, cost."""
        from cockpit.domain.stats import pace, result_times

        state = self.state
        ran = state.ran
        kept = [e for e in ran if e.status == "keep" and e is not state.baseline]
        lines = []
        base, best = state.baseline, state.best
        if base is not None and best is not None:
            pct = 100 * (best.metric - base.metric) / base.metric if base.metric else 0.0
            lines.append(f"{state.metric}: best {best.metric:.6f} (#{best.n} "
                         f"{best.description}), baseline {base.metric:.6f}: {pct:+.2f}%")
        per_hour = pace(state, result_times(self.events),
                        now or max((e.get("time", 0.0) for e in self.events), default=0.0)
                        ).per_hour
        lines.append(f"{len(ran)} experiments: {len(kept)} kept, "
                     f"{sum(e.status == 'discard' for e in ran)} discarded, "
                     f"{sum(e.status == 'crash' for e in ran)} crashed"
                     + (f"; {per_hour:.1f} per hour" if per_hour else ""))
        for e in kept[-3:]:
            gain = gain_of(e.delta_best, state.direction)
            lines.append(f"kept #{e.n} {e.description}"
                         + (f" (gain {gain:.6f})" if gain is not None else ""))
        cost = sum(e.get("cost_usd") or 0.0 for e in self.events if e.get("event") == "attempt")
        lines.append(f"model cost ${cost:.4f}")
        return "\n".join(lines)


class Notifier:
    """The coordinator's observer that sends the session's news (see the module's doc)."""

    def __init__(self, settings: NotifyConfig, tag: str,
                 report: Callable[[str, bool, str], None] | None = None,
                 backlog: Callable[[int], list[dict]] | None = None,
                 plot: Path | None = None) -> None:
        self.settings = settings
        self.tag = tag
        self.report = report  # (service, ok, error): the session journals a failing one
        self.backlog = backlog  # events[:n] of the session: what happened before we came
        self.plot = plot  # where the summary's plot is drawn
        services, unknown = parse_services(configured_urls(settings))
        self.failing: set[str] = set()
        self._lock = threading.Lock()
        self.watcher = Watcher(settings, tag, time.time())
        self.channels = [Channel(s, settings, tag, self._result) for s in services]
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._folded = False
        for service in unknown:  # said, journaled and shown like a service that fails
            self._result(service, False, "not a URL apprise knows; see `cockpit doctor`")
        self.thread = threading.Thread(target=self._watch, name="notify-watch", daemon=True)
        self.thread.start()

    def observe(self, message: dict) -> None:
        """The coordinator's observer: queue and return (never a wait, never I/O)."""
        if message.get("type") in ("journal", "live"):
            self._inbox.put(message)

    def close(self, timeout: float = FLUSH_SECONDS) -> None:
        """The session ended: send what is queued (its last news) within `timeout`."""
        deadline = time.monotonic() + timeout
        self._inbox.put(None)
        self.thread.join(timeout)
        self.report = None  # no session to journal a failure now: stderr only
        for channel in self.channels:
            channel.close()
        for channel in self.channels:
            channel.thread.join(max(0.0, deadline - time.monotonic()))

    def _watch(self) -> None:
        watcher = self.watcher
        while True:
            try:
                message = self._inbox.get(timeout=TICK)
            except queue.Empty:
                message = ""
            if message is None:
                return
            notes = watcher.tick(time.time())
            if message and message["type"] == "journal":
                if not self._folded and self.backlog is not None:
                    watcher.history(self.backlog(message["start"]))
                self._folded = True
                for event in message["events"]:
                    notes += watcher.journal(event)
            elif message:
                notes += watcher.live(message["live"], time.time())
            for note in notes:
                self._post(note)

    def _post(self, note: Note) -> None:
        if note.kind == "summary" and self.plot is not None and \
                any(c.service.attachments for c in self.channels):
            try:
                note.attach = (str(self._draw_plot()),)
            except Exception as exc:  # the words go out without the plot
                self._say(f"the summary's plot could not be drawn: {exc}")
        for channel in self.channels:
            channel.put(note)

    def _draw_plot(self) -> Path:
        from cockpit.workspace.report import SessionFacts, render_plot

        self.plot.parent.mkdir(parents=True, exist_ok=True)
        render_plot(SessionFacts.from_events(self.watcher.events), self.plot)
        return self.plot

    def _result(self, service: Service, ok: bool, error: str) -> None:
        """A channel's outcome: a service that starts or stops failing is said once."""
        with self._lock:
            changed = (service.label in self.failing) == ok
            if ok:
                self.failing.discard(service.label)
            else:
                self.failing.add(service.label)
        if not changed:
            return
        if not ok:
            self._say(f"notifications to {service.label} fail ({error}); the research goes on")
        report = self.report
        if report is not None:
            report(service.label, ok, error)

    def _say(self, line: str) -> None:
        print(f"cockpit: {line}", file=sys.stderr, flush=True)


def install(coordinator) -> Notifier | None:
    """The session's notifier, observing its coordinator (None when [notify] has no urls).
    A failing service is told to the coordinator as a command it need not answer."""
    settings = coordinator.config.notify
    if not configured_urls(settings):
        return None

    def report(service: str, ok: bool, error: str) -> None:
        coordinator.submit("notified", service=service, ok=ok, error=error)

    notifier = Notifier(settings, coordinator.tag, report=report,
                        backlog=lambda n: coordinator.events[:n],
                        plot=coordinator.dir / "summary.png")
    coordinator.observers.append(notifier.observe)
    return notifier


# -- `cockpit notify` and `cockpit doctor` ------------------------------------------------
def add_command(sub) -> None:
    notify = sub.add_parser("notify", help="the notifications of cockpit.toml [notify]: list "
                            "its services, or --test them")
    notify.add_argument("--test", action="store_true",
                        help="send one test message to each URL and say which worked "
                        "(exit 1 when any failed)")


def run(args) -> int:
    from cockpit.workspace.config import load_config

    workspace = args.workspace.resolve()
    settings = load_config(workspace).notify
    urls = configured_urls(settings)
    if not urls:
        raise NotifyError(f"no notification URL: put one in {URLS_FILE} (one a line; runs "
                          f"never see it) or in {URLS_ENV}, e.g. ntfys://ntfy.sh/YOUR-TOPIC "
                          f"(any apprise URL; [notify] urls in {CONFIG_NAME} works too)")
    services, unknown = parse_services(urls)
    if not args.test:
        for service in services:
            print(f"{service.label}{'' if service.attachments else ' (no files)'}")
        for service in unknown:
            print(f"FAIL  {service.label} {UNKNOWN}")
        print("events: " + (", ".join(e for e in NOTIFY_EVENTS if e in settings.events)
                            or "none"))
        return 1 if unknown else 0
    note = Note("test", "cockpit: a test message", f"From `cockpit notify --test` in "
                f"{workspace} on {socket.gethostname()}: the session's news will reach you here.")
    results: dict[str, tuple[bool, str]] = {}
    threads = [threading.Thread(target=lambda s=s: results.__setitem__(s.label, send(s, note)))
               for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for service in services:
        ok, why = results[service.label]
        print(f"ok    {service.label}" if ok else f"FAIL  {service.label}: {why}")
    for service in unknown:
        print(f"FAIL  {service.label} {UNKNOWN}")
    worked = sum(ok for ok, _ in results.values())
    print(f"{worked} of {len(urls)} worked")
    return 0 if worked == len(urls) else 1


def check(report, config, workspace: Path | None = None) -> None:
    """`cockpit doctor`: each notify URL parses (named without its tokens), and none sits in
    a cockpit.toml that git tracks (every run's worktree has a copy of it)."""
    from cockpit.cli.doctor import FIX, OK, WARN

    if config.notify.urls and workspace is not None and _tracked(workspace, CONFIG_NAME):
        report.line(WARN, "notify", f"[notify] urls in {CONFIG_NAME}, which git tracks: "
                    "their tokens are in your history and in every run's worktree; move "
                    f"them to {URLS_FILE} (one a line) or {URLS_ENV}, which runs never see")
    urls = configured_urls(config.notify)
    if not urls:
        report.line(OK, "notify", "no notification URL: no notifications")
        return
    try:
        services, unknown = parse_services(urls)
    except ImportError:
        report.line(FIX, "notify", "apprise is not installed: pip install apprise")
        return
    for service in unknown:
        report.line(FIX, "notify", f"{service.label} {UNKNOWN}")
    if services:
        report.line(OK, "notify", ", ".join(s.label for s in services) + " (`cockpit notify "
                    "--test` sends a test message)")


def _tracked(workspace: Path, name: str) -> bool:
    from cockpit.workspace.history import History, HistoryError

    try:
        return bool(History(workspace).git("ls-files", "--", name).strip())
    except HistoryError:
        return False


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min" if minutes else f"{int(seconds)} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"
