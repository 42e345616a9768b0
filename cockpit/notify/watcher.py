"""What is worth a message, folded from the journal and the live state: notes, no I/O."""
from __future__ import annotations

import socket
import time
from datetime import datetime

from cockpit.domain.causes import NOT_THE_IDEAS_FAULT, legacy_cause
from cockpit.domain.judge import gain_of
from cockpit.domain.state import SessionState
from cockpit.domain.stats import pace
from cockpit.notify.services import Note
from cockpit.workspace.config import NotifyConfig


class Watcher:
    """What is worth a message, folded from the journal and the live state: notes, no I/O.

    `history` folds events that happened before (nothing is said of them); `journal` and
    `live` fold what comes and return the notes it makes; `tick` returns the notes the
    clock makes (a proposal waiting too long, hours without a keep, the daily summary)."""

    def __init__(self, settings: NotifyConfig, tag: str, now: float) -> None:
        self.settings = settings
        self.tag = tag
        self.state = SessionState()
        self.host = socket.gethostname()
        self.awaiting: dict[int, float] = {}  # n -> since when it waits for a human
        self.told_awaiting: set[int] = set()
        self.crashes = 0  # in a row
        self.since_keep = 0  # judged experiments since the last keep
        self.keep_time = now  # when the last keep came (or the watch began)
        self.stall_told = False
        self.last_tick = now

    # -- folding -------------------------------------------------------------------------
    def history(self, events: list[dict]) -> None:
        for event in events:
            self.journal(event, quiet=True)
        self.keep_time = max(self.keep_time, self.last_tick)  # a resumed session's clock

    def journal(self, event: dict, quiet: bool = False) -> list[Note]:
        self.state.apply(event)
        kind = event.get("event")
        notes: list[Note] = []
        if kind == "result" and event.get("status") in ("keep", "discard", "crash"):
            notes += self._result(event)
        elif kind == "paused" and event.get("kind") in ("cost", "provider", "proposals"):
            notes.append(self._note("paused", "paused: it waits for you", (
                f"{event.get('reason', '')}\n"
                + ("`cockpit resume` spends past the limit" if event.get("kind") == "cost"
                   else "`cockpit resume` (or p in the cockpit) goes on"))))
        elif kind == "paused" and event.get("kind") == "exhausted":  # the agent has no move
            notes.append(self._note("stalled", "stalled: the agent has no move left", (
                f"{event.get('reason', '')}\n`cockpit steer` or program.md, then "
                "`cockpit resume` (or p in the cockpit)")))
        elif kind == "session_end":
            notes.append(self._note("ended", f"session ended: {event.get('why', '')}",
                                    self.figures()))
        return [] if quiet else [n for n in notes if n.kind in self.settings.events]

    def _result(self, event: dict) -> list[Note]:
        notes = []
        status = event["status"]
        exp = self.state.get(event.get("n"))
        stopped = (event.get("cause") or legacy_cause(status, event.get("reason") or "")) \
            in NOT_THE_IDEAS_FAULT
        if status == "crash" and not stopped:
            self.crashes += 1
            if self.crashes == self.settings.crash_streak:
                notes.append(self._note("crashes", f"{self.crashes} crashes in a row", (
                    f"the last: #{event.get('n')} {exp.description if exp else ''}: "
                    f"{event.get('reason', '')}")))
        elif status != "crash":
            self.crashes = 0
        if status == "keep":
            self.since_keep, self.stall_told = 0, False
            self.keep_time = float(event.get("time") or time.time())
            if exp is not None and exp is not self.state.baseline:
                notes.append(self._best(exp))
            return notes
        if not stopped:
            self.since_keep += 1
        limit = self.settings.stalled_experiments
        if limit and self.since_keep >= limit and not self.stall_told:
            self.stall_told = True
            notes.append(self._stalled(f"{self.since_keep} experiments"))
        return notes

    def live(self, live: dict, now: float) -> list[Note]:
        waiting = set(live.get("awaiting") or [])
        for n in waiting - set(self.awaiting):
            self.awaiting[n] = now
        for n in set(self.awaiting) - waiting:
            del self.awaiting[n]
        return []

    def tick(self, now: float) -> list[Note]:
        notes = []
        minutes = self.settings.approval_minutes
        for n, since in sorted(self.awaiting.items()):
            if minutes and now - since >= minutes * 60 and n not in self.told_awaiting:
                self.told_awaiting.add(n)
                exp = self.state.get(n)
                notes.append(self._note("paused", f"#{n} waits for your approval", (
                    f"#{n} {exp.description if exp else ''} has waited {_span(now - since)}: "
                    f"`cockpit approve {n}` or `cockpit reject {n}` (a / r in the cockpit)")))
        hours = self.settings.stalled_hours
        if hours and not self.stall_told and self.state.baseline is not None \
                and now - self.keep_time >= hours * 3600 and not self.state.ended:
            self.stall_told = True
            notes.append(self._stalled(_span(now - self.keep_time)))
        if self._summary_due(self.last_tick, now):
            notes.append(self._note("summary", "daily summary", self.figures(now)))
        self.last_tick = now
        return [n for n in notes if n.kind in self.settings.events]

    def _summary_due(self, last: float, now: float) -> bool:
        """The summary time (local) fell in (last, now]."""
        if not self.settings.summary_at or not self.state.experiments:
            return False
        h, m, *s = (int(x) for x in self.settings.summary_at.split(":"))
        target = datetime.fromtimestamp(now).replace(hour=h, minute=m, second=s[0] if s else 0,
                                                     microsecond=0).timestamp()
        return last < target <= now

    # -- words ---------------------------------------------------------------------------
    def _note(self, kind: str, title: str, body: str) -> Note:
        return Note(kind, f"cockpit {self.tag}@{self.host}: {title}", body)

    def _best(self, exp) -> Note:
        state = self.state
        gain = gain_of(exp.delta_best, state.direction)
        words = [f"#{exp.n} {exp.description}: {state.metric} {exp.metric:.6f}"]
        if gain is not None:
            confidence = (f", {exp.confidence:.1f}x the noise" if exp.confidence is not None
                          else "")
            words.append(f"gain {gain:.6f} over the best{confidence}")
        base = state.baseline
        if base is not None and base.metric:
            words.append(f"{100 * (exp.metric - base.metric) / base.metric:+.2f}% vs the "
                         f"baseline {base.metric:.6f}")
        return self._note("best", f"new best {state.metric} {exp.metric:.6f}", "; ".join(words))

    def _stalled(self, span: str) -> Note:
        best = self.state.best
        where = f"; the best is still #{best.n} {best.metric:.6f}" if best is not None else ""
        return self._note("stalled", f"no keep in {span}", f"no change kept in {span}{where}. "
                          "program.md or a steering note (`cockpit steer`) may help")

    def figures(self, now: float | None = None) -> str:
        """The session in a few lines: best vs baseline, kept, crashes, pace, cost."""
        state = self.state
        ran = state.ran
        kept = [e for e in ran if e.status == "keep" and e is not state.baseline]
        lines = []
        base, best = state.baseline, state.best
        if (base is not None and best is not None  # both measured: each has its metric
                and base.metric is not None and best.metric is not None):
            pct = 100 * (best.metric - base.metric) / base.metric if base.metric else 0.0
            lines.append(f"{state.metric}: best {best.metric:.6f} (#{best.n} "
                         f"{best.description}), baseline {base.metric:.6f}: {pct:+.2f}%")
        per_hour = pace(state, now or state.last_time).per_hour
        lines.append(f"{len(ran)} experiments: {len(kept)} kept, "
                     f"{sum(e.status == 'discard' for e in ran)} discarded, "
                     f"{sum(e.status == 'crash' for e in ran)} crashed"
                     + (f"; {per_hour:.1f} per hour" if per_hour else ""))
        for e in kept[-3:]:
            gain = gain_of(e.delta_best, state.direction)
            lines.append(f"kept #{e.n} {e.description}"
                         + (f" (gain {gain:.6f})" if gain is not None else ""))
        lines.append(f"model cost ${state.cost_usd:.4f}")
        return "\n".join(lines)


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min" if minutes else f"{int(seconds)} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"
