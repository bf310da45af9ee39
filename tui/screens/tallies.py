"""Tallies: code × model (or condition, vendor, protocol) with n, count, percent and the 95%
Wilson interval, for one coder (a person, the judge, the consensus of people, the built-in
codes), as a table and a bar chart with the intervals. Numbers come from
`runner.analysis.tally.tally_rows`, the same as `latitude tally`.
"""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.actions import bindings
from tui.messages import StoreChanged, TalliesLoaded
from tui.screens.base import BaseScreen
from tui.text import literal
from tui.widgets.interval_chart import Bar, IntervalChart
from tui.widgets.table import Table
from tui.widgets.footer import RankedFooter
from tui.widgets.status_line import StatusLine

__all__ = ["BREAKDOWNS", "TalliesScreen"]

BREAKDOWNS = ("model", "condition", "vendor", "protocol", "echo-band")


class TalliesScreen(BaseScreen):
    """Tallies of one run (or of every run)."""

    SCOPE = "tallies"
    AUTO_FOCUS = "#tallies"
    BINDINGS = bindings("tallies")

    def __init__(self, run_id: str | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.all_runs = run_id is None
        self.by = "model"
        self.coder: str | None = None
        """None: the default rule of `runner.analysis.tally` (consensus, else the one person, else the judge)."""
        self.coders: list[str] = []
        self.rows: list[Any] = []
        self.hidden = 0
        """Rows left out because the coder coded no conversation of that group (n = 0)."""
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Static(id="tallies-title", classes="title")
        with VerticalScroll(id="tallies-body"):
            yield Table(id="tallies", cursor_type="row", zebra_stripes=True)
            yield IntervalChart(id="tallies-chart")
        yield StatusLine()
        yield RankedFooter()

    def on_mount(self) -> None:
        self.query_one("#tallies", Table).add_columns("code", self.by, "n", "count", "%", "95% CI")
        self.load()

    def _render_title(self, error: str | None = None) -> None:
        scope = "all runs" if self.all_runs else f"run {self.run_id}"
        title = Text.assemble(("tallies", "bold"), f"   {scope}", ("  (a: switch)", "dim"),
                              "   by ", (self.by, "bold"), ("  (b)", "dim"),
                              "   coder ", (literal(self.coder or "auto"), "bold"), ("  (c)", "dim"))
        if self.hidden:
            title.append(f"   ({self.hidden} empty rows hidden: groups this coder did not code)", style="dim")
        if error:
            title.append(f"\n{error}", style="yellow")
        self.query_one("#tallies-title", Static).update(title)

    @work(thread=True, exclusive=True, group="tallies-load", exit_on_error=False)
    def load(self) -> None:
        from runner.analysis import tally

        self.app.call_from_thread(self.start_loading, "#tallies-body")
        run_ids = [r.id for r in self.reader.runs()] if self.all_runs else [self.run_id or ""]
        with self.reader.session() as s:
            try:
                available = tally.available_coders(s, run_ids)
            except tally.TallyError as exc:
                self.post_message(TalliesLoaded([], [], str(exc)))
                return
            people, judges = available["people"], available["judges"]
            coders = people + (["consensus"] if len(people) >= 2 else []) + judges + available["builtin"]
            try:
                rows = tally.tally_rows(s, run_ids, by=(self.by,), coder=self.coder)
            except tally.TallyError as exc:
                self.post_message(TalliesLoaded([], coders, str(exc)))
                return
            except ImportError as exc:
                self.post_message(TalliesLoaded([], coders, f"statistics need a library that is not installed: "
                                                            f"{exc.name}"))
                return
        self.post_message(TalliesLoaded(rows, coders))

    @on(TalliesLoaded)
    def _loaded(self, message: TalliesLoaded) -> None:
        self.stop_loading("#tallies-body")
        self.rows = message.rows
        self.coders = message.coders
        table = self.query_one("#tallies", Table)
        table.clear(columns=True)
        table.add_columns("code", self.by, "n", "count", "%", "95% CI")
        lines = []
        bars = []
        shown = [r for r in message.rows if r.n > 0]
        self.hidden = len(message.rows) - len(shown)
        for r in shown:
            group = r.group.get(self.by, "")
            pct = "—" if r.n == 0 or math.isnan(r.proportion) else f"{100 * r.proportion:.1f}"
            ci = "—" if r.n == 0 or math.isnan(r.low) else f"{100 * r.low:.1f} – {100 * r.high:.1f}"
            lines.append((f"{r.code}\x00{group}",
                          (Text(literal(r.code), style="bold cyan"), Text(literal(group)),
                           Text(str(r.n), justify="right"), Text(str(r.count), justify="right"),
                           Text(pct, justify="right"), Text(ci, justify="right"))))
            bars.append(Bar(r.code, group, r.proportion, r.low, r.high, r.n, r.count))
        table.sync(lines)
        self.query_one(IntervalChart).show(bars)
        self._render_title(message.error)
        self.loaded = True

    @on(StoreChanged)
    def _store_changed(self, message: StoreChanged) -> None:
        if self.is_current and "tags" in message.what:
            self.load()

    def action_cycle_by(self) -> None:
        self.by = BREAKDOWNS[(BREAKDOWNS.index(self.by) + 1) % len(BREAKDOWNS)]
        self._render_title()
        self.load()

    def action_cycle_coder(self) -> None:
        choices: list[str | None] = [None, *self.coders]
        i = choices.index(self.coder) if self.coder in choices else 0
        self.coder = choices[(i + 1) % len(choices)]
        self._render_title()
        self.load()

    def action_toggle_scope(self) -> None:
        if self.run_id is None:
            self.notify("Open a run first to tally it alone.", markup=False, timeout=2)
            return
        self.all_runs = not self.all_runs
        self._render_title()
        self.load()

    def action_back(self) -> None:
        self.app.pop_screen()
