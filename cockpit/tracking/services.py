"""W&B and MLflow, through their own libraries, each experiment a run of its own (its loss
by step, its result, its facts), offline first: W&B in "offline" mode unless [tracking]
wandb_mode says "online", MLflow in a file store under the session's folder unless
[tracking] mlflow_uri names another."""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from cockpit.tracking.records import Record
from cockpit.workspace.config import TrackingConfig

MLFLOW_BATCH = 1000  # metrics per log_batch call (the most MLflow takes)
MAX_PARAM = 500  # characters of a description MLflow keeps as a param


class WandbSink:
    """One W&B run per experiment, grouped by the session's tag."""

    key, label = "wandb", "W&B"

    def __init__(self, settings: TrackingConfig, tag: str, directory: Path) -> None:
        os.environ.setdefault("WANDB_SILENT", "true")  # its banners are not the session's
        os.environ.setdefault("WANDB_CONSOLE", "off")  # it must not capture this output
        import wandb

        self.wandb = wandb
        self.settings, self.tag, self.directory = settings, tag, directory
        directory.mkdir(parents=True, exist_ok=True)

    def export(self, record: Record) -> None:
        run = self.wandb.init(project=self.settings.wandb_project, group=self.tag,
                              name=record.name, id=_wandb_id(self.tag, record.n),
                              job_type="experiment", dir=str(self.directory),
                              mode=self.settings.wandb_mode,
                              config={"n": record.n, **record.facts()})
        try:
            for step, loss in record.losses:
                run.log({"train/loss": loss}, step=step)
            summary: dict[str, object] = {"status": record.status, "verdict": record.verdict}
            if record.metric is not None:
                summary[record.metric_name] = record.metric
            run.summary.update(summary)
        finally:
            run.finish(exit_code=0 if record.status != "crash" else 1)

    def close(self) -> None:
        pass


def _wandb_id(tag: str, n: int) -> str:
    """A run id W&B takes (letters, digits, - and _), the same for an experiment each time."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{tag}-{n:04d}")


class MlflowSink:
    """One MLflow run per experiment, in an MLflow experiment named after the session."""

    key, label = "mlflow", "MLflow"

    def __init__(self, settings: TrackingConfig, tag: str, store: Path) -> None:
        logging.getLogger("mlflow").setLevel(logging.ERROR)  # its notices are not ours
        from mlflow.tracking import MlflowClient

        uri = settings.mlflow_uri or store.resolve().as_uri()
        if uri.startswith("file:"):  # MLflow 3 keeps file stores only for those who ask
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(tracking_uri=uri)
        name = f"cockpit {tag}"
        found = self.client.get_experiment_by_name(name)
        self.experiment = found.experiment_id if found else self.client.create_experiment(name)

    def export(self, record: Record) -> None:
        from mlflow.entities import Metric, Param

        stamp = int(record.time * 1000)
        run = self.client.create_run(self.experiment, run_name=record.name,
                                     tags={"cockpit.status": record.status,
                                           "cockpit.verdict": record.verdict[:MAX_PARAM]})
        run_id = run.info.run_id
        metrics = [Metric("train/loss", loss, stamp, step) for step, loss in record.losses]
        if record.metric is not None:
            last = record.losses[-1][0] if record.losses else 0
            metrics.append(Metric(record.metric_name, record.metric, stamp, last))
        params = [Param(name, value[:MAX_PARAM]) for name, value in record.facts().items()
                  if name != "verdict"]
        for start in range(0, max(len(metrics), 1), MLFLOW_BATCH):
            self.client.log_batch(run_id, metrics=metrics[start:start + MLFLOW_BATCH],
                                  params=params if start == 0 else [])
        self.client.set_terminated(run_id, "FAILED" if record.status == "crash" else "FINISHED")

    def close(self) -> None:
        pass
