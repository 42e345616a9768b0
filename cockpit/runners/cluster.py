"""Workers on a Ray cluster: one actor per worker slot, each holding one GPU (or one CPU
on a cluster without GPUs) and running one experiment at a time.

A job ships as the commit's files (no shared filesystem is assumed), runs under the same
LocalRunner watchdog on the node, and its log comes back while it runs: the driver polls
the actor (a threaded actor, so poll and stop are served while run works). An actor
that dies, or a node that is lost, turns that one experiment into a crash with the
reason; the slot gets a fresh actor for its next job.

Ray is imported only here, and only when this backend is chosen.
"""
from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from cockpit.domain.errors import CockpitError
from cockpit.runners.environment import training_env
from cockpit.runners.local import LocalRunner, RunResult, new_run_id
from cockpit.runners.logfile import CappedLog
from cockpit.runners.outcome import WORKER_LOST
from cockpit.runners.pool import Capabilities, Job, WorkerLost, WorkerPool
from cockpit.runners.processes import kill_leftovers

POLL_SECONDS = 0.2  # how often a run's new log text is fetched from its node
CALL_TIMEOUT = 30.0  # a poll that takes longer means the node is in trouble; try again
ACTOR_START_TIMEOUT = 600.0  # no free GPU (or CPU) for a worker this long: its job crashes
PREPARE_TIMEOUT = 3600
RAY_MISSING = "the ray runner needs Ray: pip install 'cockpit[ray]' (or pip install ray)"


class RayUnavailable(CockpitError):
    """Ray is not installed or the cluster cannot be reached (one line for the user)."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailable(RAY_MISSING) from None
    return ray


class TrainWorker:
    """The actor: runs jobs in scratch directories on its node and serves their log."""

    def __init__(self) -> None:
        self.runner = LocalRunner()
        self.root = Path(tempfile.mkdtemp(prefix="cockpit-ray-"))
        self.prepared: set[str] = set()
        self._lock = threading.Lock()
        self._log: Path | None = None
        self._offset = 0
        self._pid: int | None = None

    def where(self) -> dict:
        return {"host": socket.gethostname(), "pid": os.getpid()}

    def run(self, n: int, files: dict[str, bytes], command: str, timeout: float,
            env: dict[str, str], prepare: str, passthrough: tuple[str, ...] = (),
            run_id: str = "") -> dict:
        workdir = self.root / f"{n:06d}"
        for name, data in files.items():
            path = workdir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        workdir.mkdir(parents=True, exist_ok=True)
        log = self.root / f"{n:06d}.log"
        with self._lock:
            fetched, self._log, self._offset, self._pid = self._log, log, 0, None
        if fetched is not None:  # the last run's log: its pool read it all before this run
            fetched.unlink(missing_ok=True)
        try:
            if prepare and prepare not in self.prepared:  # this node's data, once
                prepared = self.runner.run(prepare, cwd=workdir, log_path=self.root / "prepare.log",
                                           timeout=PREPARE_TIMEOUT, env=training_env())
                if prepared.returncode != 0:
                    why = prepared.error or "see its log"
                    return asdict(RunResult(None, 0.0, error=f"`{prepare}` failed on "
                                            f"{socket.gethostname()}: {why}"))
                self.prepared.add(prepare)
            result = self.runner.run(command, cwd=workdir, log_path=log, timeout=timeout,
                                     env=training_env(env, passthrough=passthrough),
                                     on_start=self._started, run_id=run_id or None)
            return asdict(result)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _started(self, pid: int) -> None:
        with self._lock:
            self._pid = pid

    def poll(self) -> tuple[bytes, int | None]:
        """The current run's log text since the last poll, and its process id."""
        with self._lock:
            log, offset, pid = self._log, self._offset, self._pid
        if log is None:  # no run yet
            return b"", pid
        try:
            with open(log, "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:  # its log not written yet
            return b"", pid
        with self._lock:
            if self._log == log:
                self._offset = offset + len(data)
        return data, pid

    def stop(self) -> None:
        self.runner.stop()

    def cleanup(self) -> None:
        """Remove the actor's scratch directory (the session is over)."""
        shutil.rmtree(self.root, ignore_errors=True)


class RayPool(WorkerPool):
    kind = "ray"
    capabilities = Capabilities(remote=True)

    def __init__(self, workers: int = 0, address: str = "", poll_seconds: float = POLL_SECONDS,
                 passthrough: tuple[str, ...] = (),
                 actor_start_timeout: float = ACTOR_START_TIMEOUT, **init_kwargs) -> None:
        """workers 0: one per GPU of the cluster, or per CPU on a cluster without GPUs."""
        ray = self.ray = import_ray()
        self._owns_ray = False
        if not ray.is_initialized():
            try:
                local = {} if address else {"include_dashboard": False}
                ray.init(address=address or None, log_to_driver=False, **local, **init_kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"at {address}" if address else "locally"
                raise RayUnavailable(f"cannot start or reach Ray {where}: {exc}") from None
            self._owns_ray = True
        resources = ray.cluster_resources()
        self.use_gpus = resources.get("GPU", 0) >= 1
        if workers < 1:
            workers = max(1, int(resources.get("GPU" if self.use_gpus else "CPU", 1)))
        super().__init__(workers)
        self.passthrough = tuple(passthrough)
        self.poll_seconds = poll_seconds
        self.host = socket.gethostname()
        self._actors: list = [None] * workers
        self._hosts: list[str | None] = [None] * workers  # where each actor lives
        self._lost = [False] * workers  # its actor died (with its node?): waits for a new one
        self._pending: list = [None] * workers  # (a lost worker's new actor, its placement)
        self.actor_start_timeout = actor_start_timeout
        # Ship this code by value: the cluster's nodes need Ray, not cockpit installed.
        import cockpit.runners.disk
        import cockpit.runners.environment
        import cockpit.runners.local
        import cockpit.runners.logfile
        import cockpit.runners.processes
        import cockpit.runners.sandbox
        for module in (cockpit.runners.sandbox, cockpit.runners.disk, cockpit.runners.logfile,
                       cockpit.runners.environment, cockpit.runners.processes,
                       cockpit.runners.local, sys.modules[__name__]):
            ray.cloudpickle.register_pickle_by_value(module)
        self._actor_class = ray.remote(TrainWorker)

    def _new_actor(self):
        need = {"num_gpus": 1} if self.use_gpus else {"num_cpus": 1}
        return self._actor_class.options(max_concurrency=4, max_restarts=0, **need).remote()

    def _actor(self, worker: int):
        if self._actors[worker] is None:
            actor = self._new_actor()
            try:
                where = self.ray.get(actor.where.remote(), timeout=self.actor_start_timeout)
            except self.ray.exceptions.GetTimeoutError:
                self.ray.kill(actor, no_restart=True)
                self._lost[worker] = True  # the cluster has no room for it now: parked
                raise WorkerLost(f"no room on the cluster for worker {worker} (a node was "
                                 f"lost?) within {self.actor_start_timeout:g} s") from None
            self._hosts[worker] = where["host"]
            self._actors[worker] = actor
            self._lost[worker] = False
        return self._actors[worker]

    def idle(self) -> list[int]:
        """Idle workers; one whose actor was lost is back only once a new actor of its is
        placed on the cluster, so the session goes on with the others meanwhile."""
        return [k for k in super().idle() if not self._lost[k] or self._replaced(k)]

    def _replaced(self, worker: int) -> bool:
        if self._pending[worker] is None:
            actor = self._new_actor()
            self._pending[worker] = (actor, actor.where.remote())
        actor, where = self._pending[worker]
        if not self.ray.wait([where], timeout=0)[0]:
            return False  # no room on the cluster yet
        try:
            self._hosts[worker] = self.ray.get(where)["host"]
        except self.ray.exceptions.RayError:
            self._pending[worker] = None  # that one was lost too: the next check tries again
            return False
        self._actors[worker], self._pending[worker], self._lost[worker] = actor, None, False
        return True

    def warm_up(self) -> None:
        """Start every worker's actor now (so the first experiments do not pay for it)."""
        for k in range(self.workers):
            self._actor(k)

    def run_job(self, job: Job, on_output: Callable[[str], None] | None,
                on_start: Callable[[int], None] | None) -> RunResult:
        ray = self.ray
        actor = self._actor(job.worker)
        start = time.monotonic()
        run_id = job.run_id or new_run_id()
        ref = actor.run.remote(job.n, job.files or {}, job.command, job.timeout, job.env,
                               job.prepare, self.passthrough, run_id)
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        pid = None
        with open(job.log_path, "w+b") as file:
            log = CappedLog(file, job.log_limit)  # the node's copy goes with its next run
            def fetch() -> None:
                nonlocal pid
                try:
                    data, polled = ray.get(actor.poll.remote(), timeout=CALL_TIMEOUT)
                except ray.exceptions.GetTimeoutError:
                    return
                if polled and polled != pid:
                    pid = polled
                    if on_start is not None and self._hosts[job.worker] == self.host:
                        on_start(pid)  # on this machine: a restarted cockpit can end it
                if data:
                    log.write(data)
                    log.flush()
                    if on_output is not None:
                        on_output(data.decode("utf-8", errors="replace"))

            while True:
                done, _ = ray.wait([ref], timeout=self.poll_seconds)
                try:
                    fetch()
                except ray.exceptions.RayError:
                    pass  # the run's own reference says what happened
                if done:
                    break
            try:
                result = RunResult(**ray.get(ref))
                fetch()  # what the run wrote after the last poll
                return result
            except ray.exceptions.RayError as exc:
                self._actors[job.worker] = None  # the slot gets a fresh actor next time
                self._lost[job.worker] = True
                self._reap(actor, run_id, pid, self._hosts[job.worker])
                why = _first_line(exc)
                message = f"{WORKER_LOST}: {type(exc).__name__}: {why}"
                log.write(f"\n{message}\n".encode())
                return RunResult(None, time.monotonic() - start, error=message)

    def _reap(self, actor, run_id: str, pid: int | None, host: str | None) -> None:
        """A dead actor leaves its training process behind (its own process group): on
        this host we end it; a lost node took its processes with it."""
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception:
            pass
        if host == self.host:
            kill_leftovers(run_id, pid)

    def stop_runs(self, worker: int | None) -> None:
        for job in self.busy_jobs():
            actor = self._actors[job.worker]
            if actor is not None and (worker is None or job.worker == worker):
                actor.stop.remote()

    def close(self) -> None:
        actors = [a for a in self._actors if a is not None] + [p[0] for p in self._pending if p]
        self._actors, self._pending = [None] * self.workers, [None] * self.workers
        try:  # scratch directories on the nodes (an actor lost with its node keeps its own)
            self.ray.get([actor.cleanup.remote() for actor in actors], timeout=CALL_TIMEOUT)
        except Exception:
            pass
        for actor in actors:
            try:
                self.ray.kill(actor)
            except Exception:
                pass
        if self._owns_ray:
            self.ray.shutdown()


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else "no reason given")[:300]
