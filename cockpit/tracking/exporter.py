"""The exporter: it follows a session's journal (read from disk, like a replay), folds it,
and gives each experiment that finished to each tracker once. A marker says which
experiments each tracker was given, so a resumed session repeats nothing; a tracker that
fails is said once, in one line, and left out: the others, and the research, go on."""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from cockpit.client.store import JournalTail
from cockpit.domain.reading import event_problem
from cockpit.domain.state import Experiment, SessionState
from cockpit.tracking.records import EXPORTED_STATUSES, Record, record_of
from cockpit.tracking.sinks import Sink, TensorBoardSink
from cockpit.workspace.config import TrackingConfig
from cockpit.workspace.paths import (
    journal_path,
    mlflow_store,
    tensorboard_dir,
    tracked_marker,
    tracking_scratch,
    wandb_dir,
)

INSTALL = {"tensorboard": "pip install 'cockpit[tracking]'", "wandb": "pip install wandb",
           "mlflow": "pip install mlflow"}


def say(line: str) -> None:
    """A notice on the session's stderr (its log, for a session in the background)."""
    print(f"cockpit: {line}", file=sys.stderr, flush=True)


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def wanted(settings: TrackingConfig) -> list[str]:
    """The trackers the settings ask for ("auto" TensorBoard only where it is installed)."""
    found = []
    if settings.tensorboard is True or (settings.tensorboard == "auto"
                                        and installed("tensorboard")):
        found.append("tensorboard")
    return found + [key for key in ("wandb", "mlflow") if getattr(settings, key)]


class Marker:
    """Which experiments each tracker was given: {"tensorboard": [1, 2, ...], ...}, written
    whole (a kill leaves the old marker or the new one, never half of one)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.given: dict[str, set[int]] = {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self.given = {str(k): {int(n) for n in v} for k, v in data.items()}
        except (OSError, ValueError, TypeError, AttributeError):
            pass  # none yet, or unreadable: everything is given (again, for a torn one)

    def has(self, key: str, n: int) -> bool:
        return n in self.given.get(key, set())

    def add(self, key: str, n: int) -> None:
        self.given.setdefault(key, set()).add(n)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps({k: sorted(v) for k, v in self.given.items()}),
                           encoding="utf-8")
        os.replace(partial, self.path)


class Exporter:
    """Follows one session's journal (`poll`) and gives its finished experiments to the
    trackers the settings ask for."""

    def __init__(self, workspace: Path, tag: str, settings: TrackingConfig,
                 notice: Callable[[str], None] = say) -> None:
        self.workspace, self.tag, self.settings = workspace, tag, settings
        self.notice = notice
        self.tail = JournalTail(journal_path(workspace, tag))
        self.state = SessionState()
        self.marker = Marker(tracked_marker(workspace, tag))
        self.sinks: list[Sink] = []
        self._opened = False

    def poll(self) -> int:
        """Fold what the journal gained; give what finished to the trackers. How many
        experiments were given."""
        finished: list[tuple[Experiment, float]] = []
        for event in self.tail.poll():
            if event_problem(event):
                continue  # a line its readers would skip (see domain.reading)
            try:
                self.state.apply(event)
            except (KeyError, TypeError, ValueError):
                continue  # out of order (a result before its proposal): folded by none
            exp = self.state.get(event.get("n")) if event["event"] == "result" else None
            if exp is not None and exp.status in EXPORTED_STATUSES:
                finished.append((exp, float(event.get("time") or 0.0)))
        if not self._opened:
            self._opened = True
            self._open([self._record(exp, when, curve=False) for exp, when in finished])
        return sum(self._give(exp, when) for exp, when in finished)

    def _record(self, exp: Experiment, when: float, curve: bool = True) -> Record:
        return record_of(exp, self.state.metric, self.workspace, when, curve)

    def _open(self, known: list[Record]) -> None:
        """The trackers, opened once the journal so far is folded (`known`: what finished
        in it; TensorBoard's session run is written anew from those it was given)."""
        for key in wanted(self.settings):
            try:
                self.sinks.append(self._sink(key, known))
            except ImportError:
                self.notice(f"{key} export is off: the {key} package is not installed "
                            f"({INSTALL[key]}); the research goes on")
            except Exception as exc:  # a bad setting, a disk error: this tracker is left out
                self.notice(f"{key} export is off ({_why(exc)}); the research goes on")

    def _sink(self, key: str, known: list[Record]) -> Sink:
        ws, tag = self.workspace, self.tag
        if key == "tensorboard":
            return TensorBoardSink(tensorboard_dir(ws, tag), tracking_scratch(ws, tag),
                                   [r for r in known if self.marker.has(key, r.n)])
        from cockpit.tracking.services import MlflowSink, WandbSink

        if key == "wandb":
            return WandbSink(self.settings, tag, wandb_dir(ws, tag))
        return MlflowSink(self.settings, tag, mlflow_store(ws, tag))

    def _give(self, exp: Experiment, when: float) -> int:
        """Give one experiment to each tracker that has not had it (its log is read only
        then: a resumed session reads no log twice)."""
        waiting = [sink for sink in self.sinks if not self.marker.has(sink.key, exp.n)]
        if not waiting:
            return 0
        record = self._record(exp, when)
        given = 0
        for sink in waiting:
            try:
                sink.export(record)
                self.marker.add(sink.key, record.n)
                given = 1
            except Exception as exc:  # said once; the others go on
                self.sinks.remove(sink)
                self.notice(f"{sink.label} export stopped at #{record.n} ({_why(exc)}); "
                            "the research goes on")
                with contextlib.suppress(Exception):
                    sink.close()
        return given

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                self.notice(f"{sink.label} export did not close ({_why(exc)})")
        self.sinks = []


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
