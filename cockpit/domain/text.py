"""Text from outside cockpit (a run's output, an agent's answer) made safe to show: no
control characters, so nothing it says can move a terminal's cursor, retitle its window,
write its clipboard or forge a line."""
from __future__ import annotations

import re

# ESC sequences (CSI, OSC, ...) whole, then any other C0/C1 control character but tab
ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` without escape sequences or control characters (newlines kept)."""
    return CONTROL.sub("", ESCAPES.sub("", text))
