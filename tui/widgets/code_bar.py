"""The codebook at a glance: the digit keys 1-9 with their codes, lit when applied to the focused unit.

The bar wraps onto more lines on a narrow terminal (its height is ``auto``); each chip is kept
whole (no-break spaces inside it), so a key is never separated from its code.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from runner.store.tables import CodeRow
from tui.text import literal

__all__ = ["CodeBar"]

NBSP = "\u00a0"


class CodeBar(Static):
    """``1 curiosity  2 boredom …`` and the tagging mode; applied codes are shown reversed."""

    def show(self, codebook: str | None, codes: list[CodeRow], applied: set[str], mode: str, coder: str) -> None:
        bar = Text()
        bar.append(f" {mode} ", style="bold reverse magenta" if mode == "conversation" else "bold reverse blue")
        bar.append(" ")
        if not codes:
            bar.append("no codebook yet — t: create a code, F3: codebook", style="dim")
        for c in codes[:9]:
            on = c.name in applied
            bar.append(f"{c.position + 1}", style="bold reverse cyan" if on else "bold")
            bar.append(f"\u00a0{literal(c.name).replace(' ', NBSP)}\u00a0", style="reverse cyan" if on else "")
            bar.append(" ")
        extra = sorted(applied - {c.name for c in codes[:9]})
        if extra:
            bar.append("+ " + ", ".join(literal(e) for e in extra), style="cyan")
        who = literal(coder).replace(" ", NBSP)
        bar.append(f"  {who}" + (f"{NBSP}@{NBSP}{literal(codebook).replace(' ', NBSP)}" if codebook else ""),
                   style="dim")
        self.update(bar)
