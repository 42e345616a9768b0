"""The program editor: program.md in a TextArea, saved on ctrl+s.

An edit made outside (another editor, `git pull`) is seen through `watchfiles`: with no
unsaved typing here it is loaded; with unsaved typing it is a conflict, shown in a banner,
and nothing is written until the human chooses (ctrl+s again keeps the typed text, ctrl+l
loads the disk's version).
"""
from __future__ import annotations

import threading
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static, TextArea


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
        self.disk_text = self._read()  # what we last loaded from / wrote to disk
        self.conflict = False
        self._stop_watch = threading.Event()

    def compose(self) -> ComposeResult:
        yield Static("", id="program-conflict", markup=False)
        yield TextArea(self.disk_text, language=_language(), soft_wrap=True,
                       read_only=self.read_only, id="program-text", show_line_numbers=False)

    @property
    def text_area(self) -> TextArea:
        return self.query_one("#program-text", TextArea)

    @property
    def modified(self) -> bool:
        return self.text_area.text != self.disk_text

    def on_mount(self) -> None:
        self.query_one("#program-conflict").display = False
        if self.watch_disk:
            self._watch()

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
        text = self.text_area.text
        self.path.write_text(text, encoding="utf-8")
        self.disk_text = text
        self._hide_conflict()
        self.post_message(self.Saved(self.path))

    def action_load_disk(self) -> None:
        self.disk_text = self._read()
        self.text_area.load_text(self.disk_text)
        self._hide_conflict()

    def disk_changed(self) -> None:
        """The file on disk may have changed (called by the watcher, or by a test)."""
        on_disk = self._read()
        if on_disk == self.disk_text:
            return  # our own save, or a touch without a change
        if not self.modified:
            self.disk_text = on_disk
            self.text_area.load_text(on_disk)
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
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    @work(thread=True, exclusive=True, exit_on_error=False, group="program-watch")
    def _watch(self) -> None:
        from watchfiles import watch

        name = self.path.name
        # The directory, not the file: editors that save by rename replace the file's inode.
        for changes in watch(self.path.parent, recursive=False, stop_event=self._stop_watch,
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
