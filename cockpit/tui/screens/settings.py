"""`K`: what each setting did, across the session: every value tried, by whom, and how it
fared, the settings that were kept most first."""
from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from cockpit.tui.settings_view import Setting, Try
from cockpit.tui.widgets.timeline import STATUS_MARK, STATUS_STYLE, STOPPED_MARK


def _row(t: Try, metric: str) -> tuple[Text, ...]:
    mark = STOPPED_MARK if t.stopped else STATUS_MARK.get(t.status, "▶")
    style = STATUS_STYLE.get(t.status or None, "")
    verdict = "stopped early" if t.stopped else (t.status or "running")
    gain = "" if t.gain is None else f"{t.gain:+.6f}"
    value = "" if t.metric is None else f"{metric} {t.metric:.6f}"
    return (Text(f"#{t.n}"), Text(f"{t.old or '·'} → {t.new}"), Text(f"{mark} {verdict}", style),
            Text(gain, style="green" if t.gain and t.gain > 0 else "dim"), Text(value))


class SettingsScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,K", "close", "Close")]

    def __init__(self, settings: list[Setting], metric: str = "val_bpb") -> None:
        super().__init__()
        self.settings = settings
        self.metric = metric

    def compose(self) -> ComposeResult:
        parts: list = []
        for setting in self.settings:
            gain = "" if setting.best_gain is None else f", best gain {setting.best_gain:+.6f}"
            parts.append(Text(f"{setting.name}  ({len(setting.tries)} tried, "
                              f"{setting.kept} kept{gain})", style="bold"))
            table = Table.grid(padding=(0, 2))
            for _ in range(5):
                table.add_column(no_wrap=True)
            for t in setting.tries:
                table.add_row(*_row(t, self.metric))
            parts.append(table)
        with VerticalScroll(classes="dialog", id="settings-dialog"):
            yield Static("What each setting did (gain: better than the best before it)",
                         classes="dialog-question")
            yield Static(Group(*parts) if parts else Text("No setting changed yet."),
                         id="settings-table")
            yield Static("escape closes", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
