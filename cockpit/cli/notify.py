"""`cockpit notify`: the services [notify] names (without their tokens), or one test
message to each (`--test`), saying which worked."""
from __future__ import annotations

import socket
import threading

from cockpit.cli.args import workspace_of
from cockpit.domain.exits import EXIT_FOUND, EXIT_OK
from cockpit.notify.services import (
    UNKNOWN,
    URLS_ENV,
    URLS_FILE,
    Note,
    NotifyError,
    configured_urls,
    parse_services,
    send,
)
from cockpit.workspace.config import NOTIFY_EVENTS, load_config
from cockpit.workspace.paths import CONFIG_NAME


def add_command(sub) -> None:
    notify = sub.add_parser("notify", help="the notifications of cockpit.toml [notify]: list "
                            "its services, or --test them")
    notify.add_argument("--test", action="store_true",
                        help="send one test message to each URL and say which worked "
                        "(exit 1 when any failed)")


def run(args) -> int:
    workspace = workspace_of(args)
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
        return EXIT_FOUND if unknown else EXIT_OK
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
    return EXIT_OK if worked == len(urls) else EXIT_FOUND
