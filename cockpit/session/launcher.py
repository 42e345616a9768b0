"""Putting a run on a worker: its worktree at its commit, its sandbox, its log's cap and
its disk's floor, its environment; and preparing the data once per session start.
"""
from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from cockpit.domain.clock import allowance, deadline
from cockpit.runners.disk import MB
from cockpit.runners.environment import training_env
from cockpit.runners.evaluation import Evaluation, check
from cockpit.runners.local import LocalRunner, new_run_id
from cockpit.runners.outcome import failure_reason
from cockpit.runners.pool import Job, WorkerPool
from cockpit.session import measuring, sandboxing
from cockpit.session.errors import SessionError
from cockpit.session.measuring import SEED_VARIABLE, Measuring, seed_of
from cockpit.session.recorder import Recorder
from cockpit.session.scheduler import Slot
from cockpit.session.tamper import TamperGuard
from cockpit.workspace.config import Config
from cockpit.workspace.history import History
from cockpit.workspace.logs import read_tail
from cockpit.workspace.paths import (
    ARTIFACT_NAME,
    VAL_SPLIT_NAME,
    compile_cache,
    eval_log,
    evaluation_dir,
    handover_dir,
    run_log,
    run_scratch,
    scratch_root,
    session_dir,
)
from cockpit.workspace.worktrees import Worktrees

PREPARE_TIMEOUT = 3600
ARTIFACT_ENV = "COCKPIT_ARTIFACT"  # where a run writes its artifact (evaluate.hand_over)


class PrepareFailed(SessionError):
    """The data could not be prepared (one line for the user)."""


class EvaluatorNotReady(SessionError):
    """The workspace's evaluator cannot measure (one line for the user)."""


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
        self.state = recorder.state
        self.measuring = Measuring("", "reported", False, "")  # decided when the pool is up

    def job(self, pool: WorkerPool, worker: int, commit: str, log: Path, kind: str,
            key: int) -> Job:
        """A run of `commit` on `worker`, ready to start: timed by cockpit's clock, its
        artifact measured by the evaluator (when the session measures), the validation
        split out of its sight, and the compile cache writable only to the human's code."""
        remote = pool.capabilities.remote
        tree = self.trees.checkout(f"w{worker}", commit) if not remote else self.workspace
        experiment = self.config.experiment
        run_id = f"{self.tag}-{kind[0]}{key}-{uuid.uuid4().hex[:8]}"
        env = {"COCKPIT_TIME_BUDGET": str(experiment.time_budget)}
        if kind == "measure" and self.measuring.seeds:
            env[SEED_VARIABLE] = str(seed_of(key))  # re-runs measure seeds
        measures = self.measuring.measures and not remote
        handover = handover_dir(self.session_dir, run_id) if measures else None
        if handover is not None:
            handover.mkdir(parents=True, exist_ok=True)
            env[ARTIFACT_ENV] = str(handover / ARTIFACT_NAME)
        humans = commit == self.state.base  # the human's code may fill the compile cache
        sandbox = sandboxing.policy_for(
            self.config, self.workspace, tree, self.guard.data_dir, self.trees.shared_entries(),
            hidden=self.hidden_data() if measures else (), handover=handover,
            cache_layer=not humans) if self.sandboxed and not remote else None
        if sandbox is None and not remote:  # compilers' caches: never shared with the agent's
            env.update(self.private_caches(run_id, humans))
        allowed = allowance(experiment.time_budget,
                            self.state.run_seconds.get(self.state.base, ()))
        job = Job(n=key, worker=worker, commit=commit, command=experiment.train_command,
                  cwd=tree, log_path=log,
                  timeout=deadline(experiment.time_budget, allowed, experiment.hard_timeout),
                  log_limit=experiment.max_log_mb * MB, disk=self.guard.disk_floor(tree),
                  env=env, files=self.history.tree_files(commit) if remote else None,
                  prepare=prepare_command(self.config, self.workspace) if remote else "",
                  kind=kind, run_id=run_id, sandbox=sandbox, allowance=allowed,
                  scratch=run_scratch(self.session_dir, run_id))
        if handover is not None:
            job.evaluation = self.evaluation(commit, run_id, handover, eval_log(log))
        if sandbox is None and not remote:  # it could change the human's branches
            self.guard.watch_refs(job)
        return job

    def evaluation(self, commit: str, run_id: str, handover: Path, log: Path) -> Evaluation:
        """What measures run `run_id` of `commit`: the evaluator, its sandbox, its `log`."""
        where = evaluation_dir(self.session_dir, run_id)
        ev = measuring.evaluation(self.config, self.workspace, self.history, commit,
                                  self.measuring, where, handover / ARTIFACT_NAME, log)
        if self.sandboxed:
            ev.sandbox = sandboxing.evaluation_policy(self.config, self.workspace, where,
                                                      handover, self.guard.data_dir,
                                                      self.trees.shared_entries())
        return ev

    def hidden_data(self) -> list[Path]:
        """What of the data only the evaluator reads: the validation split."""
        data = self.guard.data_dir
        return [data / VAL_SPLIT_NAME] if data is not None else []

    def private_caches(self, run_id: str, humans: bool) -> dict[str, str]:
        """Without a sandbox: the compilers' caches in cockpit's cache for the human's code,
        in the run's scratch (removed when it ends) for the agent's."""
        cache = compile_cache(self.workspace) if humans \
            else run_scratch(self.session_dir, run_id) / "cache"
        return {"TRITON_CACHE_DIR": str(cache / "triton"),
                "TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor")}

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

    def clear_scratch(self) -> None:
        """What a killed session's runs left (artifacts, evaluators' folders, caches): no
        run is in flight when a session opens."""
        shutil.rmtree(scratch_root(self.session_dir), ignore_errors=True)

    def check_evaluator(self, commit: str) -> str:
        """What keeps the evaluator from measuring ("" when it is ready): its `--check`
        run as a measurement would run, its last line or its silence."""
        ev = self.evaluation(commit, "check", handover_dir(self.session_dir, "check"),
                             self.session_dir / "evaluate-check.log")
        passthrough = tuple(self.config.experiment.env or ())
        try:
            return check(LocalRunner(), ev, training_env(passthrough=passthrough))[1]
        finally:
            shutil.rmtree(run_scratch(self.session_dir, "check"), ignore_errors=True)

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
