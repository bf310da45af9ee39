"""What every latitude screen shares: its action scope, typed access to the app."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.screen import Screen

if TYPE_CHECKING:
    from runner.store.reader import StoreReader
    from tui.app import LatitudeApp

__all__ = ["BaseScreen"]


LOADING_DELAY = 0.2
"""Seconds a load may take before its widget shows a loading indicator (quicker loads never flicker)."""


class BaseScreen(Screen[None]):
    """A full screen of the app; ``SCOPE`` names its actions in `tui.actions`."""

    SCOPE = ""

    def start_loading(self, selector: str) -> None:
        """Show a loading indicator on ``selector`` if the load is not done within `LOADING_DELAY`
        (UI thread; from a worker use ``app.call_from_thread``)."""
        timers = self.__dict__.setdefault("_loading_timers", {})
        if selector in timers:
            return

        def show() -> None:
            if selector in timers:
                for widget in self.query(selector):
                    widget.loading = True

        timers[selector] = self.set_timer(LOADING_DELAY, show)

    def stop_loading(self, selector: str) -> None:
        timer = self.__dict__.setdefault("_loading_timers", {}).pop(selector, None)
        if timer is not None:
            timer.stop()
        for widget in self.query(selector):
            widget.loading = False

    def is_loading(self, selector: str) -> bool:
        """True while ``selector`` shows the loading indicator (tests)."""
        return any(w.loading for w in self.query(selector))

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
