"""The command palette (ctrl+p): every cockpit action by name."""
from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from cockpit.tui.keymap import palette_entries


class CockpitCommands(Provider):
    def _commands(self):
        app = self.app
        for title, action, help_text in palette_entries(getattr(app, "keymap", None)):
            target = action.split(".", 1)[1] if action.startswith("screen.") else action
            owner = app.screen if action.startswith("screen.") else app
            if action.startswith("screen.") and not hasattr(owner, f"action_{target}"):
                continue
            if owner is app and app.check_action(action.split("(")[0], ()) is not True:
                continue
            yield title, partial(owner.run_action, target), help_text

    async def discover(self) -> Hits:
        for title, callback, help_text in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
