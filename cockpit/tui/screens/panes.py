"""Panes side by side on a big terminal, one at a time behind tabs on a small one."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from textual import events
from textual.app import App
from textual.css.query import NoMatches
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Tab, Tabs

from cockpit.tui.widgets.search_bar import SearchBar

NARROW_WIDTH = 100  # below this many columns (or NARROW_HEIGHT rows) panes become tabs
NARROW_HEIGHT = 30
CSS_FILE = Path(__file__).parent.parent / "app.tcss"  # the cockpit's one style sheet


@runtime_checkable
class Searchable(Protocol):
    """A pane `/` searches: the timeline, the run log, the diff."""

    def find(self, text: str, forward: bool = True) -> int | None: ...


def relayout(app: App) -> None:
    """The terminal's size is known (or changed): panes side by side, or tabs."""
    for screen in app.screen_stack:
        if isinstance(screen, PaneScreen) and screen.is_mounted:
            screen.layout_panes()


class PaneScreen(Screen):
    """A screen whose `.pane` widgets collapse into tabs when the terminal is small.

    Subclasses list PANES as (widget id, tab label) and compose a Tabs with id
    "pane-tabs" plus the panes inside `.column` containers.

    The active pane is the one a small terminal shows. It changes only when the human
    picks a pane (a tab, a pane key, `show_pane`) or, side by side, moves the focus into
    another pane; a resize never changes it, either way."""

    PANES: list[tuple[str, str]] = []
    narrow: bool = False
    active_pane: str = ""
    searched: str = ""  # the pane the open search looks in

    def make_tabs(self) -> Tabs:
        return Tabs(*[Tab(f"{i}:{label}", id=f"tab-{pane}")
                      for i, (pane, label) in enumerate(self.PANES, 1)], id="pane-tabs")

    def on_mount(self) -> None:
        self.active_pane = self.active_pane or self.PANES[0][0]
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

    def pane_of(self, widget: Widget | None) -> str | None:
        """The id of the pane `widget` is in, if any."""
        ids = {pane for pane, _ in self.PANES}
        node: DOMNode | None = widget
        while node is not None and node is not self:
            if node.id in ids:
                return node.id
            node = node.parent
        return None

    def show_pane(self, pane: str, focus: bool = True) -> None:
        self.active_pane = pane
        self.layout_panes()
        if focus:
            self.focus_pane(pane)

    def focus_pane(self, pane: str) -> None:
        """Focus the pane itself or its first focusable widget."""
        target = self.query_one(f"#{pane}")
        focusable = target if target.can_focus else next(
            (w for w in target.query("*") if w.can_focus), None)
        if focusable is not None:
            focusable.focus()

    # -- search: `/` opens the screen's SearchBar on the focused pane ---------------
    def action_search(self) -> None:
        """Open the search prompt for the focused pane (else the active one), when that
        pane can `find` (the timeline, the run log, the diff)."""
        try:
            bar = self.query_one(SearchBar)
        except NoMatches:
            return
        pane = self.active_pane if self.narrow else self.pane_of(self.focused) or self.active_pane
        if not isinstance(self.query_one(f"#{pane}"), Searchable):
            self.notify("search works in the timeline, the run log and the diff: "
                        "focus one of them first", severity="warning")
            return
        self.searched = pane
        bar.open(dict(self.PANES).get(pane, pane).lower())

    def on_search_bar_find(self, message: SearchBar.Find) -> None:
        if not self.searched:
            return
        pane = self.query_one(f"#{self.searched}")  # action_search chose one that can find
        if isinstance(pane, Searchable) and pane.find(message.text, message.forward) is None:
            self.notify(f"no match for {message.text!r}", severity="warning")

    def on_search_bar_closed(self, message: SearchBar.Closed) -> None:
        if self.searched:
            self.focus_pane(self.searched)
        self.searched = ""

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        # Side by side, the pane you work in is the one a small terminal will show.
        # (Tabbed, focus moves only within the shown pane, or to a hidden one by a key
        # that chose it: neither is a reason to switch.)
        if not self.narrow:
            pane = self.pane_of(event.widget)
            if pane is not None:
                self.active_pane = pane

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if (event.tabs.id != "pane-tabs" or event.tab is None or event.tab.id is None
                or not self.narrow):
            return
        pane = event.tab.id.removeprefix("tab-")
        if pane != self.active_pane:
            self.show_pane(pane, focus=False)
