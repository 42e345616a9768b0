"""The research loop with several experiments in flight (the `gpus` and `ray` runners).

One coordinator, this loop's thread, owns git, the journal, results.tsv and the shared
best; workers only run commands. Each worker has its own worktree and branch
(autoresearch/<tag>-gpu<k>); results come back through one inbox queue and are judged one
at a time, in the order they finish, so every record stays single-writer.

The shared best is the session branch autoresearch/<tag> (the workspace's checkout):
a keep moves it, and a worker's next proposal is built on it, so a gain found by one
worker reaches the others at their next experiment (a `rebase` event names who found it).
Noise and keep re-runs (measure) run here, on this machine, as in the sequential loop.
"""
from __future__ import annotations

import difflib
import queue
import shutil
import threading
from pathlib import Path
from typing import Callable

from cockpit.agents import (
    AgentError,
    AgentExhausted,
    AgentUnavailable,
    Proposal,
    ProposalFailed,
)
from cockpit.config import Config
from cockpit.history import History
from cockpit.journal import Experiment
from cockpit.loop import MAX_CRASH_STREAK, LoopError, ResearchLoop, _sha
from cockpit.records import REPORT_NAME, write_experiments_md
from cockpit.runners.local import LocalRunner, kill_leftovers, new_run_id, training_env
from cockpit.runners.pool import Finished, Job, WorkerPool

WAIT_SECONDS = 0.1  # the coordinator's longest sleep: stop and pause answer within it
INTERRUPTED = "interrupted: cockpit stopped during this experiment"


def worker_branch(tag: str, worker: int) -> str:
    return History.branch_for(f"{tag}-gpu{worker}")


def make_pool(config: Config) -> WorkerPool:
    """The configured backend (imports Ray only for the ray runner)."""
    runner = config.runner
    if runner.kind == "ray":
        from cockpit.runners.cluster import RayPool, RayUnavailable

        try:
            return RayPool(runner.workers, runner.address)
        except RayUnavailable as exc:
            raise LoopError(str(exc)) from None
    from cockpit.hardware import gpus
    from cockpit.runners.gpus import GpuPool

    found = len(gpus())
    workers = runner.workers or max(found, 1)
    # more workers than GPUs share them round-robin (or run on CPU when there are none)
    devices = [str(k % found) for k in range(workers)] if found else None
    return GpuPool(workers, devices)


def make_loop(workspace: Path, config: Config, tag: str, **kwargs) -> ResearchLoop:
    """The sequential loop for the local runner, the parallel one for the others."""
    if config.runner.kind == "local":
        return ResearchLoop(workspace, config, tag, **kwargs)
    return ParallelLoop(workspace, config, tag, **kwargs)


class Runners:
    """What the rest of the cockpit knows as `loop.runner`: the local runner (data
    preparation, measurements) and the pool's workers, stopped and asked together."""

    def __init__(self, local: LocalRunner) -> None:
        self.local = local
        self.pool: WorkerPool | None = None

    def run(self, *args, **kwargs):
        return self.local.run(*args, **kwargs)

    def stop(self) -> None:
        self.local.stop()
        if self.pool is not None:
            self.pool.stop()

    @property
    def running(self) -> bool:
        return self.local.running or (self.pool is not None and self.pool.running)


class ParallelLoop(ResearchLoop):
    def __init__(self, workspace: Path, config: Config, tag: str,
                 pool: WorkerPool | Callable[[], WorkerPool] | None = None, **kwargs) -> None:
        runner = kwargs.pop("runner", None) or LocalRunner()
        super().__init__(workspace, config, tag, runner=Runners(runner), **kwargs)
        self._pool_source = pool if pool is not None else (lambda: make_pool(config))
        self.pool: WorkerPool | None = None
        # on_worker_output(worker, text): every worker's output; the TUI keeps one log each
        self.on_worker_output: Callable[[int, str], None] | None = None
        self._inbox: queue.Queue = queue.Queue()
        self._trees: dict[int, Path] = {}
        self._heads: dict[int, str] = {}  # each worker's branch head
        self._bases: dict[int, str] = {}  # the best each worker's last proposal was built on
        self._awaiting: dict[int, tuple[int, Proposal, str]] = {}  # n -> (worker, proposal, base)

    @property
    def workers(self) -> int:
        return self.pool.workers if self.pool is not None else 0

    # -- the run -------------------------------------------------------------------
    def run(self, max_experiments: int | None = None) -> str:
        self._preflight()
        self.open_session()
        try:
            pool = self._pool_source() if callable(self._pool_source) else self._pool_source
            self.pool = pool
            self.runner.pool = pool
            pool.results = self._inbox  # results, pids and decisions: one queue, one reader
            self._record("workers", kind=pool.kind, workers=pool.workers)
            self.on_event("workers", {"kind": pool.kind, "workers": pool.workers})
            self._make_worktrees()
            self._prepare_data()
            return self._drive(max_experiments)
        finally:
            if self.pool is not None:
                self.pool.stop()
                self._drain_after_stop()
                self.pool.close()
            self._remove_worktrees()
            self.close_session()

    def _drive(self, max_experiments: int | None) -> str:
        self._started = self._crash_streak = 0
        failed_streak = 0
        ending = ""  # why no new experiment starts; the ones in flight still finish
        while True:
            # Judge what has come back first, so the next proposals know of it.
            item = self._poll_inbox(wait=False)
            while item is not None:
                ending = self._take(item) or ending
                if self._stop.is_set() and ending.startswith("the baseline"):
                    return ending
                item = self._poll_inbox(wait=False)
            if not ending and self._stop.is_set():
                ending = "stopped"
            if not ending and max_experiments is not None and self._started >= max_experiments:
                ending = f"ran {max_experiments} experiment{'s' * (max_experiments != 1)} as asked"
            if not ending and self._resume.is_set():
                limit = self._cost_limit_reached()
                if limit and self._pause_for(limit, "cost"):
                    ending = f"paused: {limit}"
            while not ending and self._resume.is_set() and not self._stop.is_set():
                if max_experiments is not None and self._started >= max_experiments:
                    break
                free = self._free_workers()
                if not self._inbox.empty():
                    break  # a result came back: judge it before the next proposal
                if not free or (self.state.best is None and self._busy()):
                    break  # the baseline runs alone: every idea is judged against it
                try:
                    self._dispatch(free[0])
                except AgentExhausted as exc:
                    ending = str(exc)
                    break
                except AgentError as exc:
                    raise LoopError(f"{self.agent.name} agent: {exc}") from None
                except AgentUnavailable as exc:
                    if self._pause_for(str(exc), "provider"):
                        ending = f"paused: {exc}"
                    break
                except ProposalFailed as exc:
                    failed_streak, ending = self._proposal_failed(exc, failed_streak)
                    break
                failed_streak = 0
                self._started += 1
            if not self._busy():
                if ending:
                    return ending
                if self._stop.is_set():
                    return "stopped"
            item = self._poll_inbox(wait=True)
            if item is not None:
                ending = self._take(item) or ending
                if self._stop.is_set() and ending.startswith("the baseline"):
                    return ending

    def _take(self, item) -> str:
        """Handle one message; a reason to start no more experiments, or ""."""
        exp = self._handle(item)
        if exp is None or exp.status == "rejected":
            return ""
        if self.state.best is None and exp.status == "crash":
            self._stop.set()
            return (f"the baseline run crashed ({exp.reason}); fix the setup and run "
                    f"again (log: {exp.log})")
        self._crash_streak = self._crash_streak + 1 if exp.status == "crash" else 0
        if self._crash_streak >= MAX_CRASH_STREAK:
            return f"{self._crash_streak} experiments in a row crashed; last: {exp.reason}"
        return ""

    def _poll_inbox(self, wait: bool):
        try:
            return self._inbox.get(timeout=WAIT_SECONDS) if wait else self._inbox.get_nowait()
        except queue.Empty:
            return None

    def _busy(self) -> bool:
        return self.pool.running or bool(self._awaiting) or not self._inbox.empty()

    def _free_workers(self) -> list[int]:
        reserved = {worker for worker, _, _ in self._awaiting.values()}
        return [k for k in self.pool.idle() if k not in reserved]

    def _handle(self, item) -> Experiment | None:
        """One message from a worker or the human; the experiment it finished, if any."""
        if isinstance(item, Finished):
            return self._finish(item)
        kind = item[0]
        if kind == "pid":
            _, n, pid = item
            self._record("run_pid", n=n, pid=pid)
        elif kind == "decision":
            _, n, approved, reason = item
            worker, proposal, base = self._awaiting.pop(n)
            if approved:
                self._launch(n, worker, proposal, base)
            else:
                self._record("result", n=n, status="rejected", metric=None,
                             reason=f"rejected by the human: {reason or 'no reason given'}")
                exp = self._experiment(n)
                write_experiments_md(self.workspace / REPORT_NAME, self.state)
                self.on_event("result", {"experiment": exp})
                return exp
        return None

    # -- one experiment: propose -> (approve) -> commit on the worker's branch -> run --
    def _dispatch(self, worker: int) -> None:
        n = self.state.next_n
        baseline = self.state.best is None
        proposal = self._baseline() if baseline else self._repair_or_propose(n)
        if not baseline:
            self._check(n, proposal)
        base = self._best_commit()  # the shared best: every proposal is built on it
        editable = self.config.experiment.editable
        diff = "".join(difflib.unified_diff(
            self._read_editable().splitlines(keepends=True),
            proposal.source.splitlines(keepends=True),
            fromfile=f"a/{editable}", tofile=f"b/{editable}"))
        self._record("proposal", n=n, worker=worker, description=proposal.description,
                     hypothesis=proposal.hypothesis, diff=diff, params=proposal.params,
                     move=proposal.move, source_sha=_sha(proposal.source),
                     repair_of=proposal.repair_of, attempts=proposal.attempts,
                     usage=proposal.usage, base=base)
        if not baseline and not self.auto_approve and self.approver is not None:
            # The human decides on their own time; the other workers go on meanwhile.
            self._awaiting[n] = (worker, proposal, base)
            self.on_event("awaiting_approval", {"n": n, "proposal": proposal, "diff": diff,
                                                "worker": worker})
            threading.Thread(target=self._ask, args=(n, proposal, diff), daemon=True,
                             name=f"approval-{n}").start()
            return
        self._launch(n, worker, proposal, base, baseline=baseline)

    def _ask(self, n: int, proposal: Proposal, diff: str) -> None:
        approved, reason = self.approver(n, proposal, diff)
        self._inbox.put(("decision", n, approved, reason))

    def _launch(self, n: int, worker: int, proposal: Proposal, base: str,
                baseline: bool = False) -> None:
        tree = self._trees[worker]
        work = History(tree)
        if self._heads.get(worker) != base:  # its last idea was discarded, or a new best
            work.reset_to(base)
        if self._bases.get(worker, base) != base:
            found = next((e for e in reversed(self.state.experiments)
                          if e.commit == base and e.status == "keep"), None)
            if found is None or found.worker != worker:  # another worker's gain reaches it
                who = {"found_n": found.n if found else None,
                       "found_by": found.worker if found else None}
                self._record("rebase", worker=worker, onto=base, **who)
                self.on_event("rebase", {"worker": worker, "onto": base, **who})
        self._bases[worker] = base
        editable = self.config.experiment.editable
        if baseline:
            commit = base
        else:
            (tree / editable).write_text(proposal.source, encoding="utf-8")
            commit = work.commit_file(editable, proposal.description)
        work.repo.close()
        self._heads[worker] = commit
        self.history.keep_ref(self.tag, n, commit)
        self._record("commit", n=n, commit=commit)
        log = self.dir / "runs" / f"{n:04d}" / "run.log"
        relative = str(log.relative_to(self.workspace))
        run_id = new_run_id()
        self._record("run_start", n=n, commit=commit, log=relative, run_id=run_id)
        self.on_event("run_start", {"n": n, "commit": commit, "description": proposal.description,
                                    "hypothesis": proposal.hypothesis, "log": relative,
                                    "worker": worker})
        experiment = self.config.experiment
        remote = self.pool.kind == "ray"
        job = Job(n=n, worker=worker, commit=commit, command=experiment.train_command,
                  cwd=tree, log_path=log, timeout=experiment.hard_timeout,
                  env={"COCKPIT_TIME_BUDGET": str(experiment.time_budget)},
                  files=self.history.tree_files(commit) if remote else None,
                  prepare=self.prepare_command() if remote else "", run_id=run_id)
        self.pool.start(job, on_output=self._worker_output,
                        on_start=lambda pid: self._inbox.put(("pid", n, pid)))

    def _finish(self, finished: Finished) -> Experiment:
        job, result = finished.job, finished.result
        n = job.n
        self.on_event("judging", {"n": n, "worker": job.worker})
        self._judge(n, job.commit, result, job.log_path)
        exp = self._experiment(n)
        if exp.status == "keep":
            self.history.reset_to(exp.commit)  # the session branch is the shared best
        self._record_outcome(exp)
        return exp

    # -- measurements (noise floor, keep re-runs) run in worker 0's place ------------------
    def measure(self, commit: str, runs: int, purpose: str) -> list[float]:
        # Worker 0's device must be free, or the re-runs would share it and measure that.
        while 0 not in self.pool.idle() and not self._stop.is_set():
            self._stop.wait(WAIT_SECONDS)
        return super().measure(commit, runs, purpose)

    def _train(self, cwd: Path, log: Path, on_start=None, run_id: str | None = None):
        devices = getattr(self.pool, "devices", None)
        if not devices:
            return super()._train(cwd, log, on_start, run_id)
        experiment = self.config.experiment
        env = {"COCKPIT_TIME_BUDGET": str(experiment.time_budget),
               "CUDA_VISIBLE_DEVICES": devices[0]}
        return self.runner.run(experiment.train_command, cwd=cwd, log_path=log,
                               timeout=experiment.hard_timeout, env=training_env(env),
                               on_output=self.on_output, on_start=on_start, run_id=run_id)

    def _worker_output(self, worker: int, text: str) -> None:
        if self.on_worker_output is not None:
            self.on_worker_output(worker, text)

    def _drain_after_stop(self) -> None:
        """The loop ends (a stop, an error): every run in flight ends and is recorded."""
        while self.pool.running or not self._inbox.empty():
            try:
                item = self._inbox.get(timeout=WAIT_SECONDS)
            except queue.Empty:
                continue
            try:
                if isinstance(item, Finished) or item[0] == "pid":
                    self._handle(item)
            except Exception:  # recording what we can matters more than one failure here
                continue

    # -- journal -------------------------------------------------------------------
    def _record(self, event: str, **fields) -> dict:
        # every event about an experiment names its worker (absent means worker 0)
        if "n" in fields and "worker" not in fields and event != "proposal":
            exp = next((e for e in reversed(self.state.experiments) if e.n == fields["n"]), None)
            if exp is not None:
                fields["worker"] = exp.worker
        return super()._record(event, **fields)

    def _resume_session(self, branch: str) -> None:
        """Every experiment a killed cockpit left in flight is a crash (not only the last)."""
        last = self.state.in_flight  # the sequential loop's recovery takes this one
        for exp in [e for e in self.state.running if e is not last]:
            if exp.run_id and kill_leftovers(exp.run_id, exp.pid):
                self.on_event("orphan_killed", {"n": exp.n, "pid": exp.pid})
            self._record("result", n=exp.n, commit=exp.commit, status="crash", metric=None,
                         memory_gb=0.0, summary={}, seconds=0.0, reason=INTERRUPTED,
                         delta_best=None, delta_baseline=None)
            self.on_event("recovered", {"n": exp.n})
        super()._resume_session(branch)

    # -- worktrees -----------------------------------------------------------------
    def _make_worktrees(self) -> None:
        best = self._best_commit()
        for k in range(self.pool.workers):
            path = self.dir / "workers" / f"gpu{k}"
            self._drop_tree(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.history.add_branch_worktree(str(path), worker_branch(self.tag, k), best)
            self._trees[k] = path
            self._heads[k] = self._bases[k] = best

    def _remove_worktrees(self) -> None:
        for path in self._trees.values():
            self._drop_tree(path)
        self._trees.clear()

    def _drop_tree(self, path: Path) -> None:
        if not path.exists():
            return
        try:
            self.history.remove_worktree(str(path))
        except Exception:  # half-made by a killed cockpit: the files go, git forgets it
            shutil.rmtree(path, ignore_errors=True)
            self.history.repo.git.worktree("prune")
