"""Early stop in a session: each running experiment's loss curve (from the progress lines
its output carries), checked once a second against the best's runs at the same progress.
It decides which runs to stop; the loop journals each decision and stops the run (or, in
shadow mode, only journals it). See domain.earlystop for the rule.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cockpit.domain.earlystop import Curve, EarlyStop, StopDecision
from cockpit.domain.state import SessionState
from cockpit.workspace.config import EarlyStopConfig
from cockpit.workspace.logs import read_tail

CHECK_SECONDS = 1.0  # how often running experiments are checked against the best
CURVE_BYTES = 20_000_000  # of a finished run's log read for its loss curve


@dataclass
class Stop:
    """A running experiment to stop (or, shadow, only to journal), and why."""

    worker: int
    n: int
    decision: StopDecision


class Stopper:
    def __init__(self, settings: EarlyStopConfig, workspace: Path) -> None:
        self.settings = settings
        self.workspace = workspace
        self.live: dict[int, Curve] = {}  # n -> its curve so far, while it runs
        self.decided: dict[int, StopDecision] = {}  # experiments stopped (or, shadow, not)
        self._curves: dict[str, Curve] = {}  # a finished run's log -> its curve
        self._lock = threading.Lock()  # curves grow on the workers' threads
        self._checked = 0.0

    def add(self, n: int, percent: float, loss: float) -> None:
        """A progress line of experiment n (its worker's thread)."""
        with self._lock:
            self.live.setdefault(n, Curve()).add(percent, loss)

    def forget(self, n: int) -> None:
        """Experiment n ended: only a running experiment is checked."""
        with self._lock:
            self.live.pop(n, None)

    def check(self, running: list[tuple[int, int]], state: SessionState) -> list[Stop]:
        """Once a second: the running experiments ((worker, n), the baseline's left out)
        hopelessly behind the best at the same progress, not decided before."""
        now = time.monotonic()
        if now - self._checked < CHECK_SECONDS:
            return []
        self._checked = now
        running = [(w, n) for w, n in running if n not in self.decided]
        if not running or state.best is None:
            return []
        stopper = self._calibrated(state)
        if stopper is None:
            return []
        stops = []
        for worker, n in running:
            exp = state.get(n)
            best = state.line_best(exp.line if exp is not None else 0)  # its line's best
            if best is None:
                continue
            best_curves = [self._curve_of(log) for log, commit in state.runs_with_logs()
                           if commit == best.commit]
            with self._lock:
                live = self.live.get(n) or Curve()
                current = Curve(list(live.points), live.broken)  # a copy: its thread adds
            decision = stopper.check(best_curves, current)
            if decision is not None:
                self.decided[n] = decision
                stops.append(Stop(worker, n, decision))
        return stops

    def _calibrated(self, state: SessionState) -> EarlyStop | None:
        """The check, calibrated on every commit run more than once (None when it is off:
        by config, or "auto" before the noise floor is measured)."""
        settings = self.settings
        if settings.enabled is False or (settings.enabled == "auto" and state.noise is None):
            return None
        groups: dict[str, list[Curve]] = {}
        for log, commit in state.runs_with_logs():
            groups.setdefault(commit, []).append(self._curve_of(log))
        stopper = EarlyStop(settings.min_progress, settings.margin)
        stopper.calibrate([g for g in groups.values() if len(g) > 1])
        return stopper if stopper.calibrated else None

    def _curve_of(self, log: str) -> Curve:
        if log not in self._curves:
            self._curves[log] = Curve.from_log(read_tail(self.workspace / log, CURVE_BYTES))
        return self._curves[log]
