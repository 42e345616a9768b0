"""The loop without a screen: one line per state change on stdout.

On a terminal the training's own `\\r` progress line updates in place; in a file (nohup,
CI) the training output stays in each run.log and only the state lines are printed.
"""
from __future__ import annotations

import sys

from cockpit.history import short
from cockpit.journal import Experiment


class HeadlessPrinter:
    def __init__(self, stream=None, metric: str = "val_bpb"):
        self.stream = stream or sys.stdout
        self.metric = metric
        self.live = self.stream.isatty()
        self._mid_line = False  # the last thing written was a \r progress line
        self._preparing = False  # prepare.py's output is streaming
        self.workers = 1  # more than one: each line names its worker

    def _who(self, worker) -> str:
        return f"[gpu{worker}] " if self.workers > 1 and worker is not None else ""

    def say(self, text: str) -> None:
        if self._mid_line:
            self.stream.write("\n")
            self._mid_line = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def on_output(self, text: str) -> None:
        # In a file only the data preparation's own progress lines pass (they are few);
        # the training's \r progress stays in each run.log.
        if not self.live and not self._preparing:
            return
        self.stream.write(text)
        self.stream.flush()
        self._mid_line = not text.endswith("\n")

    def on_event(self, kind: str, data: dict) -> None:
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(**data)

    def _on_session(self, tag, branch, resumed, experiments):
        if resumed:
            self.say(f"resuming session {tag} on {branch} ({experiments} experiments so far)")
        else:
            self.say(f"session {tag} on {branch}")

    def _on_recovered(self, n):
        self.say(f"#{n} was interrupted by a stop of cockpit: recorded as crash, branch reset to best")

    def _on_orphan_killed(self, n, pid):
        self.say(f"#{n}: its training process (pid {pid}) was still running; killed it")

    def _on_preparing(self, command):
        self.say(f"preparing data: {command}")
        self._preparing = True

    def _on_proposing(self, n):
        pass  # the proposal line follows at once for the offline agent

    def _on_workers(self, kind, workers):
        self.workers = workers
        self.say(f"{workers} worker{'s' * (workers != 1)} ({kind} runner)")

    def _on_rebase(self, worker, onto, found_n, found_by):
        found = f" (#{found_n}, found by gpu{found_by})" if found_n is not None else ""
        self.say(f"{self._who(worker) or f'[gpu{worker}] '}next ideas build on the new best "
                 f"{short(onto)}{found}")

    def _on_run_start(self, n, commit, description, hypothesis, log, worker=None):
        self._preparing = False
        self.say(f"{self._who(worker)}#{n} {description}  [{short(commit)}]")
        if hypothesis and description != "baseline":
            self.say(f"   why: {hypothesis}")
        if not self.live:
            self.say(f"   log: {log}")

    def _on_result(self, experiment: Experiment):
        e = experiment
        who = self._who(e.worker)
        if e.status in ("crash", "rejected"):
            self.say(f"{who}#{e.n} {e.status}  {e.reason}")
            return
        delta = "" if e.delta_best is None else f"  {e.delta_best:+.6f} vs best"
        self.say(f"{who}#{e.n} {self.metric} {e.metric:.6f}{delta}  {e.status}  ({e.seconds:.0f} s)"
                 + (f": {e.verdict}" if e.verdict else ""))

    def _on_measuring(self, commit, run, runs, purpose):
        self._preparing = False
        self.say(f"{purpose}: run {run} of {runs} of {short(commit)} unchanged")

    def _on_measured(self, commit, metric, reason):
        self.say(f"   {self.metric} {metric:.6f}" if metric is not None else f"   crash  {reason}")

    def _on_noise(self, noise, threshold):
        self.say(f"noise floor: std {noise.std:.6f}, MAD {noise.mad:.6f} over "
                 f"{len(noise.values)} runs; a keep must beat the best by > {threshold:.6f}")

    def _on_paused(self, reason=""):
        self.say(f"paused: {reason or 'the loop waits before the next experiment'}")

    def _on_attempt(self, n, accepted, kind="propose", attempt=1, problem="", cost_usd=0.0,
                    abandoned=False, reverted=(), **_):
        if reverted:
            self.say(f"#{n} the agent also touched {', '.join(reverted)}: reverted")
        if abandoned:
            self.say(f"#{n} the agent gives the crashed idea up")
        elif not accepted:
            self.say(f"#{n} {kind} answer {attempt} refused: {problem}")

    def _on_retry(self, n, reason, wait, retry, **_):
        self.say(f"#{n} model: {reason}; retry {retry} in {wait:g} s")

    def _on_repairing(self, n, crashed, of, tries, **data):
        self.say(f"#{n} asking for a fix of #{crashed}'s crash (fix {data['try']} of {tries})")

    def _on_abandoned(self, n, reason):
        self.say(f"#{n} idea abandoned: {reason}")

    def _on_proposal_failed(self, n, reason):
        self.say(f"#{n} no proposal: {reason}")

    def _on_resumed(self):
        self.say("resumed")
