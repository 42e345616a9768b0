"""The program editor keeps the human's file as written: the bytes of every untouched line
on save, the cursor and scroll on a reload from disk, hard wraps unreflowed, and the
conflict banner when an edit elsewhere meets unsaved typing."""
from __future__ import annotations

import asyncio
import subprocess

import pytest
from textual.app import App

from cockpit.tui.widgets.program_editor import ProgramEditor, merge_edit, split_lines


class EditorApp(App):
    def __init__(self, path) -> None:
        super().__init__()
        self.path = path
        self.events: list = []

    def compose(self):
        yield ProgramEditor(self.path, watch=False, id="program")

    def on_program_editor_changed(self, message: ProgramEditor.Changed) -> None:
        self.events.append(("changed", message.conflict))

    def on_program_editor_saved(self, message: ProgramEditor.Saved) -> None:
        self.events.append(("saved",))


def run(app: App, scenario, size=(60, 20)) -> None:
    async def main():
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await scenario(pilot)
    asyncio.run(main())


@pytest.mark.parametrize("original, edited, saved", [
    ("a\nb\n", ["a", "b", ""], "a\nb\n"),
    ("a\nb\n", ["a", "b", "c"], "a\nb\nc\n"),  # typed on the last line: the newline stays
    ("a\r\nb\r\n", ["a", "x", "b", ""], "a\r\nx\r\nb\r\n"),
    ("a\r\nb\nc", ["a", "b", "c", "d"], "a\r\nb\nc\r\nd"),  # each untouched line its own
    ("x  \ny\t\n", ["x  ", "z", ""], "x  \nz\n"),
    ("no final newline", ["no final newline!"], "no final newline!"),
    ("", ["hi"], "hi"),
])
def test_a_save_keeps_the_bytes_the_human_did_not_change(original, edited, saved):
    assert merge_edit(original, edited) == saved
    contents, _ = split_lines(original)
    assert merge_edit(original, contents) == original  # nothing changed: nothing moves


def test_saving_keeps_crlf_trailing_spaces_and_the_final_newline(tmp_path):
    program = tmp_path / "program.md"
    original = b"# program\r\nKeep it simple.  \r\n\r\nTry the learning rate.\r\n"
    program.write_bytes(original)
    app = EditorApp(program)

    async def scenario(pilot):
        editor = app.query_one(ProgramEditor)
        area = editor.text_area
        editor.start_editing()  # E: edit mode
        area.move_cursor(area.document.end)
        await pilot.press(*"Then depth.")
        await pilot.press("ctrl+s")
        assert program.read_bytes() == original + b"Then depth.\r\n"
        assert app.events[-1] == ("saved",) and not editor.modified
        # the next `echo >> program.md` starts a line of its own
        subprocess.run(f"echo 'from the shell' >> {program}", shell=True, check=True)
        assert program.read_bytes().endswith(b"Then depth.\r\nfrom the shell\n")

    run(app, scenario)


def test_a_reload_from_disk_keeps_the_cursor_and_the_scroll(tmp_path):
    program = tmp_path / "program.md"
    lines = [f"line {i:03d} of the research program" for i in range(200)]
    program.write_text("\n".join(lines) + "\n")
    app = EditorApp(program)

    async def scenario(pilot):
        editor = app.query_one(ProgramEditor)
        area = editor.text_area
        editor.start_editing()  # E: edit mode
        area.move_cursor((150, 5))
        await pilot.pause()
        scroll = area.scroll_y
        assert scroll > 100
        lines[10] = "line 010 changed by git pull"
        program.write_text("\n".join(lines) + "\n")
        editor.disk_changed()
        await pilot.pause()
        assert area.text.startswith("line 000") and "changed by git pull" in area.text
        assert area.cursor_location == (150, 5) and area.scroll_y == scroll
        assert app.events[-1] == ("changed", False)
        program.write_text("\n".join(lines[:100]))  # shorter than where the cursor was
        editor.disk_changed()
        await pilot.pause()
        assert area.cursor_location == (99, 5)

    run(app, scenario)


def test_hard_wrapped_markdown_is_shown_as_written(tmp_path):
    program = tmp_path / "program.md"
    wide = "A paragraph hard-wrapped at a hundred columns, as the human wrote it, " \
           "and never reflowed here."
    program.write_text(f"# program\n{wide}\nsecond line\n")
    app = EditorApp(program)

    async def scenario(pilot):
        area = app.query_one(ProgramEditor).text_area
        assert not area.soft_wrap
        assert area.wrapped_document.height == 4  # one row a line, however long
        assert area.max_scroll_x > 0  # long lines scroll sideways instead
        area.focus()
        area.move_cursor((1, len(wide)))
        await pilot.pause()
        assert area.scroll_x > 0

    run(app, scenario)


def test_an_edit_elsewhere_meeting_unsaved_typing_is_a_conflict(tmp_path):
    program = tmp_path / "program.md"
    program.write_text("# program\nmine\n")
    app = EditorApp(program)

    async def scenario(pilot):
        editor = app.query_one(ProgramEditor)
        area = editor.text_area
        editor.start_editing()  # E: edit mode
        area.move_cursor((1, 4))
        await pilot.press(*" and more")
        program.write_text("# program\ntheirs\n")
        editor.disk_changed()
        await pilot.pause()
        assert editor.conflict and app.query_one("#program-conflict").display
        assert app.events[-1] == ("changed", True)
        assert program.read_text() == "# program\ntheirs\n"  # nothing overwritten
        await pilot.press("ctrl+l")
        assert area.text == "# program\ntheirs\n" and not editor.conflict
        await pilot.press(*"!")
        program.write_text("# program\nthird\n")
        editor.disk_changed()
        await pilot.press("ctrl+s")  # after the banner: the human's explicit choice
        assert program.read_text() == "# program\ntheirs!\n" and not editor.conflict

    run(app, scenario)
