"""Panes side by side on a big terminal, one at a time behind tabs on a small one."""
from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Tab, Tabs

NARROW_WIDTH = 100  # below this many columns (or NARROW_HEIGHT rows) panes become tabs
NARROW_HEIGHT = 30


class PaneScreen(Screen):
    """A screen whose `.pane` widgets collapse into tabs when the terminal is small.

    Subclasses list PANES as (widget id, tab label) and compose a Tabs with id
    "pane-tabs" plus the panes inside `.column` containers."""

    PANES: list[tuple[str, str]] = []
    narrow: bool = False
    active_pane: str = ""

    def make_tabs(self) -> Tabs:
        return Tabs(*[Tab(f"{i}:{label}", id=f"tab-{pane}")
                      for i, (pane, label) in enumerate(self.PANES, 1)], id="pane-tabs")

    def on_mount(self) -> None:
        self.active_pane = self.PANES[0][0]
        self.layout_panes()

    def on_resize(self) -> None:
        self.layout_panes()

    def layout_panes(self) -> None:
        size = self.app.size
        self.narrow = size.width < NARROW_WIDTH or size.height < NARROW_HEIGHT
        self.set_class(self.narrow, "-narrow")
        tabs = self.query_one("#pane-tabs", Tabs)
        tabs.display = self.narrow
        for pane, _ in self.PANES:
            widget = self.query_one(f"#{pane}")
            widget.display = not self.narrow or pane == self.active_pane
        for column in self.query(".column"):
            column.display = any(child.display for child in column.query(".pane"))
        if self.narrow and tabs.active != f"tab-{self.active_pane}":
            tabs.active = f"tab-{self.active_pane}"
        self.call_after_refresh(self.panes_shown)

    def panes_shown(self) -> None:
        """Hook: panes just became visible (catch them up)."""

    def show_pane(self, pane: str, focus: bool = True) -> None:
        self.active_pane = pane
        self.layout_panes()
        if focus:
            target = self.query_one(f"#{pane}")
            focusable = target if target.can_focus else next(
                (w for w in target.query("*") if w.can_focus), None)
            if focusable is not None:
                focusable.focus()

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tabs.id != "pane-tabs" or event.tab is None or not self.narrow:
            return
        pane = event.tab.id.removeprefix("tab-")
        if pane != self.active_pane:
            self.show_pane(pane, focus=False)
