"""The session without a screen: one line per step on stdout.

On a terminal each run in flight also shows one live progress line (step, loss, time
remaining), redrawn in place a few times a second; in a file (nohup, cron, a detached
session's log) only plain lines are printed, and the training output stays in each run.log.
"""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from cockpit import protocol
from cockpit.domain.progress import parse_progress_line
from cockpit.domain.state import SessionState
from cockpit.domain.text import printable
from cockpit.workspace.history import short

REDRAW_SECONDS = 0.25

BUSY_COUNTED = "  (the machine stays busy with other work: counted as it is)"


class HeadlessPrinter:
    """The coordinator's observer that prints. `state` gives the session's own fold of the
    journal (resumed sessions included), read after each event was applied to it; without
    one the printer folds the events it sees itself."""

    def __init__(self, stream: TextIO | None = None, metric: str = "val_bpb",
                 state: Callable[[], SessionState] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.metric = metric
        self.live = self.stream.isatty()
        self._own = SessionState()
        self._state_of = state
        self.workers = 1
        self._lock = threading.Lock()
        self._line = ""  # the progress line on screen (a terminal only)
        self._preparing = False
        self._progress: dict[int, str] = {}  # worker -> its run's progress, in words
        self._running: dict[int, str] = {}  # worker -> "#12" / "re-run 3"
        self._drawn_at = 0.0

    # -- the coordinator's messages (any thread) ------------------------------------------
    def __call__(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == protocol.JOURNAL:
            for event in message["events"]:
                if self._state_of is None:
                    self._own.apply(event)
                handler = getattr(self, f"_on_{event['event']}", None)
                if handler is not None:
                    handler(event)
        elif kind == "transient":
            handler = getattr(self, f"_on_{message['kind']}", None)
            if handler is not None:
                handler(message)
        elif kind == protocol.OUTPUT:
            self.on_output(message["worker"], message["text"], message.get("kind", ""))

    @property
    def state(self) -> SessionState:
        return self._state_of() if self._state_of is not None else self._own

    def _described(self, n: int | None) -> str:
        exp = self.state.get(n)
        if exp is None:
            return ""
        return (f"[line {exp.line}] " if exp.line else "") + exp.description

    def say(self, text: str) -> None:
        text = printable(text)  # words of a run or an agent: nothing that steers a terminal
        with self._lock:
            self._clear_line()
            self.stream.write(text + "\n")
            self.stream.flush()
            self._redraw(force=True)

    def on_output(self, worker: int, text: str, kind: str = "") -> None:
        if kind == "prepare" or self._preparing:  # worth seeing, even in a file
            with self._lock:
                self._clear_line()
                self.stream.write(text.replace("\r", "\n") if not self.live else text)
                self.stream.flush()
            return
        if not self.live:
            return
        line = printable(parse_progress_line(text))
        if line:
            with self._lock:
                self._progress[worker] = line
                self._redraw()

    # -- the progress line (terminal only) -------------------------------------------------
    def _redraw(self, force: bool = False) -> None:
        if not self.live or not self._running:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < REDRAW_SECONDS:
            return
        self._drawn_at = now
        parts = []
        for worker in sorted(self._running):
            who = f"gpu{worker} " if self.workers > 1 else ""
            parts.append(f"{who}{self._running[worker]} {self._progress.get(worker, 'starting')}")
        line = "  " + " | ".join(parts)
        self.stream.write("\r" + line + " " * max(0, len(self._line) - len(line)))
        self.stream.flush()
        self._line = line

    def _clear_line(self) -> None:
        if self._line:
            self.stream.write("\r" + " " * len(self._line) + "\r")
            self._line = ""

    def _who(self, worker: int | None) -> str:
        return f"[gpu{worker}] " if self.workers > 1 and worker is not None else ""

    # -- journal events --------------------------------------------------------------------
    def _on_session(self, e: dict[str, Any]) -> None:
        if e.get("resumed"):
            done = len(self.state.finished)
            waits = ", proposals wait for approval: `cockpit approve`, or resume with " \
                "--auto-approve" if e.get("auto_approve") is False else ""
            self.say(f"resuming session {e['tag']} on {e['branch']} ({done} experiments so "
                     f"far{waits})")
        else:
            self.say(f"session {e['tag']} on {e['branch']}")
        self.metric = e.get("metric", self.metric) or self.metric

    def _on_workers(self, e: dict[str, Any]) -> None:
        self.workers = e["workers"]
        if self.workers > 1:
            self.say(f"{self.workers} workers ({e['kind']} runner)")

    def _on_leftover_killed(self, e: dict[str, Any]) -> None:
        self.say(f"a run cockpit left behind (pid {e['pid']}) was still running: killed it")

    def _on_refs_changed(self, e: dict[str, Any]) -> None:
        made = ", ".join(r.split("/", 2)[-1] for r in e.get("created") or [])
        back = ", ".join(r.split("/", 2)[-1] for r in e.get("restored") or [])
        self.say(f"{e.get('by', 'a run')} changed your repository (sandbox off): "
                 + "; ".join(filter(None, [f"created {made} (check it, then delete it)"
                                           if made else "",
                                           f"deleted {back} (put back)" if back else ""])))

    def _on_not_ours(self, e: dict[str, Any]) -> None:
        self.say(e.get("why", ""))

    def _on_client_refused(self, e: dict[str, Any]) -> None:
        self.say(f"the control socket refused a client: {e.get('who', '')}")

    def _on_journal_damaged(self, e: dict[str, Any]) -> None:
        lines = e.get("lines", 0)
        self.say(f"the journal has {lines} damaged line{'s' * (lines != 1)}, skipped "
                 f"({'; '.join(e.get('first') or [])}{'; ...' if lines > 3 else ''})")

    def _on_locks_cleared(self, e: dict[str, Any]) -> None:
        self.say(f"cleared stale git locks a killed process left: {', '.join(e['paths'])}")

    def _on_run_start(self, e: dict[str, Any]) -> None:
        self._preparing = False
        exp = self.state.get(e["n"])
        worker = e.get("worker", 0)
        self._running[worker] = f"#{e['n']}"
        self._progress.pop(worker, None)
        self.say(f"{self._who(worker)}#{e['n']} {self._described(e['n'])}  "
                 f"[{short(e.get('commit'))}]")
        if exp is not None and exp.hypothesis and exp.description != "baseline":
            self.say(f"   why: {exp.hypothesis}")
        if not self.live:
            self.say(f"   log: {e['log']}")

    def _on_branch(self, e: dict[str, Any]) -> None:
        why = e.get("why") or "human"
        left = f"; line {e['left']} rests" if e.get("left") is not None else ""
        self.say(f"line {e['line']} from #{e['from_n']} [{short(e.get('commit'))}] "
                 f"({'by the human' if why == 'human' else why}){left}")

    def _on_rebase(self, e: dict[str, Any]) -> None:
        how = "carried onto" if e.get("clean") else \
            "conflicts with; it runs on its own base, judged against"
        self.say(f"#{e['n']} was proposed on {short(e['was'])}; {how} the new best "
                 f"{short(e['onto'])}")

    def _on_result(self, e: dict[str, Any]) -> None:
        exp = self.state.get(e["n"])
        if exp is None:
            return
        who = self._who(exp.worker if exp.log else None)
        self._running.pop(exp.worker, None) if exp.log else None
        if exp.status in ("crash", "rejected"):
            self.say(f"{who}#{exp.n} {exp.status}  {exp.reason}")
            return
        if exp.metric is None:
            self.say(f"{who}#{exp.n} {exp.status}  {exp.reason or exp.verdict}")
            return
        delta = "" if exp.delta_best is None else f"  {exp.delta_best:+.6f} vs best"
        if exp.runs > 1 and exp.delta_best is not None and exp.bar is not None:
            delta = f" (mean of {exp.runs} runs {exp.bar + exp.delta_best:.6f}){delta}"
        self.say(f"{who}#{exp.n} {self.metric} {exp.metric:.6f}{delta}  {exp.status}  "
                 f"({exp.seconds:.0f} s)" + (f": {exp.verdict}" if exp.verdict else "")
                 + (f" ({exp.disturbed})" if exp.disturbed
                    else BUSY_COUNTED if self.state.busy(e) else ""))

    def _on_second_look(self, e: dict[str, Any]) -> None:
        result = e.get("result") or {}
        worker = result.get("worker", 0)
        self._running.pop(worker, None)
        value = result.get("metric")
        measured = f" {self.metric} {value:.6f}" if value is not None else ""
        self.say(f"{self._who(worker)}#{e['n']}{measured}  second look: {e.get('why', '')}")

    def _on_measure_start(self, e: dict[str, Any]) -> None:
        self._preparing = False
        worker = e.get("worker", 0)
        self._running[worker] = f"{e['purpose']} re-run of {short(e['commit'])}"
        self._progress.pop(worker, None)
        self.say(f"{self._who(worker)}{e['purpose']}: re-run of {short(e['commit'])} unchanged")

    def _on_measure(self, e: dict[str, Any]) -> None:
        self._running.pop(e.get("worker", 0), None)
        value = e.get("metric")
        left_out = (f"  left out, and measured again: {e['disturbed']}" if e.get("disturbed")
                    else BUSY_COUNTED if self.state.busy(e) else "")
        who = self._who(e.get("worker"))
        self.say(f"{who}   {self.metric} {value:.6f}{left_out}" if value is not None
                 else f"{who}   crash  {e.get('reason')}")

    def _on_noise(self, e: dict[str, Any]) -> None:
        self.say(f"noise floor: std {e['std']:.6f}, MAD {e['mad']:.6f} over "
                 f"{len(e['values'])} runs")

    def _on_paused(self, e: dict[str, Any]) -> None:
        self.say(f"paused: {e.get('reason') or 'no new run starts'}")

    def _on_resumed(self, e: dict[str, Any]) -> None:
        self.say("resumed")

    def _on_note(self, e: dict[str, Any]) -> None:
        self.say(f"steering note {e.get('id', '')}: {e['text']}")

    def _on_approved(self, e: dict[str, Any]) -> None:
        self.say(f"#{e['n']} approved" + (" (as edited by the human)" if e.get("edited") else ""))

    def _on_attempt(self, e: dict[str, Any]) -> None:
        n = e.get("n")
        if e.get("reverted"):
            self.say(f"#{n} the agent also touched {', '.join(e['reverted'])}: reverted")
        if e.get("abandoned"):
            self.say(f"#{n} the agent gives the crashed idea up")
        elif not e.get("accepted"):
            self.say(f"#{n} {e.get('kind', 'propose')} answer {e.get('attempt', 1)} refused: "
                     f"{e.get('problem')}")

    def _on_retry(self, e: dict[str, Any]) -> None:
        self.say(f"#{e.get('n')} model: {e['reason']}; retry {e['retry']} in {e['wait']:g} s")

    def _on_abandoned(self, e: dict[str, Any]) -> None:
        self.say(f"#{e['n']} idea abandoned: {e['reason']}")

    def _on_proposal_failed(self, e: dict[str, Any]) -> None:
        self.say(f"no proposal: {e['reason']}")

    def _on_tampered(self, e: dict[str, Any]) -> None:
        self.say(f"{e['by']} planted {', '.join(e['keys'])} in {e['path']}: restored "
                 f"(the changed copy is in {e['kept']})")

    def _on_flagged(self, e: dict[str, Any]) -> None:
        self.say(f"#{e['n']} to confirm: {e['why']}")

    def _on_early_stop(self, e: dict[str, Any]) -> None:
        if e.get("shadow"):
            self.say(f"#{e['n']} would have been {e['why']} (early stop in shadow mode)")

    def _on_sandbox_off(self, e: dict[str, Any]) -> None:
        self.say(f"runs are not isolated: {e['why']}")

    def _on_fixed_changed(self, e: dict[str, Any]) -> None:
        self.say(f"a run modified {', '.join(e['files'])}: restored from git")

    def _on_stopping(self, e: dict[str, Any]) -> None:
        if e.get("by") == "signal":
            return  # the signal's handler said it at once, with how to quit at once
        self.say("stopping: " + ("ending the runs in flight" if e.get("now")
                                 else "after the runs in flight"))

    # -- transient ------------------------------------------------------------------------
    def _on_preparing(self, m: dict[str, Any]) -> None:
        self.say(f"preparing data: {m['command']}")
        self._preparing = True

    def _on_repairing(self, m: dict[str, Any]) -> None:
        self.say(f"asking for a fix of #{m['crashed']}'s crash (fix {m['attempt']})")
