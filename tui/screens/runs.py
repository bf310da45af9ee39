"""Runs: every run with protocol, date, status, conversation counts by status, tokens and cost.

Live runs update while they write: the list is read again every second while any run is
``running`` (every five seconds otherwise, to notice new runs).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from runner.store.records import RunSummary
from tui.actions import bindings
from tui.messages import RunsLoaded, StoreChanged
from tui.screens.base import BaseScreen
from tui.text import literal
from tui.widgets.table import Table
from tui.widgets.footer import RankedFooter
from tui.widgets.status_line import StatusLine

__all__ = ["RunsScreen"]

STATUS_STYLE = {"running": "bold yellow", "done": "green", "interrupted": "magenta", "failed": "bold red"}


RUN_COLUMNS = ("run", "protocol", "started (UTC)", "status", "convs", "done", "running", "pending", "error", "turns",
               "tokens", "cost")
"""Every column of the runs table, in display order."""

RUN_PRIORITY = ("run", "status", "done", "running", "error", "convs", "protocol", "started (UTC)", "pending", "cost",
                "turns", "tokens")
"""Which columns a narrow terminal keeps first: the run id always (it is what every command takes)."""


def visible_columns(width: int, rows: list[tuple[Text, ...]]) -> tuple[int, ...]:
    """Indexes of the columns that fit ``width`` cells, chosen by `RUN_PRIORITY`, each as wide as its
    content (plus the table's cell padding)."""
    need = [max([len(label), *(cells[i].cell_len for cells in rows)]) + 2 for i, label in enumerate(RUN_COLUMNS)]
    chosen: set[int] = set()
    used = 0
    for label in RUN_PRIORITY:
        i = RUN_COLUMNS.index(label)
        if used + need[i] <= width or not chosen:
            chosen.add(i)
            used += need[i]
    return tuple(sorted(chosen))


def run_cells(r: RunSummary, mask: Any = None) -> tuple[Text, ...]:
    """The table cells of one run (all `Text`: protocol names are never markup). ``mask`` (blind coding)
    hides model names in the protocol name and the simulated flag."""
    name = Text(literal(mask(f"{r.protocol_name} v{r.protocol_version}") if mask else
                        f"{r.protocol_name} v{r.protocol_version}"))
    if r.simulated and mask is None:
        name.append(" sim", style="magenta")
    by = r.by_status
    return (
        Text(r.id),
        name,
        Text(r.started_at.strftime("%Y-%m-%d %H:%M")),
        Text(r.status, style=STATUS_STYLE.get(r.status, "")),
        Text(f"{r.conversations:,}", justify="right"),
        Text(f"{by.get('done', 0):,}", justify="right", style="green" if by.get("done") else "dim"),
        Text(f"{by.get('running', 0):,}", justify="right", style="yellow" if by.get("running") else "dim"),
        Text(f"{by.get('pending', 0) + by.get('cancelled', 0):,}", justify="right",
             style="" if by.get("pending") or by.get("cancelled") else "dim"),
        Text(f"{by.get('error', 0):,}", justify="right", style="red" if by.get("error") else "dim"),
        Text(f"{r.turns:,}", justify="right"),
        Text(f"{r.tokens_in + r.tokens_out:,}", justify="right"),
        Text(f"${r.cost:,.4f}", justify="right"),
    )


class RunsScreen(BaseScreen):
    """The home screen: the runs in the store, newest first."""

    SCOPE = "runs"
    AUTO_FOCUS = "#runs"
    BINDINGS = bindings("runs")

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[RunSummary] = []
        self.loaded = False
        """True once the first read is shown (tests and the benchmark wait on it)."""
        self._ticks = 0
        self.shown_columns: tuple[int, ...] = ()
        """Indexes (in `RUN_COLUMNS`) of the columns shown at this width."""

    def compose(self) -> ComposeResult:
        yield Static(id="runs-title", classes="title")
        yield Table(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static(id="runs-empty", classes="empty")
        yield StatusLine()
        yield RankedFooter()

    def on_mount(self) -> None:
        self._fit([])
        self._title()
        self.refresh_runs()
        self.set_interval(1.0, self._tick)

    def _title(self) -> None:
        title = Text.assemble(("latitude", "bold"), "  runs", ("   coder: ", "dim"), (literal(self.lapp.coder), "bold"))
        if self.lapp.blind:
            title.append("  BLIND", style="bold reverse magenta")
            title.append(" (models, vendors and conditions hidden; U in a run unblinds it)", style="dim")
        self.query_one("#runs-title", Static).update(title)

    def _tick(self) -> None:
        self._ticks += 1
        if not self.is_current:
            return
        live = any(r.status == "running" for r in self.runs)
        if live or self._ticks % 5 == 0:
            self.refresh_runs()

    @on(StoreChanged)
    def _store_changed(self, message: StoreChanged) -> None:
        """A new run, a run's progress or its end: read the list again at once (no waiting for the tick)."""
        if self.is_current and message.what & {"runs", "messages"}:
            self.refresh_runs()

    @work(thread=True, exclusive=True, group="runs-load", exit_on_error=False)
    def refresh_runs(self) -> None:
        if not self.loaded:
            self.app.call_from_thread(self.start_loading, "#runs")
        self.post_message(RunsLoaded(self.reader.runs()))

    def _fit(self, rows: list[tuple[Text, ...]]) -> None:
        """Show the columns that fit (again, when the width or the content changed them)."""
        visible = visible_columns(self.app.size.width - 2, rows)
        if visible == self.shown_columns:
            return
        self.shown_columns = visible
        table = self.query_one("#runs", Table)
        table.clear(columns=True)
        table.add_columns(*(RUN_COLUMNS[i] for i in visible))

    def on_resize(self) -> None:
        if self.is_mounted and self.runs is not None:
            self._show(RunsLoaded(self.runs))

    @on(RunsLoaded)
    def _show(self, message: RunsLoaded) -> None:
        self.stop_loading("#runs")
        self.runs = message.runs
        cells = [run_cells(r, self.lapp.mask if self.lapp.blind else None) for r in message.runs]
        self._fit(cells)
        self.query_one("#runs", Table).sync([(r.id, tuple(c[i] for i in self.shown_columns))
                                             for r, c in zip(message.runs, cells, strict=True)])
        empty = self.query_one("#runs-empty", Static)
        empty.update(Text("No runs in this store yet. Start one with `latitude run PROTOCOL`.")
                     if not message.runs else "")
        empty.display = not message.runs
        self.loaded = True

    def selected_run(self) -> str | None:
        table = self.query_one("#runs", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None

    def action_open(self) -> None:
        run_id = self.selected_run()
        if run_id is None:
            return
        from tui.screens.conversations import ConversationsScreen

        self.lapp.current_run = run_id
        self.app.push_screen(ConversationsScreen(run_id))

    def action_refresh(self) -> None:
        self.refresh_runs()

    def action_tallies(self) -> None:
        self.lapp.action_tallies(self.selected_run())
