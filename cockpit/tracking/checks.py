"""`cockpit doctor` on tracking: which trackers a session writes to, and the library each
needs (TensorBoard's "auto" is content without it; one asked for by name is not)."""
from __future__ import annotations

from cockpit.domain.findings import FIX, OK, Finding
from cockpit.tracking.exporter import INSTALL, installed
from cockpit.workspace.config import TrackingConfig
from cockpit.workspace.paths import STATE_DIR, TENSORBOARD_NAME


def check(settings: TrackingConfig) -> list[Finding]:
    return [_tensorboard(settings), *_services(settings)]


def _tensorboard(settings: TrackingConfig) -> Finding:
    where = f"{STATE_DIR}/<tag>/{TENSORBOARD_NAME}"
    if settings.tensorboard is False:
        return Finding(OK, "tracking", "TensorBoard export off ([tracking] tensorboard = false)")
    if installed("tensorboard"):
        return Finding(OK, "tracking", f"TensorBoard event files in {where}: "
                       f"`tensorboard --logdir {STATE_DIR}/<tag>`")
    if settings.tensorboard == "auto":
        return Finding(OK, "tracking", "no TensorBoard event files: tensorboard is not "
                       f"installed ({INSTALL['tensorboard']} writes them)")
    return Finding(FIX, "tracking", "[tracking] tensorboard = true, but tensorboard is not "
                   f"installed: {INSTALL['tensorboard']}")


def _services(settings: TrackingConfig) -> list[Finding]:
    found = []
    for key, label, where in (
            ("wandb", "W&B", f"{settings.wandb_mode} runs in project {settings.wandb_project}"
             + (f" ({STATE_DIR}/<tag>/wandb: `wandb sync` uploads them)"
                if settings.wandb_mode == "offline" else "")),
            ("mlflow", "MLflow", "runs in " + (settings.mlflow_uri.split("@")[-1]
                                               or f"{STATE_DIR}/<tag>/mlruns"))):
        if not getattr(settings, key):
            continue
        if installed(key):
            found.append(Finding(OK, "tracking", f"{label}: {where}"))
        else:
            found.append(Finding(FIX, "tracking", f"[tracking] {key} = true, but {key} is not "
                                 f"installed: {INSTALL[key]}"))
    return found
