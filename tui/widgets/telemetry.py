"""Per-turn telemetry of a transcript: latency, time to first token, tokens, cost, context fill, echo
(the share of the reply's content bigrams found in the prompts it read; — when undefined or not measured)."""

from __future__ import annotations

from rich.text import Text

from runner.store.tables import MessageRow
from tui.widgets.table import Table

__all__ = ["TelemetryPanel"]


def _num(v: float | int | None, fmt: str = "{:,.0f}") -> Text:
    return Text("—" if v is None else fmt.format(v), justify="right", style="dim" if v is None else "")


class TelemetryPanel(Table):
    """One row per generated message; the cursor follows the transcript's focused turn."""

    DEFAULT_CLASSES = "telemetry"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.can_focus = False

    def on_mount(self) -> None:
        self.add_columns("#", "ms", "ttft", "in", "out", "$", "ctx", "echo")

    def show(self, messages: list[MessageRow], window: int | None) -> None:
        """Fill the panel; ``window`` is the model's context window when known (for the fill %)."""
        rows = []
        for m in messages:
            if m.role != "assistant":
                continue
            context = (m.tokens_in or 0) + (m.tokens_out or 0)
            if window and context:
                fill = Text(f"{100 * context / window:.0f}%", justify="right",
                            style="red" if context / window > 0.8 else "")
            else:
                fill = Text(f"{context:,}" if context else "—", justify="right", style="dim")
            rows.append((str(m.idx), (
                Text(str(m.idx), style="dim"), _num(m.latency_ms), _num(m.ttft_ms), _num(m.tokens_in),
                _num(m.tokens_out), _num(m.cost, "{:.4f}"), fill, _num(m.echo, "{:.2f}"),
            )))
        self.sync(rows)

    def follow(self, idx: int) -> None:
        """Put the cursor on the row of message ``idx`` (or the nearest generated one before it)."""
        best = None
        for i, key in enumerate(self.rows):
            if key.value is not None and int(key.value) <= idx:
                best = i
        if best is not None:
            self.move_cursor(row=best, animate=False)
