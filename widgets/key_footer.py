"""The footer: the keys of the moment, fewer of them on a small terminal.

Textual's Footer shows every binding with `show=True` and runs off the edge at 80
columns. This one shows, below `narrow_width` columns, only the bindings whose id is in
`narrow_ids` (plus a focused widget's own shown keys, which have no id), in the compact
style: the rest are one `?` away. A key bound twice (E and ctrl+e) shows once.
"""
from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

NARROW_WIDTH = 100


class KeyFooter(Footer):
    def __init__(self, narrow_ids: Iterable[str] = (), narrow_width: int = NARROW_WIDTH,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.narrow_ids = frozenset(narrow_ids)
        self.narrow_width = narrow_width
        self.narrow = False

    def _is_narrow(self) -> bool:
        return self.app.size.width < self.narrow_width

    def on_resize(self) -> None:
        if self._is_narrow() != self.narrow and self._bindings_ready:
            self.call_after_refresh(self.recompose)

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        self.narrow = self._is_narrow()
        self.compact = self.narrow
        shown: set[str] = set()
        active = self.screen.active_bindings
        for _, binding, enabled, tooltip in active.values():
            if not binding.show or binding.action in shown:
                continue
            if self.narrow and binding.id is not None and binding.id not in self.narrow_ids:
                continue
            shown.add(binding.action)
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description,
                            binding.action, disabled=not enabled,
                            tooltip=tooltip or binding.description,
                            ).data_bind(compact=Footer.compact)
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            palette = active.get(self.app.COMMAND_PALETTE_BINDING)
            if palette is not None:
                _, binding, enabled, _ = palette
                yield FooterKey(binding.key, self.app.get_key_display(binding),
                                "" if self.narrow else binding.description, binding.action,
                                classes="-command-palette", disabled=not enabled,
                                tooltip=binding.description)
