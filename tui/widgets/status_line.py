"""One line that says what just happened, replaced by the next message (no toasts piling up
over the text); the whole session's messages stay in `LatitudeApp.status_log` (ctrl+l)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

__all__ = ["SEVERITY_STYLE", "StatusLine"]

SEVERITY_STYLE = {"information": "", "warning": "bold yellow", "error": "bold red"}


class StatusLine(Static):
    """The latest status message of the screen it is on."""

    DEFAULT_CLASSES = "status-line"

    def __init__(self, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.message = ""
        """The text shown (plain), for tests."""

    def say(self, message: str, severity: str = "information", count: int = 1) -> None:
        """Show ``message`` (plain text, never markup); ``count`` > 1 when it repeats."""
        self.message = message
        line = Text("› ", style="dim")
        line.append(message, style=SEVERITY_STYLE.get(severity, ""))
        if count > 1:
            line.append(f"  (×{count})", style="dim")
        self.update(line)
