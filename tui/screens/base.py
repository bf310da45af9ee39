"""What every latitude screen shares: its action scope, typed access to the app."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.screen import Screen

if TYPE_CHECKING:
    from runner.store.reader import StoreReader
    from tui.app import LatitudeApp

__all__ = ["BaseScreen"]


class BaseScreen(Screen[None]):
    """A full screen of the app; ``SCOPE`` names its actions in `tui.actions`."""

    SCOPE = ""

    @property
    def lapp(self) -> LatitudeApp:
        return cast("LatitudeApp", self.app)

    @property
    def reader(self) -> StoreReader:
        """Read-only store access; every call blocks, so call it from thread workers."""
        return self.lapp.reader

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
