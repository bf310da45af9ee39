"""A horizontal bar chart of proportions with their 95% intervals, drawn with text.

    curiosity  gpt-4o      ██████████████━━━┃━━━━━┫          45%  [30–61]  n=40

The bar runs to the proportion; the interval is the heavy line from ``┣`` to ``┫``
(drawn over the bar where they overlap). Scale: 0 to 100% across the bar width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from tui.text import literal

__all__ = ["Bar", "IntervalChart", "draw_bar"]


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    group: str
    p: float
    low: float
    high: float
    n: int
    count: int


def draw_bar(p: float, low: float, high: float, width: int) -> Text:
    """One bar of ``width`` cells: ``█`` up to p, the interval as ``┣━━┫`` (over the bar in reverse)."""
    out = Text()
    if width <= 0:
        return out
    if any(math.isnan(v) for v in (p, low, high)):
        return Text(" " * width)
    pos = round(p * width)
    lo = min(width - 1, max(0, math.floor(low * width)))
    hi = min(width - 1, max(0, math.ceil(high * width) - 1))
    for i in range(width):
        in_bar = i < pos
        if lo <= i <= hi:
            ch = "┣" if i == lo else "┫" if i == hi else "━"
            if lo == hi:
                ch = "┃"
            out.append(ch, style="bold yellow on blue" if in_bar else "bold yellow")
        else:
            out.append("█" if in_bar else " ", style="blue" if in_bar else "")
    return out


class IntervalChart(Static):
    """Bars for every (code, group) row, grouped by code."""

    def show(self, bars: Sequence[Bar], width: int = 50) -> None:
        if not bars:
            self.update(Text("nothing to chart", style="dim"))
            return
        label_w = min(24, max(len(literal(b.label)) for b in bars))
        group_w = min(20, max(len(literal(b.group)) for b in bars))
        out = Text()
        last = None
        out.append(" " * (label_w + group_w + 2) + "0%" + " " * (width - 6) + "100%\n", style="dim")
        for b in bars:
            label = literal(b.label) if b.label != last else ""
            last = b.label
            out.append(f"{label[:label_w]:<{label_w}} ", style="bold cyan")
            out.append(f"{literal(b.group)[:group_w]:<{group_w}} ")
            out.append_text(draw_bar(b.p, b.low, b.high, width))
            if b.n:
                out.append(f" {100 * b.p:4.0f}%  [{100 * b.low:.0f}–{100 * b.high:.0f}]  n={b.n}\n")
            else:
                out.append("   —   n=0\n", style="dim")
        self.update(out)
