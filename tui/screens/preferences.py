"""Preferences: per model, the options ranked by Bradley–Terry utility with their 95% intervals
drawn as bars (the opt-out at 0); Enter on an option lists its comparisons, Enter on a comparison
opens its transcript; `u` lists the unclear, refused and unanswered comparisons to review their
classification. Numbers come from `runner.analysis.prefs`, the same as `latitude prefs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import Footer, Static

from tui.actions import bindings
from tui.screens.base import BaseScreen
from tui.text import literal
from tui.widgets.table import Table

__all__ = ["PreferencesScreen", "interval_bar"]

UNANSWERED = ("unclear", "refused", "no_reply")
"""Answers the `u` filter lists: the ones a person may want to re-read."""


def interval_bar(value: float, low: float, high: float, lo: float, hi: float, width: int = 28) -> Text:
    """A one-line interval bar: `─` over the 95% interval, `●` at the estimate, `│` at 0, scaled to [lo, hi]."""
    span = (hi - lo) or 1.0

    def at(x: float) -> int:
        return max(0, min(width - 1, round((x - lo) / span * (width - 1))))

    cells = [" "] * width
    for i in range(at(low), at(high) + 1):
        cells[i] = "─"
    if lo <= 0 <= hi:
        cells[at(0.0)] = "│"
    cells[at(value)] = "●"
    return Text("".join(cells), style="cyan")


@dataclass
class PreferencesLoaded(Message, bubble=False):
    """The report and the records it was fitted from (from the load worker)."""

    report: Any
    records: list[Any]
    error: str | None = None


class PreferencesScreen(BaseScreen):
    """Utilities of one run, option by option, down to the transcripts behind them."""

    SCOPE = "preferences"
    AUTO_FOCUS = "#preferences"
    BINDINGS = bindings("preferences")

    def __init__(self, run_id: str | None) -> None:
        super().__init__()
        self.run_id = run_id
        self.report: Any = None
        self.records: list[Any] = []
        self.mode = "options"
        """`options` (the ranking) or `comparisons` (of one option, or the unanswered ones)."""
        self.option: tuple[str, str] | None = None
        """(model, option) whose comparisons are listed."""
        self.unclear_only = False
        self.loaded = False
        self.groups: dict[str, str] = {}
        """While blind: model → ``group N`` (an order seeded by the run and the coder)."""

    def compose(self) -> ComposeResult:
        yield Static(id="preferences-title", classes="title")
        yield Table(id="preferences", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self._render_title()
        self.load()

    def _render_title(self, error: str | None = None) -> None:
        title = Text.assemble(("preferences", "bold"), f"   run {literal(self.run_id or '-')}")
        if self.mode == "comparisons" and self.option:
            group = self.groups.get(self.option[0], self.option[0])
            title.append(f"   comparisons of {literal(self.option[1])} ({literal(group)})", style="bold")
        elif self.mode == "comparisons":
            title.append("   unclear, refused and unanswered comparisons", style="bold")
        title.append("   (enter: open, u: unclear only, esc: back)", style="dim")
        if self.lapp.is_blind_to(self.run_id):
            title.append("  BLIND: models are numbered groups", style="bold magenta")
        if error:
            title.append(f"\n{error}", style="yellow")
        self.query_one("#preferences-title", Static).update(title)

    @work(thread=True, exclusive=True, group="preferences-load", exit_on_error=False)
    def load(self) -> None:
        from runner.analysis import prefs

        run_id = self.run_id
        self.lapp.blind_view(run_id)  # whether this coder is blind to the run (read once)
        with self.reader.session() as s:
            if run_id is None:
                self.post_message(PreferencesLoaded(None, [], "open a run first (no run selected)"))
                return
            try:
                records, options = prefs.load_choices(s, [run_id])
            except LookupError as exc:
                self.post_message(PreferencesLoaded(None, [], str(exc)))
                return
        if not records:
            self.post_message(PreferencesLoaded(None, [], f"run {run_id} has no choices"))
            return
        self.post_message(PreferencesLoaded(prefs.analyse(records, options, run_ids=[run_id]), records))

    @on(PreferencesLoaded)
    def _loaded(self, message: PreferencesLoaded) -> None:
        self.report, self.records = message.report, message.records
        self.groups = {}
        if self.lapp.is_blind_to(self.run_id) and self.report is not None:
            from runner.rigour.blind import blind_order, blind_seed

            models = {g.group for g in self.report.groups} | {r.model for r in self.records}
            order = blind_order(models, blind_seed(f"{self.run_id}:preferences", self.lapp.coder))
            self.groups = {m: f"group {i + 1}" for i, m in enumerate(order)}
        self.loaded = True
        self._show()
        self._render_title(message.error)

    def _show(self) -> None:
        table = self.query_one("#preferences", Table)
        table.clear(columns=True)
        if self.mode == "options":
            table.add_columns("model", "rank", "option", "utility", "95% CI", "interval (│ = opt-out)", "won")
            if self.report is None:
                return
            every = [u for g in self.report.groups for u in g.bt]
            lo = min((u.low for u in every), default=-1.0)
            hi = max((u.high for u in every), default=1.0)
            rows = []
            for g in self.report.groups:
                for rank, u in enumerate(g.ranked(), start=1):
                    opt_out = self.report.options.get(u.option, {}).get("opt_out")
                    rows.append((f"{g.group}\x00{u.option}", (
                        Text(literal(self.groups.get(g.group, g.group))), Text(str(rank), justify="right"),
                        Text(literal(u.option) + (" (opt-out)" if opt_out else ""), style="bold" if opt_out else ""),
                        Text(f"{u.value:+.2f}", justify="right"), Text(f"{u.low:+.2f} – {u.high:+.2f}"),
                        interval_bar(u.value, u.low, u.high, lo, hi), Text(f"{u.wins}/{u.n}", justify="right"))))
            table.sync(rows)
            return
        table.add_columns("model", "shown first", "shown second", "answer", "chosen", "evidence")
        rows = []
        for r in self.shown_comparisons():
            rows.append((r.conversation_id, (
                Text(literal(self.groups.get(r.model, r.model))), Text(literal(r.option_a)), Text(literal(r.option_b)),
                Text(r.answer, style="yellow" if r.answer in UNANSWERED else ""), Text(literal(r.chosen or "-")),
                Text(literal(self.lapp.mask(r.evidence or "", self.run_id).replace("\n", " ")[:60])))))
        table.sync(rows)

    def shown_comparisons(self) -> list[Any]:
        """The comparisons the table lists now."""
        out = self.records
        if self.option is not None:
            model, option = self.option
            out = [r for r in out if r.model == model and option in (r.option_a, r.option_b)]
        if self.unclear_only:
            out = [r for r in out if r.answer in UNANSWERED]
        return out

    def _selected(self) -> str | None:
        table = self.query_one("#preferences", Table)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None

    def action_open(self) -> None:
        key = self._selected()
        if key is None:
            return
        if self.mode == "options":
            model, _, option = key.partition("\x00")
            self.mode, self.option = "comparisons", (model, option)
            self._show()
            self._render_title()
            return
        from runner.store.reader import ConversationFilter
        from tui.screens.transcript import TranscriptScreen

        self.app.push_screen(TranscriptScreen(self.run_id or "", ConversationFilter(), key))

    def blind_changed(self) -> None:
        """The coder unblinded the run: the groups by their names again."""
        self.load()

    def action_unclear(self) -> None:
        self.unclear_only = not self.unclear_only
        if self.unclear_only and self.mode == "options":
            self.mode, self.option = "comparisons", None
        elif not self.unclear_only and self.option is None:
            self.mode = "options"
        self._show()
        self._render_title()

    def action_back(self) -> None:
        if self.mode == "comparisons":
            self.mode, self.option, self.unclear_only = "options", None, False
            self._show()
            self._render_title()
            return
        self.app.pop_screen()
