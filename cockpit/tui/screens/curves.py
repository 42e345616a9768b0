"""Loss curves, full size (L): the selected experiment's whole training curve, the marked
ones' overlaid, the session best's always, an early-stopped run against the band it fell
behind, and the run in flight growing as its output arrives. ←/→ show the previous / next
experiment; escape closes."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Static

from cockpit.domain.earlystop import describe_stop
from cockpit.tui.curve_source import CurveSource, LiveRun
from cockpit.tui.widgets.loss_chart import LossChart

FOLLOW_HZ = 4  # as often as the cockpit drains a run's output


class CurvesScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,L", "close", "Close"),
                Binding("left", "step(-1)", "Older", priority=True),
                Binding("right", "step(1)", "Newer", priority=True)]

    def __init__(self, source: CurveSource) -> None:
        super().__init__()
        self.source = source
        self._live_key: tuple | None = None  # what the live curve was when last drawn
        self._best: int | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="curves-title", markup=False)
        yield LossChart(id="curves-chart")
        yield Static("", id="curves-note")

    def on_mount(self) -> None:
        self.query_one(LossChart).border_title = (
            "loss by % of the time budget · smoothed over 5%, as early stop compares runs")
        self.show()
        self.set_interval(1 / FOLLOW_HZ, self.follow_live)

    def show(self) -> None:
        """Draw every curve again (a new selection, a new best)."""
        source = self.source
        live = source.live()
        self._live_key = _key_of(live)
        self._best = source.state.best.n if source.state.best else None
        self.query_one(LossChart).set_curves(source.series(live), source.stop_marks())
        self.query_one("#curves-title", Static).update(self._title())
        self.query_one("#curves-note", Static).update(self._note(live))

    def follow_live(self) -> None:
        """The run in flight grew (or a new one began, or a new best was kept): redraw."""
        live = self.source.live()
        best = self.source.state.best
        if _key_of(live) != self._live_key or (best.n if best else None) != self._best:
            self.show()

    def _title(self) -> str:
        exp = self.source.state.get(self.source.selected)
        shown = f"#{exp.n} {exp.description}" if exp is not None else "the best"
        return f" loss curves · {shown} · ←/→ experiment · escape closes"

    def _note(self, live: LiveRun | None) -> Text:
        """One line: the live run against the best at the same progress, or why the shown
        run was stopped."""
        note = Text(no_wrap=True, overflow="ellipsis")
        stopped = self.source.stopped()
        if live is not None and live.curve.points:
            at = live.curve.end
            now = live.curve.loss_at(at)
            best = self.source.state.best
            then = self.source.curve(best).loss_at(at) if best is not None else None
            note.append(f"{live.title} at {at:.0f}%: loss {now:.4f}" if now is not None
                        else f"{live.title} at {at:.0f}%")
            if now is not None and then is not None and best is not None:
                note.append(f" vs {then:.4f} for #{best.n} (best) at the same progress",
                            style="green" if now <= then else "red")
        elif stopped is not None and stopped.early_stop is not None:
            note.append(f"#{stopped.n} {describe_stop(stopped.early_stop)}")
        return note

    def action_step(self, delta: int) -> None:
        """The previous / next experiment that ran."""
        ran = self.source.ran()
        if not ran:
            return
        current = self.source.selected
        i = ran.index(current) + delta if current in ran else len(ran) - 1
        self.source.selected = ran[max(0, min(len(ran) - 1, i))]
        self.show()

    def action_close(self) -> None:
        self.dismiss(None)


def _key_of(live: LiveRun | None) -> tuple | None:
    """What tells a live curve's redraw apart: which curve, how many points, how far."""
    if live is None:
        return None
    return (live.title, id(live.curve), len(live.curve.points), live.curve.end)
