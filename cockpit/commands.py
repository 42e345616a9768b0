"""The command palette (ctrl+p): every cockpit action by name."""
from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

COMMANDS = [
    ("Approve the proposal", "approve", "run the proposed change"),
    ("Reject the proposal", "reject", "record it as rejected, with your reason"),
    ("Toggle auto-approve", "toggle_auto_approve", "run proposals without asking"),
    ("Pause / resume", "pause_resume", "pause after the run in flight, or go on"),
    ("Stop the run now", "stop_run", "end the run in flight (asks first)"),
    ("Add a steering note", "steer", "guide the next proposals"),
    ("Edit program.md", "edit_program", "the research instructions"),
    ("Replay the session", "replay", "step through every experiment"),
    ("Help: keys", "help", "every key binding"),
    ("Light / dark theme", "toggle_theme", "switch Textual's theme"),
    ("Quit", "quit", "asks first when the loop is running"),
]


class CockpitCommands(Provider):
    def _commands(self):
        app = self.app
        for title, action, help_text in COMMANDS:
            if app.check_action(action, ()) is not True:
                continue
            yield title, partial(app.run_action, action), help_text

    async def discover(self) -> Hits:
        for title, callback, help_text in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
