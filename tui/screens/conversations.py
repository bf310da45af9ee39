"""Conversations of a run: a table with filters on every column and full-text search.

The list is paged by key (``(seq, id)``): the first page is read alone, the next ones
when the cursor comes near the end, so a 100,000-conversation run opens as fast as a small
one. The count arrives separately (it may take longer on a broad search).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Input, Static

from runner.store.reader import ConversationFilter, ConversationSummary, PageKey
from tui.actions import bindings
from tui.messages import CountLoaded, FacetsLoaded, PageLoaded, RunsLoaded
from tui.screens.base import BaseScreen
from tui.text import literal
from tui.widgets.table import Table

__all__ = ["COLUMNS", "ConversationsScreen", "cell_text", "filter_chips", "offer_cell", "row_line"]

PAGE = 100
"""Rows read per page."""

COLUMNS: tuple[tuple[str, str | None, int], ...] = (
    ("#", None, 5), ("model", "model", 18), ("vendor", "vendor", 10), ("condition", "condition", 11),
    ("rep", "replicate", 3), ("turns", None, 5), ("stop", "stop_reason", 14), ("status", "status", 9),
    ("offers", "offer_outcome", 8), ("tags", "tag", 15), ("cost", None, 8),
)
"""Column label, the filter field it maps to, and its width (a row fits 120 terminal columns)."""

RIGHT = {"#", "rep", "turns", "cost"}
"""Right-aligned columns."""

SEP = " "


def _fit(cell: Text, width: int, right: bool) -> Text:
    cell = cell.copy()
    cell.truncate(width, overflow="ellipsis")
    pad = Text(" " * (width - cell.cell_len))
    return pad + cell if right else cell + pad


def row_line(cells: dict[str, Text]) -> Text:
    """One table row as a single line of fixed-width fields.

    The list is a one-column table of these lines: a 40-line screen then renders 40 cells
    instead of 440, which keeps a repaint of a new page well under the search budget.
    """
    return Text(SEP).join(_fit(cells.get(label, Text()), width, label in RIGHT) for label, _, width in COLUMNS)


def cell_text(line: str, label: str) -> str:
    """The text of column ``label`` in a row's plain text (tests and the filter-by-value key)."""
    start = 0
    for name, _, width in COLUMNS:
        if name == label:
            return line[start:start + width].strip()
        start += width + len(SEP)
    raise KeyError(label)


HEADER = row_line({label: Text(label, style="bold") for label, _, _ in COLUMNS})

OFFER_MARKS = {"accept": ("✓", "green"), "decline": ("✗", "red"), "unclear": ("?", "yellow")}
STATUS_STYLE = {"done": "", "running": "yellow", "pending": "dim", "error": "red", "cancelled": "magenta"}


def offer_cell(offers: dict[str, int]) -> Text:
    out = Text()
    for outcome in ("accept", "decline", "unclear"):
        n = offers.get(outcome)
        if n:
            mark, style = OFFER_MARKS[outcome]
            out.append(f"{mark}{n} ", style=style)
    return out


def filter_chips(flt: ConversationFilter) -> Text:
    chips = Text()
    for name, value in flt.active().items():
        label = "search" if name == "search" else name.replace("_", " ")
        chips.append(f" {label}: ", style="bold")
        chips.append(literal(str(value)))
        chips.append("  ")
    return chips


def row_cells(r: ConversationSummary) -> tuple[Text]:
    model = Text(literal(r.model))
    if r.simulated:
        model = Text(literal(r.model)[:14]) + Text(" sim", style="magenta")
    cells = {
        "#": Text(str(r.seq), style="dim"), "model": model, "vendor": Text(literal(r.vendor)),
        "condition": Text(literal(r.condition)), "rep": Text(str(r.replicate)), "turns": Text(str(r.turns)),
        "stop": Text(literal(r.stop_reason or "—"), style="red" if (r.stop_reason or "").startswith("error") else ""),
        "status": Text(r.status, style=STATUS_STYLE.get(r.status, "")), "offers": offer_cell(r.offers),
        "tags": Text(literal(", ".join(r.tags)), style="cyan"), "cost": Text(f"${r.cost:.4f}"),
    }
    return (row_line(cells),)


class ConversationsScreen(BaseScreen):
    """The conversations of one run, filtered and searched."""

    SCOPE = "conversations"
    BINDINGS = bindings("conversations")
    AUTO_FOCUS = "#conversations"

    def __init__(self, run_id: str, flt: ConversationFilter | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.filter = flt or ConversationFilter()
        """The filters and search in force; the transcript's next/previous follow it."""
        self.generation = 0
        """Bumped on every filter change; pages of an older generation are dropped."""
        self.next_key: PageKey | None = None
        self.loading_more = False
        self.rows: dict[str, ConversationSummary] = {}
        self.count: int | None = None
        self.total: int | None = None
        self.marked: str | None = None
        """A conversation marked for comparison."""
        self._shown_version: int | None = None
        self.run_status: str | None = None
        self._focus_table = False
        self.protocol = ""

    def compose(self) -> ComposeResult:
        yield Static(id="conversations-title", classes="title")
        yield Static(id="conversations-filters", classes="filters")
        yield Input(placeholder="search messages: words, \"a phrase\", prefix*, OR, -exclude  (Enter: search, "
                                "Esc: close)", id="search")
        yield Table(id="conversations", cursor_type="row", zebra_stripes=True)
        yield Static(id="conversations-empty", classes="empty")
        yield Footer()

    def on_mount(self) -> None:
        if not getattr(self.app, "cursor_blink", True):
            self.query_one("#search", Input).cursor_blink = False
        table = self.query_one("#conversations", DataTable)
        table.add_column(HEADER, key="row", width=HEADER.cell_len)
        self.reload()
        self.load_run()
        self.set_interval(2.0, self._tick)

    # ---------------------------------------------------------------- loading

    def reload(self) -> None:
        """Start over with the current filter: first page, then the count.

        Nothing on screen changes until the first page is here, and the count is read after it:
        the page's query never waits for the UI to paint an intermediate state, nor shares the
        interpreter with the count (on a broad search the count takes longer than the page).
        """
        self.generation += 1
        self.next_key = None
        self.loading_more = False
        self.count = None
        self.load_first(self.generation, self.filter)

    @work(thread=True, exclusive=True, group="conversations-load", exit_on_error=False)
    def load_first(self, generation: int, flt: ConversationFilter) -> None:
        page = self.reader.page(self.run_id, flt, limit=PAGE)
        self.post_message(PageLoaded(generation, page, first=True))

    @work(thread=True, exclusive=True, group="conversations-count", exit_on_error=False)
    def load_count(self, generation: int, flt: ConversationFilter) -> None:
        count = self.reader.count(self.run_id, flt)
        total = count if not flt.active() else self.reader.count(self.run_id)
        self.post_message(CountLoaded(generation, count, total))

    @work(thread=True, exclusive=True, group="conversations-more", exit_on_error=False)
    def load_more(self, generation: int, flt: ConversationFilter, after: PageKey) -> None:
        page = self.reader.page(self.run_id, flt, after=after, limit=PAGE)
        self.post_message(PageLoaded(generation, page, first=False))

    @work(thread=True, exclusive=True, group="conversations-refresh", exit_on_error=False)
    def load_refresh(self, generation: int, flt: ConversationFilter, rows: int) -> None:
        page = self.reader.page(self.run_id, flt, limit=max(PAGE, min(rows, 2000)))
        self.post_message(PageLoaded(generation, page, first=True, replace=True))
        self.post_message(CountLoaded(generation, self.reader.count(self.run_id, flt), self.reader.count(self.run_id)))
        self.post_message(RunsLoaded([r for r in [self.reader.run(self.run_id)] if r is not None]))

    @work(thread=True, exclusive=True, group="conversations-run", exit_on_error=False)
    def load_run(self) -> None:
        run = self.reader.run(self.run_id)
        self.post_message(RunsLoaded([run] if run is not None else []))

    @on(RunsLoaded)
    def _run_loaded(self, message: RunsLoaded) -> None:
        if message.runs:
            r = message.runs[0]
            self.run_status = r.status
            self.protocol = f"{r.protocol_name} v{r.protocol_version}"
            self._render_title()

    def _tick(self) -> None:
        if self.run_status == "running" and self.is_current:
            self.load_refresh(self.generation, self.filter, len(self.rows))

    @on(PageLoaded)
    def _page_loaded(self, message: PageLoaded) -> None:
        if message.generation != self.generation:
            return
        table = self.query_one("#conversations", Table)
        if message.first and not message.replace:
            self.load_count(self.generation, self.filter)
            self._render_title()
            if self._focus_table:
                self._focus_table = False
                table.focus()
        if message.replace:
            # a live refresh of the rows shown (and the next ones, if any): update in place
            self.rows = {r.id: r for r in message.page.rows}
            table.sync([(r.id, row_cells(r)) for r in message.page.rows])
        else:
            if message.first:
                table.clear()
                self.rows = {}
            for r in message.page.rows:
                if r.id in self.rows:
                    continue
                self.rows[r.id] = r
                table.add_row(*row_cells(r), key=r.id)
        self.next_key = message.page.next_key
        self.loading_more = False
        if message.first and not message.replace:
            self._shown_version = table.version
        empty = self.query_one("#conversations-empty", Static)
        empty.display = not self.rows
        empty.update(Text("No conversation matches these filters." if self.filter.active()
                          else "This run has no conversations yet.") if not self.rows else "")

    @property
    def shown_at(self) -> float:
        """`time.perf_counter()` when the first page of the current filter was painted, else 0
        (tests and the benchmark wait on it)."""
        table = self.query_one("#conversations", Table)
        return table.painted_at if self._shown_version is not None and table.painted_version >= \
            self._shown_version else 0.0

    @on(CountLoaded)
    def _count_loaded(self, message: CountLoaded) -> None:
        if message.generation != self.generation:
            return
        self.count, self.total = message.count, message.total
        self._render_title()

    def _render_title(self) -> None:
        title = Text.assemble(("run ", "dim"), (self.run_id, "bold"), "  ", literal(self.protocol))
        if self.run_status:
            title.append(f"  {self.run_status}", style="yellow" if self.run_status == "running" else "dim")
        if self.count is None:
            title.append("   counting…", style="dim")
        elif self.filter.active():
            title.append(f"   {self.count:,} of {self.total:,} conversations", style="bold")
        else:
            title.append(f"   {self.count:,} conversations", style="bold")
        if self.marked:
            title.append(f"   marked for compare: {self.marked}", style="magenta")
        self.query_one("#conversations-title", Static).update(title)
        chips = self.query_one("#conversations-filters", Static)
        chips.update(filter_chips(self.filter))
        chips.display = bool(self.filter.active())

    @on(DataTable.RowHighlighted, "#conversations")
    def _near_end(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if self.next_key is not None and not self.loading_more and event.cursor_row >= table.row_count - 20:
            self.loading_more = True
            self.load_more(self.generation, self.filter, self.next_key)

    # ---------------------------------------------------------------- actions

    def selected_id(self) -> str | None:
        table = self.query_one("#conversations", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None

    def set_filter(self, flt: ConversationFilter) -> None:
        self.filter = flt
        self.reload()

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        self._apply_search(event.value)

    def action_open(self) -> None:
        cid = self.selected_id()
        if cid is None:
            return
        from tui.screens.transcript import TranscriptScreen

        self.app.push_screen(TranscriptScreen(self.run_id, self.filter, cid), self._returned)

    def _returned(self, conversation_id: str | None) -> None:
        table = self.query_one("#conversations", DataTable)
        self.load_refresh(self.generation, self.filter, len(self.rows))
        if conversation_id and conversation_id in self.rows:
            table.move_cursor(row=table.get_row_index(conversation_id), animate=False)
        table.focus()

    def _apply_search(self, text: str) -> None:
        text = text.strip()
        if (text or None) != self.filter.search:
            self._focus_table = True  # with the results, in one repaint
            self.set_filter(self.filter.with_(search=text or None))
        else:
            self.query_one("#conversations", DataTable).focus()
        if not text:
            self.query_one("#search", Input).display = False

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.display = True
        search.value = self.filter.search or ""
        search.focus()

    def action_back(self) -> None:
        search = self.query_one("#search", Input)
        if search.has_focus:
            search.display = bool(self.filter.search)
            self.query_one("#conversations", DataTable).focus()
            return
        self.app.pop_screen()

    def action_filter(self) -> None:
        self.load_facets()

    @work(thread=True, exclusive=True, group="conversations-facets", exit_on_error=False)
    def load_facets(self) -> None:
        self.post_message(FacetsLoaded(self.reader.facets(self.run_id)))

    @on(FacetsLoaded)
    def _facets_loaded(self, message: FacetsLoaded) -> None:
        from tui.screens.modals import FilterModal

        def done(result: Any) -> None:
            if result is not None:
                self.set_filter(result.filter)

        self.app.push_screen(FilterModal(message.facets, self.filter), done)

    def action_filter_cell(self) -> None:
        cid = self.selected_id()
        if cid is None or cid not in self.rows:
            return
        r = self.rows[cid]
        choices: list[tuple[str, Any]] = [
            ("model", r.model.split(" ↔ ")[0]), ("vendor", r.vendor), ("condition", r.condition),
            ("replicate", r.replicate), ("stop_reason", r.stop_reason or "(none)"), ("status", r.status),
            ("kind", r.kind),
        ]
        choices += [("offer_outcome", o) for o in r.offers]
        choices += [("tag", t) for t in r.tags]
        from tui.screens.modals import ChoiceModal

        def done(result: Any) -> None:
            if result is not None:
                name, value = choices[result.index]
                self.set_filter(self.filter.with_(**{name: value}))

        labels = [Text.assemble((f"{name.replace('_', ' ')} = ", "bold"), literal(str(value)))
                  for name, value in choices]
        self.app.push_screen(ChoiceModal("Keep only conversations with…", labels), done)

    def action_clear_filters(self) -> None:
        search = self.query_one("#search", Input)
        if search.has_focus:
            search.action_delete_left()
            return
        if self.filter.active():
            search.value = ""
            search.display = False
            self.set_filter(ConversationFilter())

    def action_refresh(self) -> None:
        self.reload()

    def action_mark(self) -> None:
        cid = self.selected_id()
        if cid is None:
            return
        if self.marked is None or self.marked == cid:
            self.marked = None if self.marked == cid else cid
            self._render_title()
            if self.marked:
                self.notify("Marked. Press c on another conversation to compare them.", markup=False)
            return
        from tui.screens.compare import CompareScreen

        left, self.marked = self.marked, None
        self._render_title()
        self.app.push_screen(CompareScreen(left, cid))
