"""The workers every run goes through: experiments, re-runs, confirm runs alike.

A pool has `workers` slots. start(job) returns at once; the run happens on a thread of
the pool's own, and what happens to it arrives on `results` (the coordinator's inbox): a
Started with its process id, then a Finished with its outcome. So judging, the journal and
results.tsv stay with one writer. A backend only says how one job runs (run_job); a job
that raises becomes a RunResult with the reason, never a lost slot.
"""
from __future__ import annotations

import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cockpit.runners.local import RunResult
from cockpit.runners.outcome import WORKER_LOST

if TYPE_CHECKING:
    from cockpit.runners.disk import DiskFloor
    from cockpit.runners.evaluation import Evaluation
    from cockpit.runners.sandbox import SandboxPolicy

Output = Callable[["Job", str], None]  # (the job, text it printed)


class WorkerLost(Exception):
    """The machine a run was on went away (or has no room for its worker): the run is a
    crash of the infrastructure, not of the idea or the setup."""


@dataclass
class Job:
    n: int  # the experiment (or, for a re-run, the measurement's number)
    worker: int  # the slot that runs it
    commit: str
    command: str
    cwd: Path  # where it runs on this machine (a worker's worktree)
    log_path: Path  # where its log lands on this machine
    timeout: float
    # Variables added to the training environment; each backend builds the rest where
    # the run happens (secrets scrubbed), so one machine's PATH never reaches another.
    env: dict[str, str] = field(default_factory=dict)
    # The commit's tracked files, for a backend that runs it on another machine.
    files: dict[str, bytes] | None = None
    prepare: str = ""  # run once per remote worker before its first job ("" = none)
    kind: str = "experiment"  # or "measure": a re-run of a commit, unchanged
    run_id: str = ""  # marks every process of the run, so none is left behind
    sandbox: SandboxPolicy | None = None  # the run's sandbox, or None
    log_limit: int | None = None  # bytes its log keeps at most (its start and its end)
    disk: DiskFloor | None = None  # the room its disks must keep, or None
    stop_requested: bool = False  # asked to stop, maybe before its process even started
    # Measuring its artifact once it trained (None: its printed summary is its result).
    evaluation: Evaluation | None = None
    allowance: float | None = None  # cockpit's clock: seconds beyond the budget it may take
    # What the run leaves for cockpit (its artifact, private caches): removed when it ends.
    scratch: Path | None = None


@dataclass
class Started:
    job: Job
    pid: int


@dataclass
class Finished:
    job: Job
    result: RunResult
    outcome: tuple | None = None  # the coordinator's reading of the run, once made
    ended: float = field(default_factory=time.time)  # when its worker was free again


@dataclass(frozen=True)
class Capabilities:
    """What a backend does with a job, so the loop asks what it can, not what it is."""

    # Runs on another machine: the job ships its commit's files (no worktree here, no
    # sandbox of cockpit's, no check of its files here), and each machine prepares its own
    # data before its first job.
    remote: bool = False
    # Measures a run's artifact with the workspace's evaluator, on the run's machine.
    measures: bool = False


class WorkerPool:
    """Threads that each run one job at a time; subclasses say how (run_job)."""

    kind = "pool"  # the runner's name, as the journal records it
    capabilities = Capabilities()

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self.workers = workers
        self.results: queue.Queue[Started | Finished] = queue.Queue()
        self._busy: dict[int, Job] = {}
        self._lock = threading.Lock()

    # -- the coordinator's side ------------------------------------------------------
    def idle(self) -> list[int]:
        with self._lock:
            return [k for k in range(self.workers) if k not in self._busy]

    @property
    def running(self) -> bool:
        with self._lock:
            return bool(self._busy)

    def busy_jobs(self) -> list[Job]:
        with self._lock:
            return list(self._busy.values())

    def start(self, job: Job, on_output: Output | None = None) -> None:
        with self._lock:
            if job.worker in self._busy:
                raise RuntimeError(f"worker {job.worker} is busy with #{self._busy[job.worker].n}")
            self._busy[job.worker] = job
        thread = threading.Thread(target=self._work, args=(job, on_output),
                                  name=f"worker-{job.worker}", daemon=True)
        thread.start()

    def stop(self, worker: int | None = None) -> None:
        """End the run of one worker, or of all of them (the human asked for it). A run
        asked to stop before its process started never starts."""
        for job in self.busy_jobs():
            if worker is None or job.worker == worker:
                job.stop_requested = True
        self.stop_runs(worker)

    def stop_runs(self, worker: int | None) -> None:
        """The backend's part of stop(): end the processes."""

    def close(self) -> None:
        """Release what the backend holds (processes, a cluster connection)."""

    # -- the worker's side -----------------------------------------------------------
    def _work(self, job: Job, on_output: Output | None) -> None:
        emit = (lambda text: on_output(job, text)) if on_output else None
        try:
            result = self.run_job(job, emit, lambda pid: self.results.put(Started(job, pid)))
        except WorkerLost as exc:
            result = RunResult(None, 0.0, error=f"{WORKER_LOST}: {exc}")
        except Exception as exc:  # a backend failure is this experiment's crash, not the loop's
            result = RunResult(None, 0.0, error=f"worker {job.worker} failed: "
                                                f"{type(exc).__name__}: {exc}")
        if job.scratch is not None:  # its artifact may be gigabytes: gone with the run
            shutil.rmtree(job.scratch, ignore_errors=True)
        with self._lock:  # together: an idle worker's result is already in the queue
            self._busy.pop(job.worker, None)
            self.results.put(Finished(job, result))

    def run_job(self, job: Job, on_output: Callable[[str], None] | None,
                on_start: Callable[[int], None] | None) -> RunResult:
        raise NotImplementedError
