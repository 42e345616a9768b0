"""The cockpit's keys, declared once.

One table of actions, each with an id (what a user remaps in cockpit.toml's `[keys]`),
its default key(s), a short footer label and a longer description. The screen's
`Binding`s, the help screen's rows and the command palette's entries all come from it,
so they never drift apart. `keymap_from` checks a user's overrides and returns what
Textual's `App.set_keymap` takes.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from textual.binding import Binding
from textual.keys import (
    Keys,
    _character_to_key,  # Textual's own "?" -> "question_mark"
    format_key,
)

from cockpit.domain.errors import CockpitError

MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")
# Keys the cockpit or Textual use outside this table: a remap onto one of them would
# shadow it.
RESERVED = {
    "ctrl+p": "the command palette",
    "ctrl+q": "quit at once",
    "ctrl+c": "copy / interrupt",
    "ctrl+s": "save program.md (in the editor)",
    "ctrl+l": "load program.md from disk (in the editor)",
    "escape": "leave the editor",
    "tab": "focus the next pane",
    "shift+tab": "focus the previous pane",
}


@dataclass(frozen=True)
class Action:
    """One thing the human can do from the keyboard."""

    id: str  # stable name, remappable in cockpit.toml [keys]
    keys: str  # default key(s), comma separated, in Textual's key names
    action: str  # the action Textual runs: on the App, unless it names its own namespace
    label: str  # short footer label
    description: str  # what it does, for the help screen and the command palette
    footer: bool = True  # shown in the footer of a wide terminal
    narrow: bool = False  # also shown in the footer of a small (80-column) terminal
    group: str = "session"  # the help screen's section


ACTIONS: tuple[Action, ...] = (
    Action("approve", "a", "approve", "approve", "Approve the proposal: run it", narrow=True,
           group="decide"),
    Action("reject", "r", "reject", "reject", "Reject the proposal (asks for the reason)",
           narrow=True, group="decide"),
    Action("edit_proposal", "e", "edit_proposal", "edit",
           "Edit the pending proposal's change before it runs", group="decide"),
    Action("toggle_auto_approve", "A", "toggle_auto_approve", "auto",
           "Auto-approve on/off: run proposals without asking", group="decide"),
    Action("pause_resume", "p", "pause_resume", "pause",
           "Pause after the run in flight / resume", narrow=True),
    Action("stop_run", "s", "stop_run", "stop",
           "Stop the run in flight now (asks first; the loop pauses)", narrow=True),
    Action("steer", "n", "steer", "steer", "Add a steering note for the next proposals"),
    Action("branch", "b", "branch", "branch",
           "Branch: a new line of research from the selected experiment", footer=False),
    Action("resume_session", "R", "resume_session", "resume",
           "Start the session again after it died (nothing recorded is lost)"),
    Action("notes", "N", "notes", "notes", "The steering notes: read them, drop one",
           footer=False),
    Action("edit_program", "E,ctrl+e", "edit_program", "program",
           "Edit program.md (escape leaves the editor, ctrl+s saves)"),
    Action("open_experiment", "enter", "open_experiment", "open",
           "Open the selected experiment: its full log and diff", footer=False, group="look"),
    Action("search", "slash", "screen.search", "find",
           "Search the focused pane (timeline, log or diff)", group="look"),
    Action("mark", "m", "mark", "mark", "Mark the selected experiment for a comparison",
           footer=False, group="look"),
    Action("compare", "c", "compare", "compare", "Compare the two marked experiments",
           footer=False, group="look"),
    Action("sort", "o", "sort_timeline", "sort",
           "Sort the timeline: newest, by metric, by gain, by run time", footer=False,
           group="look"),
    Action("filter", "f", "filter_timeline", "filter",
           "Filter the timeline: all, keeps only, without early stops", footer=False,
           group="look"),
    Action("filter_text", "F", "filter_text", "match",
           "Show only the timeline rows that match a text (empty: all)", footer=False,
           group="look"),
    Action("settings", "K", "settings", "settings",
           "What each setting did: every value tried and how it fared", footer=False,
           group="look"),
    Action("replay", "t", "replay", "replay", "Replay the session experiment by experiment",
           footer=False, group="look"),
    Action("curves", "L", "curves", "curves",
           "Loss curves, full size: the selected, the marked, the best and the live run's",
           footer=False, group="look"),
    Action("next_worker", "w", "next_worker", "worker",
           "Show the next parallel worker's run log", footer=False, group="look"),
    Action("pane_timeline", "1", "pane('timeline')", "timeline", "Show the timeline",
           footer=False, group="panes"),
    Action("pane_change", "2", "pane('diff')", "change", "Show the change (diff)",
           footer=False, group="panes"),
    Action("pane_log", "3", "pane('run-log')", "log", "Show the run log", footer=False,
           group="panes"),
    Action("pane_chart", "4", "pane('chart')", "chart", "Show the metric chart",
           footer=False, group="panes"),
    Action("pane_program", "5", "pane('program')", "program.md", "Show program.md",
           footer=False, group="panes"),
    Action("messages", "M", "messages", "messages", "Every message shown so far, newest first",
           footer=False, group="app"),
    Action("toggle_theme", "ctrl+t", "toggle_theme", "theme", "Light / dark theme",
           footer=False, group="app"),
    Action("help", "question_mark", "help", "help", "Every key (this screen)", narrow=True,
           group="app"),
    Action("quit", "q", "quit", "quit", "Quit (asks first while the loop runs)", narrow=True,
           group="app"),
)
BY_ID = {a.id: a for a in ACTIONS}
GROUPS = {"decide": "Decide", "session": "Steer the session", "look": "Look around",
          "panes": "Panes (tabs on a small terminal)", "app": "The cockpit"}
# Keys that work inside one widget, listed in the help screen (not remappable here).
WIDGET_KEYS = (
    ("ctrl+s", "Save program.md (in the editor)"),
    ("ctrl+l", "Load program.md from disk (after a conflict)"),
    ("escape", "Leave the editor / close a dialog or the search"),
    ("enter / ↓ / ↑", "In the search: next / next / previous match"),
    ("ctrl+p", "Command palette: every action by name"),
)


def normalize_key(key: str) -> str:
    """A key in Textual's naming ("?" -> "question_mark", " ctrl+X " -> "ctrl+X")."""
    key = key.strip()
    if len(key) == 1:
        return _character_to_key(key)
    *modifiers, base = key.split("+")
    base = _character_to_key(base) if len(base) == 1 else base.lower()  # "F2" -> "f2"
    return "+".join([m.lower() for m in modifiers] + [base])


def _is_key(key: str) -> bool:
    *modifiers, base = key.split("+")
    if not base or any(m not in MODIFIERS for m in modifiers):
        return False
    return len(base) == 1 or base in _NAMED_KEYS


# "enter", "f5", "pageup" ... and the names of the printable characters ("question_mark")
_NAMED_KEYS = {k.value for k in Keys if "+" not in k.value} | {
    _character_to_key(chr(code)) for code in range(33, 127)} | {"space"}


def key_display(keys: str) -> str:
    """How keys read on screen: "E,ctrl+e" -> "E / ^e", "question_mark" -> "?"."""
    shown = []
    for key in keys.split(","):
        *modifiers, base = key.strip().split("+")
        text = format_key(base)
        if "ctrl" in modifiers:
            modifiers.remove("ctrl")
            text = "^" + text
        shown.append("+".join(modifiers + [text]))
    return " / ".join(shown)


def keymap_from(overrides: Mapping[str, str | list[str]]) -> dict[str, str]:
    """Check cockpit.toml's `[keys]` and return the keymap for `App.set_keymap`.

    Each override maps an action id to a key ("ctrl+x"), keys ("E,ctrl+e") or a list of
    keys. Raises CockpitError, in one line, for an unknown id, a name that is not a key,
    a key bound to two actions once the overrides apply, or a key the cockpit reserves.
    """
    keymap: dict[str, str] = {}
    for action_id, value in overrides.items():
        if action_id not in BY_ID:
            raise CockpitError(
                f"cockpit.toml [keys]: unknown action {action_id!r}; the actions are: "
                + ", ".join(BY_ID))
        parts = value if isinstance(value, list) else str(value).split(",")
        keys = [normalize_key(str(k)) for k in parts if str(k).strip()]
        if not keys:
            raise CockpitError(f"cockpit.toml [keys] {action_id}: no key given "
                               f"(e.g. {action_id} = \"ctrl+x\")")
        for key in keys:
            if not _is_key(key):
                raise CockpitError(f"cockpit.toml [keys] {action_id}: {key!r} is not a key "
                                   "(e.g. \"x\", \"X\", \"ctrl+x\", \"f5\", \"question_mark\")")
            if key in RESERVED:
                raise CockpitError(f"cockpit.toml [keys] {action_id}: {key!r} is taken by "
                                   f"{RESERVED[key]}; choose another key")
        keymap[action_id] = ",".join(keys)
    owner: dict[str, str] = {}
    for action_id, bound in effective_keys(keymap).items():
        for key in bound.split(","):
            if key in owner:
                raise CockpitError(f"cockpit.toml [keys]: {key!r} is bound to both "
                                   f"{owner[key]} and {action_id}; give one of them another key")
            owner[key] = action_id
    return keymap


def effective_keys(keymap: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every action id -> its keys, the defaults with `keymap` (from keymap_from) applied."""
    keymap = keymap or {}
    return {a.id: keymap.get(a.id, a.keys) for a in ACTIONS}


def bindings(namespace: str = "app") -> list[Binding]:
    """The screen's bindings, each with its action's id (Textual applies keymaps by id).

    Not priority bindings: a focused editor takes single letters first, so typing in it
    never fires an action. `namespace` prefixes each action that names none ("app" ->
    "app.approve"; "screen.search" stays)."""
    prefix = f"{namespace}." if namespace else ""
    return [Binding(a.keys, a.action if _namespaced(a.action) else prefix + a.action, a.label,
                    show=a.footer, id=a.id, tooltip=a.description) for a in ACTIONS]


def _namespaced(action: str) -> bool:
    return "." in action.split("(")[0]


def narrow_footer_ids() -> frozenset[str]:
    """The actions a small terminal's footer still shows (help always among them)."""
    return frozenset(a.id for a in ACTIONS if a.narrow)


def help_rows(keymap: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(section, keys as shown, description) for every action and the widgets' own keys,
    with the user's keymap applied."""
    keys = effective_keys(keymap)
    rows = [(GROUPS[a.group], key_display(keys[a.id]), a.description)
            for group in GROUPS for a in ACTIONS if a.group == group]
    return rows + [("In a pane", key, text) for key, text in WIDGET_KEYS]


def palette_entries(keymap: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(title, action, help) for the command palette: every action but the pane keys."""
    keys = effective_keys(keymap)
    return [(a.description, a.action, f"key: {key_display(keys[a.id])}")
            for a in ACTIONS if a.group != "panes"]
