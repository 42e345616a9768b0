"""Keys declared once (cockpit.keymap): the table, a user's remap through Textual's own
keymap, the help screen and the footer built from it, at 120 and at 80 columns."""
from __future__ import annotations

import asyncio

import pytest
from test_widgets import screen_text
from textual.app import App
from textual.screen import Screen
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from cockpit.domain.errors import CockpitError
from cockpit.tui.keymap import (
    ACTIONS,
    BY_ID,
    bindings,
    effective_keys,
    help_rows,
    keymap_from,
    narrow_footer_ids,
    palette_entries,
)
from cockpit.tui.screens.help import HelpScreen
from cockpit.tui.widgets.key_footer import KeyFooter

ACTION_IDS = {"approve", "reject", "edit_proposal", "toggle_auto_approve", "pause_resume",
              "stop_run", "steer", "notes", "edit_program", "open_experiment", "search",
              "mark", "compare", "replay", "next_worker", "help", "quit", "pane_timeline",
              "pane_change", "pane_log", "pane_chart", "pane_program", "toggle_theme",
              "resume_session", "messages", "sort", "filter", "filter_text", "curves",
              "settings", "branch"}


class KeysScreen(Screen):
    BINDINGS = bindings()

    def compose(self):
        yield Static("keys")
        yield KeyFooter(narrow_footer_ids())

    def action_search(self) -> None:
        self.app.done.append("search")


class KeysApp(App):
    """Every action of the table records itself, so a key press can be checked."""

    def __init__(self, keymap: dict[str, str] | None = None) -> None:
        super().__init__()
        self.keymap = keymap or {}
        self.done: list[str] = []

    def on_mount(self) -> None:
        self.set_keymap(self.keymap)
        self.push_screen(KeysScreen())

    def action_pane(self, pane: str) -> None:
        self.done.append(f"pane:{pane}")

    def action_help(self) -> None:
        self.done.append("help")
        self.push_screen(HelpScreen(keymap=self.keymap))

    async def action_quit(self) -> None:
        self.done.append("quit")

    def __getattr__(self, name: str):
        if name.startswith("action_"):
            return lambda *args: self.done.append(name.removeprefix("action_"))
        raise AttributeError(name)


def run(app: App, scenario, size=(120, 40)) -> None:
    async def main():
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await scenario(pilot)
    asyncio.run(main())


def footer_keys(app: App) -> list[FooterKey]:
    return list(app.screen.query(FooterKey))


def test_the_table_has_every_action_once_with_a_key_and_no_clash():
    assert {a.id for a in ACTIONS} == ACTION_IDS and len(ACTIONS) == len(ACTION_IDS)
    assert keymap_from({}) == {}  # the defaults themselves pass the clash check
    made = bindings()
    assert [b.id for b in made] == [a.id for a in ACTIONS]
    assert all(b.action.startswith("app.") for b in made if b.id != "search")
    assert BY_ID["search"].action == "screen.search" and not any(b.priority for b in made)
    assert "help" in narrow_footer_ids() and len(narrow_footer_ids()) <= 6
    assert BY_ID["edit_program"].keys == "E,ctrl+e" and BY_ID["edit_proposal"].keys == "e"


@pytest.mark.parametrize("overrides, says", [
    ({"aprove": "y"}, "unknown action 'aprove'"),
    ({"stop_run": "a"}, "'a' is bound to both approve and stop_run"),
    ({"approve": "ctrl+p"}, "'ctrl+p' is taken by the command palette"),
    ({"approve": "ctrl+banana"}, "'ctrl+banana' is not a key"),
    ({"approve": " "}, "approve: no key given"),
    ({"approve": "y", "reject": "y"}, "'y' is bound to both approve and reject"),
])
def test_bad_overrides_are_one_line_errors(overrides, says):
    with pytest.raises(CockpitError) as error:
        keymap_from(overrides)
    assert says in str(error.value) and "\n" not in str(error.value)


def test_overrides_are_normalized_and_may_swap_keys():
    assert keymap_from({"approve": "y", "stop_run": "ctrl+x", "help": "?"}) == {
        "approve": "y", "stop_run": "ctrl+x", "help": "question_mark"}
    assert keymap_from({"approve": "s", "stop_run": "a"}) == {"approve": "s", "stop_run": "a"}
    assert keymap_from({"edit_program": ["E", "F2"]}) == {"edit_program": "E,f2"}
    assert effective_keys({"approve": "y"})["approve"] == "y"


def test_help_rows_and_palette_entries_come_from_the_table():
    rows = help_rows({"approve": "y"})
    assert ("Decide", "y", BY_ID["approve"].description) in rows
    assert ("Steer the session", "E / ^e", BY_ID["edit_program"].description) in rows
    assert {description for _, _, description in rows} >= {a.description for a in ACTIONS}
    entries = palette_entries()
    assert ("Approve the proposal: run it", "approve", "key: a") in entries
    assert {action for _, action, _ in entries} == {
        a.action for a in ACTIONS if not a.id.startswith("pane_")}


@pytest.mark.slow
def test_a_remapped_key_runs_its_action_and_the_old_key_does_not():
    app = KeysApp(keymap_from({"approve": "y", "stop_run": "ctrl+x"}))

    async def scenario(pilot):
        await pilot.press("a", "y", "s", "ctrl+x", "E", "ctrl+e", "e", "3", "slash", "m")
        assert app.done == ["approve", "stop_run", "edit_program", "edit_program",
                            "edit_proposal", "pane:run-log", "search", "mark"]
        shown = {key.description: key.key_display for key in footer_keys(app)}
        assert shown["approve"] == "y" and shown["stop"] == "^x"
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "Approve the proposal" in screen_text(app)
        assert ("Decide", "y", BY_ID["approve"].description) in app.screen.rows

    run(app, scenario)


@pytest.mark.slow
def test_the_footer_fits_80_columns_with_help_and_shows_more_at_120():
    app = KeysApp()

    async def scenario(pilot):
        wide = [key.description for key in footer_keys(app)]
        assert {"approve", "reject", "pause", "stop", "steer", "program", "find", "help",
                "quit"} <= set(wide)
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        keys = footer_keys(app)
        narrow = [key.description for key in keys if "-command-palette" not in key.classes]
        assert narrow == ["approve", "reject", "pause", "stop", "help", "quit"]
        assert max(key.region.right for key in keys) <= 80
        assert all(key.region.width > 0 for key in keys)
        help_key = next(key for key in keys if key.description == "help")
        assert help_key.key_display == "?" and help_key.region.right <= 80
        for width in (90, 100, 110, 120, 140):
            await pilot.resize_terminal(width, 30)
            await pilot.pause(0.2)
            keys = footer_keys(app)
            assert max(key.region.right for key in keys) <= width
            assert "help" in [key.description for key in keys]
            palette = next(key for key in keys if "-command-palette" in key.classes)
            assert all(not key.region.overlaps(palette.region) for key in keys
                       if key is not palette)
        assert [key.description for key in footer_keys(app)] == wide

    run(app, scenario, size=(120, 40))
