"""The codebook at a glance: the digit keys 1-9 with their codes, lit when applied to the focused unit.

On a narrow terminal the bar wraps onto more lines (its height is ``auto``), between chips only:
a key is never separated from its code (the lines are laid out here, at the bar's width).
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from runner.store.tables import CodeRow
from tui.text import literal

__all__ = ["CodeBar", "wrap_chips"]


def wrap_chips(chips: list[Text], width: int, sep: str = " ") -> Text:
    """Join ``chips`` with ``sep``, starting a new line where the next chip would not fit ``width``."""
    out = Text(no_wrap=True, overflow="crop")
    used = 0
    for chip in chips:
        need = chip.cell_len + (len(sep) if used else 0)
        if used and used + need > width:
            out.append("\n")
            used = 0
            need = chip.cell_len
        elif used:
            out.append(sep)
        out.append_text(chip)
        used += need
    return out


class CodeBar(Static):
    """``1 curiosity  2 boredom …`` and the tagging mode; applied codes are shown reversed."""

    _last: tuple[str | None, list[CodeRow], set[str], str, str] | None = None

    def show(self, codebook: str | None, codes: list[CodeRow], applied: set[str], mode: str, coder: str) -> None:
        self._last = (codebook, codes, applied, mode, coder)
        chips: list[Text] = [Text(f" {mode} ", style="bold reverse magenta" if mode == "conversation"
                                  else "bold reverse blue")]
        if not codes:
            chips.append(Text("no codebook yet — t: create a code, F3: codebook", style="dim"))
        for c in codes[:9]:
            on = c.name in applied
            chip = Text()
            chip.append(f"{c.position + 1}", style="bold reverse cyan" if on else "bold")
            chip.append(f" {literal(c.name)} ", style="reverse cyan" if on else "")
            chips.append(chip)
        extra = sorted(applied - {c.name for c in codes[:9]})
        if extra:
            chips.append(Text("+ " + ", ".join(literal(e) for e in extra), style="cyan"))
        chips.append(Text(f" {literal(coder)}" + (f" @ {literal(codebook)}" if codebook else ""), style="dim"))
        width = (self.content_region.width or self.app.size.width - 2) if self.is_mounted else 78
        self.update(wrap_chips(chips, max(20, width)))

    def on_resize(self) -> None:
        if self._last is not None:
            self.show(*self._last)
