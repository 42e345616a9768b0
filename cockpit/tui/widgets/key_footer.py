"""The footer: the keys of the moment, as many as the width allows, `?` always among them.

Textual's Footer shows every binding with `show=True` and runs off the edge at 80
columns. This one picks the first of three that fits: every shown key; every shown key
in the compact style; only the bindings whose id is in `narrow_ids` (plus a focused
widget's own shown keys, which have no id), compact. The rest are one `?` away. A key
bound twice (E and ctrl+e) shows once.
"""
from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

PALETTE_LABEL = "palette"


class KeyFooter(Footer):
    def __init__(self, narrow_ids: Iterable[str] = (), **kwargs) -> None:
        super().__init__(**kwargs)
        self.narrow_ids = frozenset(narrow_ids)
        self.narrow = False  # showing only the narrow set
        self._fitted_width = 0

    def on_resize(self) -> None:
        if self.size.width != self._fitted_width and self._bindings_ready:
            self.call_after_refresh(self.recompose)

    def _shown(self) -> list[tuple[Binding, bool, str]]:
        shown, seen = [], set()
        for _, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show and binding.action not in seen:
                seen.add(binding.action)
                shown.append((binding, enabled, tooltip))
        return shown

    def _width(self, keys: list[tuple[Binding, bool, str]], compact: bool) -> int:
        """Cells the keys take (FooterKey's padding: normal " k " + "label ", compact
        "k" + " label" and a margin), plus the palette key docked on the right."""
        width = sum(len(self.app.get_key_display(b)) + len(b.description) + (2 if compact else 3)
                    for b, _, _ in keys)
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            width += len(PALETTE_LABEL) + 6
        return width

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        width = self._fitted_width = self.size.width or self.app.size.width
        shown = self._shown()
        few = [k for k in shown if k[0].id is None or k[0].id in self.narrow_ids]
        keys, compact = few, True
        for candidate, is_compact in ((shown, False), (shown, True)):
            if self._width(candidate, is_compact) <= width:
                keys, compact = candidate, is_compact
                break
        self.narrow = keys is few and len(few) < len(shown)
        self.compact = compact
        for binding, enabled, tooltip in keys:
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description,
                            binding.action, disabled=not enabled,
                            tooltip=tooltip or binding.description,
                            ).data_bind(compact=Footer.compact)
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            palette = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
            if palette is not None:
                _, binding, enabled, _ = palette
                yield FooterKey(binding.key, self.app.get_key_display(binding),
                                "" if self.narrow else binding.description, binding.action,
                                classes="-command-palette", disabled=not enabled,
                                tooltip=binding.description)
