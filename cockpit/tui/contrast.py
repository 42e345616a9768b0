"""NO_COLOR, readable: Textual turns every colour to its grey, so red text on a dark panel
becomes grey 237 on grey 235 (there, but unreadable). This filter does the same
conversion, then lifts any text too close to its background's grey to one that reads."""
from __future__ import annotations

from functools import lru_cache

from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.filter import LineFilter, Monochrome, monochrome_style

MIN_CONTRAST = 0.35  # the least brightness gap (0..1) kept between text and its background
LIGHT, DARK = Color(220, 220, 220), Color(30, 30, 30)


@lru_cache(1024)
def readable(style: Style, background: Color) -> Style:
    style = monochrome_style(style)
    if style.color is None:
        return style
    fg = Color.from_rich_color(style.color)
    bg = Color.from_rich_color(style.bgcolor) if style.bgcolor else background.monochrome
    if abs(fg.brightness - bg.brightness) >= MIN_CONTRAST:
        return style
    lifted = LIGHT if bg.brightness < 0.5 else DARK
    return style + Style.from_color(lifted.rich_color)


class ReadableMonochrome(LineFilter):
    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [Segment(text, readable(style, background) if style else style, None)
                for text, style, _ in segments]


def make_readable(filters: list[LineFilter]) -> None:
    """Swap Textual's NO_COLOR filter (when there is one) for the readable one."""
    for i, line_filter in enumerate(filters):
        if isinstance(line_filter, Monochrome):
            filters[i] = ReadableMonochrome()
