"""The keys that act on the session: approve, reject, edit a proposal, pause, stop a run,
steer, drop a note, branch from an experiment, resume a session that died, quit. Each sends
a command that names what it acts on (approve #7, stop #12); the session's answer comes back
as a notice.

A mixin of CockpitApp: it reads the app's view of the session (`view`, `approval`,
`attached`) and sends through its link. The type checker reads it as the App it mixes into.
"""
from __future__ import annotations

import functools
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import SuspendNotSupported

from cockpit.domain.diffs import first_changed_line
from cockpit.domain.state import Experiment
from cockpit.tui.screens.confirm import ConfirmScreen, Question
from cockpit.tui.screens.notes import NotesScreen
from cockpit.tui.screens.proposal_editor import ProposalEditor
from cockpit.tui.screens.steer import NoteScreen
from cockpit.tui.widgets.timeline import Timeline

if TYPE_CHECKING:
    from collections.abc import Callable

    from textual.app import App

    from cockpit.client.store import SessionStore
    from cockpit.tui.link import SessionLink
    from cockpit.tui.screens.main import MainScreen
    from cockpit.tui.view import SessionView

    _App = App[str]  # what the app exits with: "quit", "detach" or "stop"
else:
    _App = object

# editors that take `+LINE` before the file (others, like `code --wait`, would open a
# file of that name)
LINE_ARG_EDITORS = {"vi", "vim", "nvim", "nano", "emacs", "emacsclient", "micro"}
# the actions that need a live session (dimmed without one)
SESSION_ACTIONS = {"approve", "reject", "edit_proposal", "toggle_auto_approve", "pause_resume",
                   "stop_run", "steer", "notes", "branch"}


class SessionControls(_App):
    view: SessionView
    link: SessionLink
    store: SessionStore
    main: MainScreen
    approval: int | None
    gone: str
    resume_session: Callable[[], object] | None  # its result is not used
    shown_worker: int

    if TYPE_CHECKING:  # CockpitApp's own
        @property
        def attached(self) -> bool: ...

        def attach(self) -> None: ...

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in SESSION_ACTIONS and not self.attached:
            return None  # shown dimmed: no session to act on
        if action in ("approve", "reject", "edit_proposal") and not self.view.awaiting:
            return None
        if action == "resume_session":
            return bool(self.gone) and self.resume_session is not None and not self.view.ended
        return True

    def _decided(self) -> int | None:
        """The proposal a decision is about: the one on screen, if it still waits."""
        n = self.approval
        if n is None or n not in self.view.awaiting:
            self.notify("nothing awaits approval")
            return None
        return n

    def action_approve(self) -> None:
        n = self._decided()
        if n is not None:
            self.link.send("approve", n=n)

    def action_reject(self) -> None:
        n = self._decided()
        if n is None:
            return

        def rejected(reason: str | None) -> None:
            self.link.send("hold", client=self.link.client_id, on=False)
            if reason is not None:
                self.link.send("reject", n=n, reason=reason)

        self.link.send("hold", client=self.link.client_id, on=True)
        self.push_screen(NoteScreen(f"Why reject #{n}? (recorded, and read by the agent)",
                                    "the reason"), rejected)

    def action_toggle_auto_approve(self) -> None:
        self.link.send("auto_approve", on=not self.view.live.get("auto_approve"))

    def action_pause_resume(self) -> None:
        self.link.send("resume" if self.view.paused else "pause")

    def action_stop_run(self) -> None:
        run = self.view.run_of(self.shown_worker)
        if run is None or run["kind"] != "experiment":
            self.notify("no experiment in flight" + (" on this worker" if self.view.workers > 1
                                                     else ""))
            return
        n = run["n"]

        def answered(answer: str | None) -> None:
            self.link.send("hold", client=self.link.client_id, on=False)
            if answer == "y":
                self.link.send("stop_run", n=n)  # refused if #n is over by now

        self.link.send("hold", client=self.link.client_id, on=True)
        ask = functools.partial(self._stop_question, n)
        self.push_screen(ConfirmScreen(*ask(), ask=ask), answered)

    def _stop_question(self, n: int) -> Question:
        if any(r["kind"] == "experiment" and r["n"] == n for r in self.view.running):
            return (f"End #{n} now? It is recorded as a crash (stopped by the human) and the "
                    "session pauses.", [("y", f"Stop #{n}"), ("n", "Keep it running")])
        exp = self.view.state.get(n)
        how = f" ({exp.status})" if exp is not None and exp.status else ""
        return f"#{n} has ended{how}: there is nothing to stop.", [("c", "Close")]

    def action_steer(self) -> None:
        def noted(note: str | None) -> None:
            if note:
                self.link.send("steer", text=note)

        self.push_screen(NoteScreen("A steering note for the next proposals",
                                    "e.g. try a larger LEARNING_RATE"), noted)

    def action_branch(self) -> None:
        """A new line of research from the selected row (the session says if it cannot)."""
        n = self.main.query_one(Timeline).selected_n
        if n is None:
            self.notify("select an experiment to branch from")
            return
        self.link.send("branch", n=n)

    def action_resume_session(self) -> None:
        if self.resume_session is None:
            return
        self.notify("starting the session again ...")
        try:
            self.resume_session()
        except Exception as exc:  # one line for the human, the app stays
            self.notify(f"could not resume: {exc}", severity="error")
            return
        self.attach()

    def action_edit_proposal(self) -> None:
        """Change the pending proposal before it runs: $EDITOR when set, else in the app."""
        n = self._decided()
        if n is None:
            return
        exp = self.view.state.get(n)
        try:
            if exp is None:  # live said it awaits; its journal events are still on the way
                raise LookupError("not in the journal yet")
            source = self.store.blob(exp.source_blob)
        except Exception as exc:  # an old journal without the blob: say so, change nothing
            self.notify(f"#{n}'s proposed file cannot be read: {exc}", severity="error")
            return
        self.link.send("hold", client=self.link.client_id, on=True)

        def edited(text: str | None) -> None:
            self.link.send("hold", client=self.link.client_id, on=False)
            if text is None or text == source:
                self.notify(f"#{n} unchanged: it still awaits your decision")
                return
            self.link.send("approve", n=n, source=text)

        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
        if editor:
            try:
                edited(self._edit_outside(editor, exp, source))
                return
            except SuspendNotSupported:  # a browser tab has no terminal to hand over
                pass
        self.push_screen(ProposalEditor(n, self.editable, source, exp.diff), edited)

    def _edit_outside(self, editor: str, exp: Experiment, source: str) -> str | None:
        """The proposal in the human's own $EDITOR (the screen is handed over meanwhile)."""
        suffix = Path(self.editable).suffix or ".txt"
        with tempfile.NamedTemporaryFile("w", suffix=suffix, prefix=f"proposal-{exp.n}-",
                                         delete=False, encoding="utf-8") as f:
            f.write(source)
        path = Path(f.name)
        command = shlex.split(editor)
        if Path(command[0]).name in LINE_ARG_EDITORS:  # they open on the change
            command.append(f"+{first_changed_line(exp.diff) + 1}")
        try:
            with self.suspend():
                code = subprocess.call([*command, str(path)])
            return path.read_text(encoding="utf-8") if code == 0 else None
        finally:
            path.unlink(missing_ok=True)

    @property
    def editable(self) -> str:
        return (self.view.config.get("experiment") or {}).get("editable", "train.py")

    def action_notes(self) -> None:
        def chosen(note_id: int | None) -> None:
            if note_id is not None:
                self.link.send("drop_note", id=note_id)

        self.push_screen(NotesScreen(list(self.view.live.get("notes") or [])), chosen)

    async def action_quit(self) -> None:
        if not self.attached:
            self.exit("quit")
            return

        def answered(answer: str | None) -> None:
            if answer == "d":
                self.exit("detach")
            elif answer == "q":
                self.exit("quit")
            elif answer == "s":  # the experiments the dialog named, not one started since
                running = [r["n"] for r in self.view.running if r["kind"] == "experiment"]
                self.link.send("stop", now=True, runs=running)
                self.exit("stop")

        self.push_screen(ConfirmScreen(*self._quit_question(), ask=self._quit_question),
                         answered)

    def _quit_question(self) -> Question:
        if not self.attached:  # it ended (or died) while the dialog was open
            why = self.gone or f"the session ended: {self.view.ended}"
            return f"Quit the cockpit? {why[0].upper()}{why[1:]}.", [("q", "Quit"),
                                                                       ("c", "Cancel")]
        names = [f"#{r['n']}" if r["kind"] == "experiment" else
                 self.view.rerun_of(r["commit"], r["purpose"]) for r in self.view.running]
        what = (", ".join(names) + " in flight") if names else "no run in flight"
        asks = ""
        if self.view.awaiting and not self.view.live.get("auto_approve"):
            asks = " Proposals wait for approval while no one is attached (`cockpit approve`)."
        return (f"Quit the cockpit? The session goes on without it ({what}).{asks}",
                [("d", "Detach: the research goes on"),
                 ("s", "Stop the session" + (f" (ends {', '.join(names)} now)" if names
                                             else "")),
                 ("c", "Cancel")])

    def follow_dialogs(self) -> None:
        """Open questions about the session are asked again from what is true now."""
        for screen in self.screen_stack:
            if isinstance(screen, ConfirmScreen):
                screen.follow()
