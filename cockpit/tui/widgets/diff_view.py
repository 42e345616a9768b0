"""The diff viewer: a proposal's title, verdict, hypothesis and its colored unified diff.

`show` puts one change on screen; `find` scrolls to the next diff line holding a text and
highlights it.
"""
from __future__ import annotations

from dataclasses import dataclass

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

VERDICT_STYLE = {"keep": "bold green", "discard": "bold yellow", "crash": "bold red",
                 "rejected": "bold magenta"}


@dataclass(frozen=True)
class VerdictLine:
    """How a result was judged, for the line under the title."""

    status: str  # keep | discard | crash | rejected
    gain: float | None = None  # the improvement over the bar (positive = better)
    threshold: float | None = None  # the gain a keep needed (None: no noise floor)
    confidence: float | None = None  # the gain in units of the noise
    against: str = ""  # what the gain is measured against ("the best's mean of 3 runs")
    runs: int = 1  # the runs of its own the gain rests on (2 after a second look)
    pooled_with: tuple[int, ...] = ()  # a pooled keep: the gain is of every run of its edit

    def render(self) -> Text:
        text = Text()
        text.append(self.status, style=VERDICT_STYLE.get(self.status, "bold"))
        if self.gain is not None:
            text.append(f"  gain {self.gain:+.6f}")
            if self.threshold is not None:
                beats = self.gain > self.threshold
                text.append(f" {'>' if beats else '≤'} {self.threshold:.6f} needed",
                            style="green" if beats else "")
        if self.confidence is not None:
            text.append(f"  {self.confidence:+.1f}x the noise", style="dim")
        elif self.gain is not None and self.threshold is None:
            text.append("  no noise floor: any gain keeps", style="dim")
        if self.pooled_with:
            others = " ".join(f"#{n}" for n in self.pooled_with)
            text.append(f"  its edit's runs pooled with {others}", style="dim")
        elif self.against:
            mine = f"the mean of its {self.runs} runs " if self.runs > 1 else ""
            text.append(f"  {mine}vs {self.against.removeprefix('vs ')}", style="dim")
        return text


class DiffView(VerticalScroll):
    """Methods called down: `show(...)`, `clear()`, `find(text)`."""

    DEFAULT_CLASSES = "pane"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.diff = ""
        self.wrap = False  # long lines wrap (else they scroll sideways)
        self._title = ""
        self._found: int | None = None  # the diff line the last find landed on
        self._query = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="diff-header")
        yield Static("", id="diff-body")

    def show(self, title: str, hypothesis: str = "", diff: str = "", note: str = "",
             verdict: VerdictLine | str | None = None) -> None:
        """Show one change. `note` is a line under the title (a result, a crash reason);
        `verdict` a line under it saying how the result was judged."""
        header = Text()
        header.append(title, style="bold")
        if note:
            header.append("\n" + note, style="italic")
        if verdict:
            header.append("\n")
            header.append(verdict.render() if isinstance(verdict, VerdictLine) else verdict)
        if hypothesis:
            header.append("\nwhy: ", style="dim")
            header.append(hypothesis)
        self.query_one("#diff-header", Static).update(header)
        self.diff = diff.rstrip("\n") if diff.strip() else ""
        self._found, self._query = None, ""
        self._title = title
        self._render_body(title)
        self.scroll_home(animate=False)

    def rerender(self) -> None:
        """Draw the diff again (after `wrap` changed)."""
        self._render_body(self._title, self._found)

    def _render_body(self, title: str = "x", highlight: int | None = None) -> None:
        body = self.query_one("#diff-body", Static)
        if self.diff:
            # theme "ansi_dark" keeps to the 16 terminal colours: right over SSH and in 256
            body.update(Syntax(self.diff, "diff", theme="ansi_dark", background_color="default",
                               word_wrap=self.wrap,
                               highlight_lines=None if highlight is None else {highlight + 1}))
        else:
            body.update(Text("(no change: the unmodified starting point)" if title else "",
                             style="dim"))

    def clear(self) -> None:
        self.show("")

    def find(self, text: str, forward: bool = True) -> int | None:
        """Scroll to the next diff line (`forward=False`: the previous one) containing
        `text`, in any case, wrapping around, and highlight it. Returns the line's index in
        the diff, or None when no line matches."""
        needle = text.strip().lower()
        lines = self.diff.split("\n") if self.diff else []
        if not needle or not lines:
            return None
        if needle != self._query:
            self._query, self._found = needle, None
        start = self._found if self._found is not None else (-1 if forward else len(lines))
        step = 1 if forward else -1
        for offset in range(1, len(lines) + 1):
            index = (start + step * offset) % len(lines)
            if needle in lines[index].lower():
                self._found = index
                self._render_body(highlight=index)
                body = self.query_one("#diff-body", Static)
                target = body.virtual_region.y + index
                self.scroll_to(y=max(0, target - self.size.height // 3), animate=False,
                               immediate=True)
                return index
        return None
