"""The notifier: a client of the session like any other, subscribed to its feed through
the control socket. It lives in the session's process (it starts once the socket serves
and ends after the session's last events), yet the loop never calls it: the session only
publishes, and a slow or hanging service costs the research nothing.

A watcher thread folds the feed into notes (`Watcher`, no I/O); each service has a channel
thread of its own. A service that starts or stops failing is said on stderr and told to
the session (the `notified` command: a `notify_failed` journal event, the status line).
"""
from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cockpit import protocol
from cockpit.client.connection import NoSession, Subscription, request
from cockpit.notify.services import Channel, Note, Service, configured_urls, parse_services
from cockpit.notify.watcher import Watcher
from cockpit.workspace.config import NotifyConfig
from cockpit.workspace.paths import session_dir

TICK = 1.0  # seconds between the watcher's looks at the clock (approvals, stalls, summary)
FLUSH_SECONDS = 10.0  # the session's last messages get this long once it ended


class Notifier:
    """Sends the session's news (see the package's doc). `observe` takes the feed's frames;
    the first `quiet` journal events happened before it came: folded, never said."""

    def __init__(self, settings: NotifyConfig, tag: str,
                 report: Callable[[str, bool, str], None] | None = None,
                 quiet: int = 0, plot: Path | None = None) -> None:
        self.settings = settings
        self.tag = tag
        self.report = report  # (service, ok, error): the session journals a failing one
        self.quiet = quiet
        self.plot = plot  # where the summary's plot is drawn
        services, unknown = parse_services(configured_urls(settings))
        self.failing: set[str] = set()
        self._lock = threading.Lock()
        self.watcher = Watcher(settings, tag, time.time())
        self.channels = [Channel(s, settings, tag, self._result) for s in services]
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.subscription: Subscription | None = None
        for service in unknown:  # said, journaled and shown like a service that fails
            self._result(service, False, "not a URL apprise knows; see `cockpit doctor`")
        self.thread = threading.Thread(target=self._watch, name="notify-watch", daemon=True)
        self.thread.start()

    def observe(self, message: dict) -> None:
        """A frame of the session's feed: queued, folded on the watcher's thread."""
        if message.get("type") in (protocol.JOURNAL, protocol.LIVE):
            self._inbox.put(message)

    def close(self, timeout: float = FLUSH_SECONDS) -> None:
        """The session ended: send what is queued (its last news) within `timeout`."""
        deadline = time.monotonic() + timeout
        if self.subscription is not None:
            self.subscription.close()
        self._inbox.put(None)
        self.thread.join(timeout)
        self.report = None  # no session to tell a failure now: stderr only
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
            if message and message["type"] == protocol.JOURNAL:
                for i, event in enumerate(message["events"], message["start"]):
                    if i < self.quiet:
                        watcher.history([event])
                    else:
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

        assert self.plot is not None
        self.plot.parent.mkdir(parents=True, exist_ok=True)
        render_plot(SessionFacts.from_state(self.watcher.state), self.plot)
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


def attach(workspace: Path, settings: NotifyConfig, tag: str, since: int) -> Notifier | None:
    """The session's notifier, subscribed to it (None when [notify] has no URL). Events
    before `since` happened before this start (a resumed session): folded, not said."""
    if not configured_urls(settings):
        return None

    def report(service: str, ok: bool, error: str) -> None:
        try:
            request(workspace, "notified", service=service, ok=ok, error=error)
        except NoSession:  # the session is ending: stderr has said it
            pass

    notifier = Notifier(settings, tag, report=report, quiet=since,
                        plot=session_dir(workspace, tag) / "summary.png")
    notifier.subscription = Subscription(workspace, 0, notifier.observe, output=False)
    return notifier
