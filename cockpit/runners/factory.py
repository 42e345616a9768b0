"""The configured pool of workers (imports Ray only for the ray runner)."""
from __future__ import annotations

from cockpit.runners.pool import WorkerPool
from cockpit.workspace.config import Config


def make_pool(config: Config) -> WorkerPool:
    runner = config.runner
    passthrough = tuple(getattr(config.experiment, "env", ()) or ())
    if runner.kind == "ray":
        from cockpit.runners.cluster import RayPool

        return RayPool(runner.workers, runner.address, passthrough=passthrough)
    from cockpit.runners.gpus import GpuPool

    if runner.kind == "local":
        return GpuPool(1, None, passthrough=passthrough, kind="local")
    from cockpit.runners.hardware import gpus

    found = len(gpus())
    workers = runner.workers or max(found, 1)
    # more workers than GPUs share them round-robin (without GPUs the variable goes unused)
    devices = [str(k % found if found else k) for k in range(workers)]
    return GpuPool(workers, devices, passthrough=passthrough)
