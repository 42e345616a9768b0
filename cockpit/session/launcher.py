"""Putting a run on a worker: its worktree at its commit, its sandbox, its log's cap and
its disk's floor, its environment; and preparing the data once per session start.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from cockpit.runners.disk import MB
from cockpit.runners.environment import training_env
from cockpit.runners.local import LocalRunner, new_run_id
from cockpit.runners.outcome import failure_reason
from cockpit.runners.pool import Job, WorkerPool
from cockpit.session import sandboxing
from cockpit.session.errors import SessionError
from cockpit.session.recorder import Recorder
from cockpit.session.scheduler import Slot
from cockpit.session.tamper import TamperGuard
from cockpit.workspace.config import Config
from cockpit.workspace.history import History
from cockpit.workspace.logs import read_tail
from cockpit.workspace.paths import run_log, session_dir
from cockpit.workspace.worktrees import Worktrees

PREPARE_TIMEOUT = 3600


class PrepareFailed(SessionError):
    """The data could not be prepared (one line for the user)."""


def prepare_command(config: Config, workspace: Path) -> str:
    """The configured prepare command; "auto" runs prepare.py the way train runs, if present."""
    command = config.experiment.prepare_command
    if command != "auto":
        return command
    if not (workspace / "prepare.py").exists():
        return ""
    editable = config.experiment.editable
    words = config.experiment.train_command.split()
    if editable in words:
        return " ".join("prepare.py" if w == editable else w for w in words)
    return "python prepare.py"


class Launcher:
    def __init__(self, config: Config, workspace: Path, tag: str, history: History,
                 trees: Worktrees, guard: TamperGuard, sandboxed: bool,
                 recorder: Recorder) -> None:
        self.config = config
        self.workspace = workspace
        self.tag = tag
        self.session_dir = session_dir(workspace, tag)
        self.recorder = recorder
        self.history = history
        self.trees = trees
        self.guard = guard
        self.sandboxed = sandboxed  # this machine isolates runs (decided at the start)

    def job(self, pool: WorkerPool, worker: int, commit: str, log: Path, kind: str,
            key: int) -> Job:
        """A run of `commit` on `worker`, ready to start."""
        remote = pool.capabilities.remote
        tree = self.trees.checkout(f"w{worker}", commit) if not remote else self.workspace
        experiment = self.config.experiment
        sandbox = sandboxing.policy_for(self.config, self.workspace, tree, self.guard.data_dir,
                                        self.trees.shared_entries()) \
            if self.sandboxed and not remote else None
        job = Job(n=key, worker=worker, commit=commit, command=experiment.train_command,
                  cwd=tree, log_path=log, timeout=experiment.hard_timeout,
                  log_limit=experiment.max_log_mb * MB, disk=self.guard.disk_floor(tree),
                  env={"COCKPIT_TIME_BUDGET": str(experiment.time_budget)},
                  files=self.history.tree_files(commit) if remote else None,
                  prepare=prepare_command(self.config, self.workspace) if remote else "",
                  kind=kind, run_id=f"{self.tag}-{kind[0]}{key}-{uuid.uuid4().hex[:8]}",
                  sandbox=sandbox)
        if sandbox is None and not remote:  # it could change the human's branches
            self.guard.watch_refs(job)
        return job

    def start(self, pool: WorkerPool, slot: Slot, commit: str, kind: str, key: int,
              on_output: Callable[[Job, str], None], purpose: str = "") -> Job:
        """Put a run on the slot's worker: journaled (run_start, measure_start) before its
        first output can reach anyone."""
        log = run_log(self.session_dir, kind, key)
        job = self.job(pool, slot.worker, commit, log, kind, key)
        slot.job, slot.started = job, time.monotonic()
        where = str(log.relative_to(self.workspace))
        if kind == "experiment":
            self.recorder.record("run_start", n=key, commit=commit, log=where,
                                 worker=slot.worker, run_id=job.run_id)
        else:
            self.recorder.record("measure_start", k=key, commit=commit, purpose=purpose,
                                 worker=slot.worker, log=where, run_id=job.run_id)
        pool.start(job, on_output=on_output)
        return job

    def prepare(self, log: Path, best: str, on_output: Callable[[Job, str], None],
                started: Callable[[str, str], None], pid: Callable[[int], None],
                register: Callable[[LocalRunner | None], None]) -> None:
        """Run the prepare command once (fast when the data is there); raises PrepareFailed.
        `started(command, run_id)` and `pid(pid)` journal it; `register` lets a signal stop
        it meanwhile."""
        command = prepare_command(self.config, self.workspace)
        if not command:
            return
        tree = self.trees.checkout("w0", best)
        runner, run_id = LocalRunner(), new_run_id()
        register(runner)
        started(command, run_id)
        job = Job(n=0, worker=0, commit="", command=command, cwd=tree, log_path=log,
                  timeout=PREPARE_TIMEOUT, kind="prepare", run_id=run_id)
        try:
            passthrough = tuple(self.config.experiment.env or ())
            result = runner.run(command, cwd=tree, log_path=log, timeout=PREPARE_TIMEOUT,
                                env=training_env(passthrough=passthrough),
                                on_output=lambda text: on_output(job, text), on_start=pid,
                                run_id=run_id)
        finally:
            register(None)
        if result.stopped:
            raise PrepareFailed("stopped while preparing the data")
        if result.returncode != 0:
            why = result.error or failure_reason(read_tail(log))
            raise PrepareFailed(f"`{command}` failed ({why}); see {log}")
