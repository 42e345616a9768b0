"""One worker per device of this box: each job is a LocalRunner run (same watchdog, same
process group handling) in the worker's own worktree, pinned with CUDA_VISIBLE_DEVICES."""
from __future__ import annotations

from typing import Callable

from cockpit.runners.local import LocalRunner, RunResult, training_env
from cockpit.runners.pool import Job, WorkerPool


class GpuPool(WorkerPool):
    kind = "gpus"

    def __init__(self, workers: int, devices: list[str] | None = None,
                 kill_grace: float | None = None) -> None:
        """devices: what CUDA_VISIBLE_DEVICES names for each worker; by default worker k
        gets device k (on a CPU-only box the variable is set and simply unused)."""
        super().__init__(workers)
        self.devices = list(devices) if devices else [str(k) for k in range(workers)]
        if len(self.devices) < workers:
            raise ValueError(f"{workers} workers but only {len(self.devices)} devices")
        extra = {} if kill_grace is None else {"kill_grace": kill_grace}
        self.runners = [LocalRunner(**extra) for _ in range(workers)]

    def run_job(self, job: Job, on_output: Callable[[str], None] | None,
                on_start: Callable[[int], None] | None) -> RunResult:
        env = training_env(dict(job.env, CUDA_VISIBLE_DEVICES=self.devices[job.worker]))
        return self.runners[job.worker].run(job.command, cwd=job.cwd, log_path=job.log_path,
                                            timeout=job.timeout, env=env, on_output=on_output,
                                            on_start=on_start, run_id=job.run_id)

    def stop(self, worker: int | None = None) -> None:
        for k, runner in enumerate(self.runners):
            if worker is None or k == worker:
                runner.stop()
