"""A footer that ranks its keys: on a narrow terminal it keeps the most important that fit.

Textual's `Footer` shows every key in order and cuts the line at the right edge, so on 80
columns ``? Keys`` and ``esc Back`` fell off. `RankedFooter` orders by `ActionSpec.rank`
(``?`` is 0, Esc 1), keeps what fits the width, and shows ``?`` first (lazygit and k9s keep
their help key in sight the same way).
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from tui.actions import by_id

__all__ = ["RankedFooter", "footer_width"]

UNRANKED = 6
"""Rank of a shown binding that is not in the registry (a widget's own)."""


def footer_width(key_display: str, description: str) -> int:
    """Cells one compact footer item takes (key, space, description, margin)."""
    return len(key_display) + (1 + len(description) if description else 0) + 1


def _rank(binding_id: str | None) -> int:
    try:
        return by_id(binding_id).rank if binding_id else UNRANKED
    except KeyError:
        return UNRANKED


class RankedFooter(Footer):
    """`Footer` that drops the lowest-ranked keys first when the line is too short."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(compact=True, **kwargs)  # type: ignore[arg-type]
        self._width = 0
        self.shown: list[str] = []
        """Descriptions of the keys on screen, in order (tests read it)."""

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        seen: set[str] = set()
        items = []
        for order, (_node, binding, enabled, tooltip) in enumerate(self.screen.active_bindings.values()):
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            items.append((_rank(binding.id), order, binding, enabled, tooltip))
        width = self.size.width or self.app.size.width
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            width -= 16
        kept = []
        used = 0
        for item in sorted(items, key=lambda i: (i[0], i[1])):
            binding = item[2]
            need = footer_width(self.app.get_key_display(binding), binding.description)
            if used + need <= width:
                kept.append(item)
                used += need
        kept.sort(key=lambda i: (i[0] != 0, i[1]))  # `?` first, then the screen's order
        self.shown = [i[2].description for i in kept]
        for _rank_, _order, binding, enabled, tooltip in kept:
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                            disabled=not enabled, tooltip=tooltip or binding.tooltip).data_bind(
                compact=Footer.compact)
        yield from self._palette_key()

    def _palette_key(self) -> ComposeResult:
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            try:
                _node, binding, enabled, tooltip = self.screen.active_bindings[self.app.COMMAND_PALETTE_BINDING]
            except KeyError:
                return
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                            classes="-command-palette", disabled=not enabled,
                            tooltip=binding.tooltip or binding.description)

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            if self._bindings_ready:
                self.call_after_refresh(self.recompose)
