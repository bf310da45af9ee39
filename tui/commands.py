"""The command palette: every action of the registry that applies where you are."""

from __future__ import annotations

from functools import partial

from textual.content import Content
from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.actions import ACTIONS, ActionSpec

__all__ = ["ActionCommands"]


class ActionCommands(Provider):
    """Palette entries from `tui.actions`: the app-wide actions and the current screen's."""

    def _available(self) -> list[tuple[ActionSpec, str]]:
        screen = self.screen
        scope = getattr(screen, "SCOPE", None)
        out = []
        for spec in ACTIONS:
            if not spec.palette:
                continue
            if spec.scope == "app":
                out.append((spec, "app"))
            elif spec.scope == scope:
                out.append((spec, "screen"))
        return out

    def _keys(self, spec: ActionSpec) -> str:
        from tui.screens.help import key_label

        return key_label(spec, dict(getattr(self.app, "_keymap", {}) or {}))

    async def _run(self, spec: ActionSpec, target: str) -> None:
        if target == "app":
            await self.app.run_action(spec.action)
        else:
            await self.screen.run_action(spec.action)

    def _display(self, spec: ActionSpec, title: Content | None = None) -> Content:
        """The title with its key beside it (lazygit and Posting show the key in their menus)."""
        return (title if title is not None else Content(spec.title)) + Content.styled("  " + self._keys(spec),
                                                                                        "bold dim")

    async def discover(self) -> Hits:
        for spec, target in self._available():
            yield DiscoveryHit(self._display(spec), partial(self._run, spec, target), text=spec.title,
                               help=spec.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for spec, target in self._available():
            score = matcher.match(spec.title)
            if score > 0:
                yield Hit(score, self._display(spec, matcher.highlight(spec.title)), partial(self._run, spec, target),
                          text=spec.title,
                          help=spec.help)
