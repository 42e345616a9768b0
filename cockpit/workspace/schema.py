"""How a setting of cockpit.toml is declared: once, with its default, what it accepts and
its help, beside it in its section's dataclass (see workspace.config). Checking a value,
the template `cockpit init` writes and the README's cockpit.toml block all come from here.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import re
import textwrap
from dataclasses import field
from typing import Any

from cockpit.domain.errors import CockpitError

DAY = 24 * 3600
# What a value may be, beside its plain type: these need more than a type to say.
AUTO_OR_NUMBER = "auto or number"
AUTO_OR_BOOL = "auto or bool"
AUTO_OR_PATHS = "auto or paths"
PATHS = "paths"  # a list of paths
NAMES = "names"  # a list of environment variable names
STRINGS = "strings"  # a list of strings, each one of `choices` when given
PATH = "path"  # a string naming a path
CLOCK = "clock"  # a local time, HH:MM[:SS], or "" for none
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CLOCK_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?")
MAX_NAME, MAX_PATH = 255, 4096  # what Linux filesystems take
COMMENT_COLUMN = 36  # where a key's help starts in the template


class ConfigError(CockpitError):
    """A user mistake in cockpit.toml or on the command line (one line, no traceback)."""


def setting(default: Any, help: str, *, low: float | None = None, high: float | None = None,
            choices: tuple = (), kind: str = "", nonempty: bool = False, unit: str = "",
            note: str = "") -> Any:
    """A dataclass field of a setting: its default, its help (the template's comment;
    "\\n" starts a new line of it), the range of a number, the choices of a string, a kind
    beyond its type (see the constants above), and words a refusal adds (unit, note)."""
    meta = {"help": help, "low": low, "high": high, "choices": choices, "kind": kind,
                "nonempty": nonempty, "unit": unit, "note": note}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def _default(spec: dataclasses.Field) -> Any:
    """A setting's default: its value, else a fresh one from its factory."""
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    raise TypeError(f"the setting {spec.name} has no default")  # setting() always gives one


def check(spec: dataclasses.Field, value: Any, name: str, source: str) -> Any:
    """The value a setting takes from `value` (checked against its declaration), or
    ConfigError in one line naming the file (`source`), the key and what is allowed."""
    meta = spec.metadata
    kind = meta["kind"]
    default = _default(spec)

    def refuse(what: str) -> ConfigError:
        return ConfigError(f"{source}: {name} {what}")

    if kind == AUTO_OR_NUMBER:
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise refuse(f"must be \"auto\" or a number, got {value!r}")
        value = float(value)
    elif kind == AUTO_OR_BOOL:
        if value != "auto" and not isinstance(value, bool):
            raise refuse(f"must be true, false or \"auto\", got {value!r}")
        return value
    elif kind == AUTO_OR_PATHS:
        return value if value == "auto" else _paths(value, refuse)
    elif kind == PATHS:
        return _paths(value, refuse)
    elif kind == NAMES:
        if not isinstance(value, list) or not all(isinstance(v, str) and ENV_NAME.match(v)
                                                  for v in value):
            raise refuse(f"must be a list of variable names, e.g. [\"WANDB_MODE\"], got "
                         f"{value!r}")
        return list(value)
    elif kind == STRINGS:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            shown = type(value).__name__ if "urls" in name else repr(value)  # a URL: tokens
            raise refuse(f"must be a list of strings, got {shown}")
        wrong = [v for v in value if meta["choices"] and v not in meta["choices"]]
        if wrong:
            raise refuse(f"has {wrong[0]!r}; allowed: " + ", ".join(meta["choices"]))
        return list(value)
    elif isinstance(default, bool):
        if not isinstance(value, bool):
            raise refuse(f"must be true or false, got {value!r}")
        return value
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise refuse(f"must be an integer, got {value!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise refuse(f"must be a number, got {value!r}")
        if not math.isfinite(value):
            raise refuse(f"must be a finite number, got {value!r}")
        value = float(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise refuse(f"must be a string, got {value!r}")
        if "\0" in value:
            raise refuse("has a NUL character in it")
        if kind == PATH:
            _check_path(value, refuse)
        if meta["nonempty"] and not value.strip():
            raise refuse("must not be empty")
        if kind == CLOCK and value and not CLOCK_TIME.fullmatch(value):
            raise refuse(f"must be a local time like \"08:00\" (or \"\" for none), got "
                         f"{value!r}")
    if meta["choices"] and value not in meta["choices"]:
        raise refuse(f"= {value!r} is not allowed; use one of: " + ", ".join(meta["choices"]))
    low, high = meta["low"], meta["high"]
    if low is not None and not low <= value <= high:
        raise refuse(f"must be between {low:g} and {high:g}{meta['unit']}{meta['note']}, "
                     f"got {value}")
    return value


def _paths(value: Any, refuse) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise refuse(f"must be a list of paths, e.g. [\"data\"], got {value!r}")
    for path in value:
        _check_path(path, refuse)
    return [v.strip() for v in value]


def _check_path(path: str, refuse) -> None:
    """A path the system can take: no NUL byte, no name longer than a filesystem allows."""
    if "\0" in path:
        raise refuse("has a path with a NUL character in it")
    if any(len(part.encode()) > MAX_NAME for part in path.split("/")) \
            or len(path.encode()) > MAX_PATH:
        raise refuse(f"has a path too long for a filesystem ({len(path)} characters)")


# -- the template ---------------------------------------------------------------------------
def render(sections: list[tuple[str, type, str]], width: int = 100) -> str:
    """The TOML of every setting at its default, each with its help: (name, the section's
    dataclass, the section's own comment) in order."""
    out: list[str] = []
    for name, cls, comment in sections:
        if out:
            out.append("")
        head = f"[{name}]"
        if not dataclasses.fields(cls):  # a section of free keys ([keys])
            out.append(_line(head, comment, width))
            continue
        out.append(head)
        for spec in dataclasses.fields(cls):
            out.append(_line(f"{spec.name} = {toml_value(_default(spec))}", spec.metadata["help"],
                             width))
    return "\n".join(out) + "\n"


def _line(assignment: str, help: str, width: int) -> str:
    """`key = value`, its help beside it from COMMENT_COLUMN, wrapped within `width`."""
    if not help:
        return assignment
    lines = []
    for paragraph in help.split("\n"):
        lines += textwrap.wrap(paragraph, width - COMMENT_COLUMN - 2) or [""]
    first = assignment.ljust(COMMENT_COLUMN - 1) + " # " + lines[0]
    rest = [" " * COMMENT_COLUMN + "# " + line for line in lines[1:]]
    return "\n".join([first, *rest])


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)
