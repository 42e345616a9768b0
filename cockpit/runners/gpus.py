"""Workers on this box: each job is a LocalRunner run (same watchdog, same sandbox) in the
worker's own worktree. With devices, worker k is pinned with CUDA_VISIBLE_DEVICES; the
`local` runner is this pool with one worker and no pinning."""
from __future__ import annotations

from collections.abc import Callable

from cockpit.runners.environment import training_env
from cockpit.runners.evaluation import evaluate
from cockpit.runners.local import LocalRunner, RunResult
from cockpit.runners.pool import Capabilities, Job, WorkerPool


class GpuPool(WorkerPool):
    kind = "gpus"
    capabilities = Capabilities(measures=True)

    def __init__(self, workers: int, devices: list[str] | None = None,
                 kill_grace: float | None = None, passthrough: tuple[str, ...] = (),
                 kind: str = "gpus") -> None:
        """devices: what CUDA_VISIBLE_DEVICES names for each worker (None: no pinning);
        passthrough: extra variable names the training environment keeps."""
        super().__init__(workers)
        self.kind = kind
        self.devices = list(devices) if devices else None
        if self.devices is not None and len(self.devices) < workers:
            raise ValueError(f"{workers} workers but only {len(self.devices)} devices")
        self.passthrough = tuple(passthrough)
        extra = {} if kill_grace is None else {"kill_grace": kill_grace}
        self.runners = [LocalRunner(**extra) for _ in range(workers)]

    def run_job(self, job: Job, on_output: Callable[[str], None] | None,
                on_start: Callable[[int], None] | None) -> RunResult:
        runner = self.runners[job.worker]
        if job.stop_requested:
            return RunResult(None, 0.0, stopped=True)

        def started(pid: int) -> None:
            if on_start is not None:
                on_start(pid)
            if job.stop_requested:  # asked while the process was being started
                runner.stop()

        pin = {} if self.devices is None else {"CUDA_VISIBLE_DEVICES": self.devices[job.worker]}
        env = training_env(dict(job.env, **pin), passthrough=self.passthrough)
        result = runner.run(job.command, cwd=job.cwd, log_path=job.log_path,
                            timeout=job.timeout, env=env, on_output=on_output,
                            on_start=started, run_id=job.run_id, sandbox=job.sandbox,
                            log_limit=job.log_limit, disk=job.disk)
        measuring = job.evaluation
        if measuring is None:
            return result
        result.handed_over = measuring.handed_over()
        if result.clean and result.handed_over and not job.stop_requested:
            eval_env = training_env(dict(measuring.env, **pin), passthrough=self.passthrough)
            result.evaluation = evaluate(runner, measuring, eval_env, on_output,
                                         f"{job.run_id}-eval")
        return result

    def stop_runs(self, worker: int | None) -> None:
        for k, runner in enumerate(self.runners):
            if worker is None or k == worker:
                runner.stop()
