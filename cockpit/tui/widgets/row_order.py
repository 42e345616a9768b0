"""How the timeline orders and filters its rows: newest first by default; by the metric,
by the gain over the best, or by run time; keeps only, without the runs stopped early, or
those matching a text. No widget code: the timeline asks `shown(rows)`."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cockpit.tui.widgets.timeline import Row

ORDERS = ("newest", "metric", "gain", "time")  # `o` steps through them
FILTERS = ("all", "keeps", "no early stops")  # `f` steps through them
ORDER_WORDS = {"newest": "newest first", "metric": "by metric, best first",
               "gain": "by gain, largest first", "time": "by run time, longest first"}


@dataclass(frozen=True)
class RowOrder:
    order: str = "newest"
    only: str = "all"
    match: str = ""  # lower case; "" shows every row
    lower: bool = True  # the metric is better lower (the best comes first by metric)

    @property
    def plain(self) -> bool:
        """Newest first, everything shown: the timeline's fast path."""
        return self.order == "newest" and self.only == "all" and not self.match

    def next_order(self) -> RowOrder:
        return replace(self, order=ORDERS[(ORDERS.index(self.order) + 1) % len(ORDERS)])

    def next_filter(self) -> RowOrder:
        return replace(self, only=FILTERS[(FILTERS.index(self.only) + 1) % len(FILTERS)])

    def matching(self, text: str) -> RowOrder:
        return replace(self, match=" ".join(text.split()).lower())

    def keeps(self, row: Row) -> bool:
        if self.only == "keeps" and row.status != "keep":
            return False
        if self.only == "no early stops" and row.stopped_at is not None:
            return False
        return not self.match or row.matches(self.match)

    def shown(self, rows: Iterable[Row]) -> list[int]:
        """The experiment numbers to show, in display order."""
        kept = [r for r in rows if self.keeps(r)]
        newest = sorted(kept, key=lambda r: -r.n)
        if self.order == "metric":  # rows with no value (running, crashed) go last
            sign = 1 if self.lower else -1
            newest.sort(key=lambda r: (r.metric is None, sign * (r.metric or 0.0)))
        elif self.order == "gain":
            newest.sort(key=lambda r: (r.gain is None, -(r.gain or 0.0)))
        elif self.order == "time":
            newest.sort(key=lambda r: -r.seconds)
        return [r.n for r in newest]

    def words(self) -> str:
        """What the title says of it ("" for the plain view)."""
        parts = [] if self.order == "newest" else [ORDER_WORDS[self.order]]
        if self.only != "all":
            parts.append("keeps only" if self.only == "keeps" else "no early stops")
        if self.match:
            parts.append(f"matching {self.match!r}")
        return " · ".join(parts)
