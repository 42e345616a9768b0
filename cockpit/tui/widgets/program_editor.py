"""The program editor: program.md in a TextArea, saved on ctrl+s.

The file is the human's: a save writes back every byte they did not change (each
untouched line keeps its own line ending, CRLF or LF; a final newline stays; trailing
spaces stay), and the text is shown as written, hard wraps and all (no soft wrap: long
lines scroll sideways).

An edit made outside (another editor, `git pull`) is seen through `watchfiles`: with no
unsaved typing here it is loaded, keeping the cursor and the scroll where they were;
with unsaved typing it is a conflict, shown in a banner, and nothing is written until
the human chooses (ctrl+s again keeps the typed text, ctrl+l loads the disk's version).

Typing goes into the file only in edit mode (E, shown in the pane's title and border):
outside it the text is read-only and every key is the cockpit's, so a key pressed while
the pane merely has focus never ends up in what the agent reads.
"""
from __future__ import annotations

import difflib
import threading
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static, TextArea
from textual.widgets.text_area import Document


def split_lines(text: str) -> tuple[list[str], list[str]]:
    """The lines of `text` as a TextArea holds them (a final newline makes a last empty
    line), and the ending each one had ("" for the last)."""
    contents = Document(text).lines
    endings = [line[len(body):] for line, body in
               zip(text.splitlines(keepends=True), contents)]
    return contents, endings[:len(contents) - 1] + [""]


def merge_edit(original: str, edited: list[str]) -> str:
    """The text to save: `edited` (the editor's lines) written with the bytes of
    `original` wherever a line is unchanged. Lines the human added or changed end the
    way the file mostly does, and a file that ended with a newline still does."""
    contents, endings = split_lines(original)
    newline = Document(original).newline
    last = len(edited) - 1
    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, contents, edited, autojunk=False)
    for tag, i1, _i2, j1, j2 in matcher.get_opcodes():
        for offset, j in enumerate(range(j1, j2)):
            i = i1 + offset if tag == "equal" else None
            if j == last:
                ending = ""
            elif i is not None and i < len(contents) - 1:
                ending = endings[i]
            else:
                ending = newline
            out.append(edited[j] + ending)
    text = "".join(out)
    if len(contents) > 1 and contents[-1] == "" and edited and edited[-1] != "":
        text += newline  # typed on the last, empty line: the file's final newline stays
    return text


class ProgramEditor(Vertical):
    DEFAULT_CLASSES = "pane"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save program", priority=True),
        Binding("ctrl+l", "load_disk", "Load disk version", show=False),
    ]

    class Saved(Message):
        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    class Changed(Message):
        """program.md changed on disk; `conflict` when it collides with unsaved typing."""

        def __init__(self, path: Path, conflict: bool) -> None:
            super().__init__()
            self.path = path
            self.conflict = conflict

    def __init__(self, path: Path, watch: bool = True, read_only: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.watch_disk = watch
        self.read_only = read_only
        self.disk_text = self._read()  # what we last loaded from / wrote to disk, exactly
        self.conflict = False
        self.editing = False  # edit mode: keys type into the file
        self._stop_watch = threading.Event()

    def compose(self) -> ComposeResult:
        yield Static("", id="program-conflict", markup=False)
        yield TextArea(self.disk_text, language=_language(), soft_wrap=False,
                       read_only=True, id="program-text", show_line_numbers=False)

    @property
    def text_area(self) -> TextArea:
        return self.query_one("#program-text", TextArea)

    @property
    def modified(self) -> bool:
        """Whether a save would change the file."""
        return self.text_to_save != self.disk_text

    @property
    def text_to_save(self) -> str:
        """What a save writes: the editor's lines with the file's untouched bytes."""
        return merge_edit(self.disk_text, self.text_area.document.lines)

    def on_mount(self) -> None:
        self.query_one("#program-conflict").display = False
        self._show_mode()
        if self.watch_disk:
            self._watch()

    def start_editing(self) -> None:
        """Edit mode: keys type into program.md until escape."""
        if self.read_only:
            self.notify("read-only view: program.md is edited where the loop runs",
                        severity="warning")
            return
        self.editing = True
        self._show_mode()
        self.text_area.focus()

    def stop_editing(self) -> None:
        if not self.editing:
            return
        self.editing = False
        self._show_mode()
        if self.modified:
            self.notify(f"{self.path.name} has unsaved changes: E edits again, then ctrl+s saves",
                        severity="warning")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Save only where there is something to save: while editing, or unsaved typing
        left behind (the footer offers it then, and only then)."""
        if action == "save":
            return self.editing or self.conflict or self.modified
        return True

    def _show_mode(self) -> None:
        self.refresh_bindings()
        self.text_area.read_only = not self.editing
        self.set_class(self.editing, "-editing")
        self.border_title = (f"✎ EDITING {self.path.name} · escape leaves · ctrl+s saves"
                             if self.editing else self.path.name)
        self.border_subtitle = "" if self.editing or self.read_only else "E edits"

    def on_unmount(self) -> None:
        self._stop_watch.set()

    def action_save(self) -> None:
        if self.read_only:
            self.notify("read-only view: program.md is edited where the loop runs",
                        severity="warning")
            return
        on_disk = self._read()
        if on_disk != self.disk_text and not self.conflict:
            self.disk_changed()  # changed under us before the watcher said so: never clobber
            return
        text = self.text_to_save
        self.path.write_bytes(text.encode("utf-8"))
        self.disk_text = text
        self._hide_conflict()
        self.refresh_bindings()
        self.post_message(self.Saved(self.path))

    def action_load_disk(self) -> None:
        self.disk_text = self._read()
        self._load(self.disk_text)
        self._hide_conflict()

    def _load(self, text: str) -> None:
        """Load `text`, keeping the cursor and the scroll where they were (clamped)."""
        area = self.text_area
        row, column = area.cursor_location
        scroll_x, scroll_y = area.scroll_offset
        area.load_text(text)
        lines = area.document.lines
        row = min(row, len(lines) - 1)
        area.move_cursor((row, min(column, len(lines[row]))))

        def restore_scroll() -> None:
            area.scroll_to(x=scroll_x, y=scroll_y, animate=False, immediate=True)
            area.scroll_cursor_visible()

        self.call_after_refresh(restore_scroll)

    def disk_changed(self) -> None:
        """The file on disk may have changed (called by the watcher, or by a test)."""
        on_disk = self._read()
        if on_disk == self.disk_text:
            return  # our own save, or a touch without a change
        if not self.modified:
            self.disk_text = on_disk
            self._load(on_disk)
            self.post_message(self.Changed(self.path, conflict=False))
        else:
            self._show_conflict()
            self.post_message(self.Changed(self.path, conflict=True))

    def _show_conflict(self) -> None:
        self.conflict = True
        banner = self.query_one("#program-conflict", Static)
        banner.update(f"{self.path.name} changed on disk while you were editing: "
                      "ctrl+s keeps yours (overwrites), ctrl+l loads the disk's")
        banner.display = True

    def _hide_conflict(self) -> None:
        self.conflict = False
        self.query_one("#program-conflict").display = False

    def _read(self) -> str:
        try:  # bytes, not read_text: universal newlines would turn CRLF into LF
            return self.path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            return ""

    @work(thread=True, exclusive=True, exit_on_error=False, group="program-watch")
    def _watch(self) -> None:
        from watchfiles import watch

        name = self.path.name
        # The directory, not the file: editors that save by rename replace the file's inode.
        for _changes in watch(self.path.parent, recursive=False, stop_event=self._stop_watch,
                             watch_filter=lambda change, path: Path(path).name == name,
                             debounce=200, rust_timeout=500, yield_on_timeout=False):
            if self._stop_watch.is_set():
                return
            self.app.call_from_thread(self.disk_changed)


def _language() -> str | None:
    """Markdown highlighting when textual[syntax] is installed; plain text otherwise."""
    try:
        import tree_sitter_markdown  # noqa: F401
    except ImportError:
        return None
    return "markdown"
