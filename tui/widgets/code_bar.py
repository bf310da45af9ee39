"""The codebook at a glance: the digit keys 1-9 with their codes, lit when applied to the focused unit."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from runner.store.tables import CodeRow
from tui.text import literal

__all__ = ["CodeBar"]


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
            bar.append(f" {literal(c.name)} ", style="reverse cyan" if on else "")
            bar.append(" ")
        extra = sorted(applied - {c.name for c in codes[:9]})
        if extra:
            bar.append("+ " + ", ".join(literal(e) for e in extra), style="cyan")
        bar.append(f"   {literal(coder)}", style="dim")
        if codebook:
            bar.append(f" @ {literal(codebook)}", style="dim")
        self.update(bar)
