"""The keys that look around the session's record: an experiment in full (and its
neighbours), two compared, marks, the timeline sorted and filtered, the loss curves.
Nothing here acts on the session.

A mixin of CockpitApp: it reads the app's view of the session (`view`, `store`, `main`)
and pushes screens. The type checker reads it as the App it mixes into.
"""
from __future__ import annotations

import functools
from dataclasses import replace
from typing import TYPE_CHECKING

from cockpit.domain.state import Experiment
from cockpit.tui.screens.experiment import Around, ExperimentScreen
from cockpit.tui.screens.settings import SettingsScreen
from cockpit.tui.screens.steer import NoteScreen
from cockpit.tui.settings_view import settings_tried
from cockpit.tui.view import describe
from cockpit.tui.widgets.row_order import RowOrder
from cockpit.tui.widgets.timeline import Timeline

if TYPE_CHECKING:
    from textual.app import App

    from cockpit.client.store import SessionStore
    from cockpit.tui.screens.main import MainScreen
    from cockpit.tui.view import SessionView

    _App = App[str]
else:
    _App = object

FULL_LOG_CHARS = 5_000_000  # an experiment opened in full shows this much of its log


class LookAround(_App):
    view: SessionView
    store: SessionStore
    main: MainScreen
    shown_worker: int
    shown_run: tuple | None

    if TYPE_CHECKING:  # CockpitApp's own
        @property
        def editable(self) -> str: ...

        def say(self, message: str, severity: str = "information") -> None: ...

    def on_timeline_opened(self, message: Timeline.Opened) -> None:
        self.open_experiment(message.n)

    def action_open_experiment(self) -> None:
        n = self.main.query_one(Timeline).selected_n
        if n is not None:
            self.open_experiment(n)

    def open_experiment(self, n: int) -> None:
        """Its whole diff and whole log, on a screen of their own."""
        exp = self.view.state.get(n)
        if exp is None:
            return
        log = self.store.log(exp.log, FULL_LOG_CHARS) if exp.log else ""
        measured = self.store.evaluation(exp.log) if exp.log else ""
        if measured.strip():
            log += f"\n── cockpit's evaluation of what it handed over ──\n{measured}"
        self.push_screen(ExperimentScreen(
            title_of(exp), exp.hypothesis, exp.diff,
            describe(exp, self.view.state.metric, awaiting=n in self.view.awaiting,
                     stopped=bool(self.view.lost or self.view.ended)),
            verdict=self.view.verdict(exp), log=log, around=self._around(exp)))

    def _around(self, exp: Experiment) -> Around:
        """What an experiment's screen reaches: its diff against the best and the baseline,
        and its neighbours."""
        against = {"its parent": lambda: exp.diff}
        for name, other in (("the best", self.view.state.best),
                            ("the baseline", self.view.state.baseline)):
            if other is not None and other.commit and exp.commit and other.n != exp.n:
                against[name] = functools.partial(self.store.diff, other.commit, exp.commit,
                                                  self.editable)
        return Around(exp.commit or "", against, functools.partial(self._step, exp.n))

    def _step(self, n: int, by: int) -> None:
        """The previous / next experiment's screen in place of experiment n's."""
        numbers = [e.n for e in self.view.state.experiments]
        at = numbers.index(n) + by if n in numbers else -1
        if not 0 <= at < len(numbers):
            self.say("no " + ("earlier" if by < 0 else "later") + " experiment")
            return
        self.pop_screen()
        self.main.query_one(Timeline).select(numbers[at])
        self.open_experiment(numbers[at])

    def action_mark(self) -> None:
        timeline = self.main.query_one(Timeline)
        timeline.toggle_mark()
        marked = timeline.marked
        self.notify(f"marked {', '.join(f'#{n}' for n in marked)}" + (
            ": c compares them" if len(marked) == 2 else "") if marked else "no marks")

    def action_compare(self) -> None:
        """The two marked experiments as one diff (or, with fewer marks, the best against
        the baseline)."""
        marked = self.main.query_one(Timeline).marked
        state = self.view.state
        if len(marked) >= 2:
            older, newer = (state.get(n) for n in sorted(marked)[-2:])
        else:
            older, newer = state.baseline, state.best
        if older is None or newer is None or not older.commit or not newer.commit:
            self.notify("mark two experiments that ran (m), or wait for a best to compare "
                        "with the baseline")
            return
        metric = state.metric
        words = []
        try:
            diff, missing = self.store.diff(older.commit, newer.commit, self.editable), ""
        except Exception as exc:  # a commit git no longer has: the screen says so
            diff, missing = "", f"   (no diff: {exc})"
        for e in (older, newer):
            value = f"{e.metric:.6f}" if e.metric is not None else e.status
            words.append(f"#{e.n} {metric} {value}")
        # the diff holds every change between the two commits, not one idea: no "why"
        self.push_screen(ExperimentScreen(
            f"#{older.n} → #{newer.n}: what changed from {older.description!r} to "
            f"{newer.description!r}", "", diff, "   vs   ".join(words) + missing))
        self.main.query_one(Timeline).clear_marks()  # the next compare starts afresh

    # -- the timeline as a table to work with: sorted, filtered ------------------------
    def action_sort_timeline(self) -> None:
        timeline = self.main.query_one(Timeline)
        self._arrange(timeline.row_order.next_order())

    def action_filter_timeline(self) -> None:
        timeline = self.main.query_one(Timeline)
        self._arrange(timeline.row_order.next_filter())

    def action_filter_text(self) -> None:
        def chosen(text: str | None) -> None:
            if text is not None:
                self._arrange(self.main.query_one(Timeline).row_order.matching(text))

        self.push_screen(NoteScreen("Show the experiments that match (empty: all)",
                                    "e.g. LEARNING_RATE, crash, #12"), chosen)

    def _arrange(self, row_order: RowOrder) -> None:
        timeline = self.main.query_one(Timeline)
        timeline.reorder(replace(row_order, lower=self.view.state.direction != "higher"))
        words = timeline.row_order.words()
        shown = f" ({len(timeline.shown_numbers)} of {len(timeline.numbers)})" if words else ""
        timeline.border_title = "timeline" + (f" · {words}{shown}" if words else "")
        self.say(f"timeline: {words or 'newest first, every experiment'}{shown}")

    def action_settings(self) -> None:
        """What each setting did, across the session's experiments."""
        state = self.view.state
        self.push_screen(SettingsScreen(settings_tried(state.experiments, state.direction),
                                        state.metric))

    def action_curves(self) -> None:
        """Loss curves, full size: the selected, the marked, the best's, the live run's."""
        from cockpit.tui.curve_source import CurveSource, live_run_of
        from cockpit.tui.screens.curves import CurvesScreen

        timeline = self.main.query_one(Timeline)
        self.push_screen(CurvesScreen(CurveSource(
            self.view.state, self.store, timeline.selected_n, timeline.marked,
            lambda: live_run_of(self.view.runs, self.shown_worker, self.shown_run,
                                self.view.curve))))



def title_of(exp: Experiment) -> str:
    return f"#{exp.n} {exp.description}"
