"""TensorBoard, through its own writer (no TensorFlow): an event-file run per experiment
(its loss by step, its result, its verdict as text) and the session's own run (the metric
per experiment number), in one logdir that `tensorboard --logdir` opens."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Protocol

from cockpit.tracking.records import Record

SESSION_RUN = "session"  # the session's run, beside the experiments' ("0007-...")
LOSS_TAG = "train/loss"


class Sink(Protocol):
    """A tracker: it is given each finished experiment once (see exporter.Marker)."""

    key: str  # its name in the marker: "tensorboard", "wandb", "mlflow"
    label: str  # its name in a notice: "TensorBoard"

    def export(self, record: Record) -> None: ...

    def close(self) -> None: ...


class TensorBoardSink:
    """Writes `root`/<n>-<description> per experiment and `root`/session. An experiment's
    run is written in `scratch` and moved in whole, so a run in the logdir is complete; the
    session's run is written anew from `already` (experiments given before) at each start,
    so a resumed session never repeats a point."""

    key, label = "tensorboard", "TensorBoard"

    def __init__(self, root: Path, scratch: Path, already: list[Record]) -> None:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._writer_class = EventFileWriter
        self.root, self.scratch = root, scratch
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(root / SESSION_RUN, ignore_errors=True)
        self.session = EventFileWriter(str(root / SESSION_RUN))
        for record in sorted(already, key=lambda r: r.n):
            self._session_points(record)
        self.session.flush()

    def export(self, record: Record) -> None:
        partial = self.scratch / record.name
        shutil.rmtree(partial, ignore_errors=True)
        writer = self._writer_class(str(partial))
        try:
            for step, loss in record.losses:
                writer.add_event(_scalar(LOSS_TAG, loss, step, record.time))
            last = record.losses[-1][0] if record.losses else 0
            if record.metric is not None:
                writer.add_event(_scalar(record.metric_name, record.metric, last, record.time))
            writer.add_event(_text("result", _table(record), last, record.time))
        finally:
            writer.close()
        final = self.root / record.name
        shutil.rmtree(final, ignore_errors=True)  # half-given before a kill: given anew
        partial.rename(final)
        self._session_points(record)
        self.session.flush()

    def _session_points(self, record: Record) -> None:
        if record.metric is None:
            return
        self.session.add_event(_scalar(record.metric_name, record.metric, record.n,
                                       record.time))
        if record.status == "keep":
            self.session.add_event(_scalar(f"kept/{record.metric_name}", record.metric,
                                           record.n, record.time))

    def close(self) -> None:
        self.session.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _scalar(tag: str, value: float, step: int, when: float):
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.scalar.summary_v2 import scalar_pb

    return event_pb2.Event(wall_time=when, step=step, summary=scalar_pb(tag, value))


def _text(tag: str, markdown: str, step: int, when: float):
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.text.summary_v2 import text_pb

    return event_pb2.Event(wall_time=when, step=step, summary=text_pb(tag, markdown))


def _table(record: Record) -> str:
    """The experiment's facts as a markdown table (TensorBoard's text tab renders it)."""
    rows = [f"| {record.metric_name} | {_cell(_metric(record))} |"]
    rows += [f"| {name} | {_cell(value)} |" for name, value in record.facts().items()]
    return f"**#{record.n} {_cell(record.description)}**\n\n| | |\n|---|---|\n" + "\n".join(rows)


def _metric(record: Record) -> str:
    return f"{record.metric:.6f}" if record.metric is not None else "none"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
