"""`python -m cockpit.tracking WORKSPACE TAG`: export a session's experiments to the
trackers [tracking] asks for. Beside a live session (see `companion`) it follows the
journal until its stdin closes; with `--once` it exports what the journal holds and ends
(a session of before, or one whose export was stopped)."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import warnings
from pathlib import Path

from cockpit.tracking.exporter import Exporter, say
from cockpit.workspace.config import ConfigError, TrackingConfig, load_config

POLL_SECONDS = 1.0  # between two looks at the journal
NICENESS = 10  # the runs and the loop come first when CPUs are few


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cockpit.tracking")
    parser.add_argument("workspace", type=Path)
    parser.add_argument("tag")
    parser.add_argument("--settings", help="[tracking] as JSON (default: cockpit.toml's)")
    parser.add_argument("--once", action="store_true",
                        help="export what the journal holds, then end")
    args = parser.parse_args(argv)
    with contextlib.suppress(OSError, AttributeError):  # no nice() on some systems
        os.nice(NICENESS)
    warnings.simplefilter("ignore")  # the trackers' libraries warn on the session's stderr
    try:
        settings = (TrackingConfig(**json.loads(args.settings)) if args.settings
                    else load_config(args.workspace).tracking)
    except (ConfigError, ValueError, TypeError) as exc:
        say(f"tracking export is off: {exc}")
        return 2
    exporter = Exporter(args.workspace, args.tag, settings)
    ended = threading.Event()
    if not args.once:
        threading.Thread(target=_until_closed, args=(ended,), daemon=True).start()
    try:
        while True:
            exporter.poll()
            if args.once or ended.wait(POLL_SECONDS):
                break
        exporter.poll()  # what the session's last moments added
    except Exception as exc:  # never the session's end: said, and this export stops
        say(f"tracking export stopped ({type(exc).__name__}: {exc}); the research goes on")
    finally:
        exporter.close()
    return 0


def _until_closed(ended: threading.Event) -> None:
    """Wait for stdin's end: the session closed it, or the session's process died."""
    try:
        sys.stdin.buffer.read()
    except (OSError, ValueError):
        pass
    ended.set()


if __name__ == "__main__":
    sys.exit(main())
