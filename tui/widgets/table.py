"""A `DataTable` whose Enter belongs to the screen.

The screen's Enter binding is an ordinary (non-priority) one, so it runs after the keys
queued before it: ``↓ ↓ ↓ Enter`` typed quickly opens the fourth row, never the first (a
priority binding would jump the queue of the focused table).
"""

from __future__ import annotations

import time
from typing import Any

from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable

from tui.actions import bindings

__all__ = ["Table"]


class Table(DataTable[Any], inherit_bindings=False):
    """`DataTable` without its own Enter (select) binding; Home/End and g/G jump to the first and
    last row (DataTable's Home/End scroll sideways); every other key as usual."""

    BINDINGS = [b for b in DataTable.BINDINGS if getattr(b, "key", None) not in ("enter", "home", "end")] + \
        bindings("list")

    def action_jump(self, row: int) -> None:
        if self.row_count:
            self.move_cursor(row=row if row >= 0 else self.row_count + row, animate=False)

    version = 0
    """Bumped by every `clear`: which set of rows is meant to be on screen."""
    painted_version = -1
    """The `version` last painted."""
    painted_at = 0.0
    """`time.perf_counter()` when `version` was first painted (what a person sees, not what was asked)."""

    def clear(self, columns: bool = False) -> Any:
        self.version += 1
        return super().clear(columns)

    def render_lines(self, crop: Region) -> list[Strip]:
        lines = super().render_lines(crop)
        if self.painted_version != self.version:
            self.painted_version = self.version
            self.painted_at = time.perf_counter()
        return lines

    def sync(self, rows: list[tuple[str, tuple[Any, ...]]], height: int = 1) -> None:
        """Show ``rows`` (key, cells): cells are updated in place when the keys are the same as shown
        (a live refresh keeps the cursor, the scroll position and the column widths); otherwise the
        rows are replaced, keeping the cursor on the same key if it is still there."""
        keys = [str(k.value) for k in self.rows]
        if keys == [k for k, _ in rows]:
            for i, (_key, cells) in enumerate(rows):
                old = self.get_row_at(i)
                for j, cell in enumerate(cells):
                    if str(old[j]) != str(cell) or getattr(old[j], "style", None) != getattr(cell, "style", None):
                        self.update_cell_at((i, j), cell, update_width=True)
            return
        keep = keys[self.cursor_row] if keys and 0 <= self.cursor_row < len(keys) else None
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key, height=height)
        self._measure([cells for _, cells in rows])
        if keep is not None and keep in {k for k, _ in rows}:
            self.move_cursor(row=self.get_row_index(keep), animate=False)

    def _measure(self, rows: list[tuple[Any, ...]]) -> None:
        """Set the auto column widths now. DataTable measures new rows when idle; a repaint before
        that (another widget changing layout in the same handler) would cache rows cropped to the
        header widths for good."""
        for i, column in enumerate(self.ordered_columns):
            if column.auto_width:
                widths = [getattr(cells[i], "cell_len", None) or len(str(cells[i])) for cells in rows if i < len(cells)]
                column.content_width = max([column.content_width, *widths])
