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
from textual.widgets import DataTable, Input, Static

from runner.store import search
from runner.store.reader import ConversationFilter, ConversationSummary, PageKey
from tui.actions import bindings
from tui.messages import CountLoaded, FacetsLoaded, PageLoaded, RunsLoaded, StoreChanged
from tui.screens.base import BaseScreen
from tui.text import highlight, literal, short
from tui.widgets.table import Table
from tui.widgets.footer import RankedFooter
from tui.widgets.status_line import StatusLine

__all__ = ["COLUMNS", "ConversationsScreen", "cell_text", "filter_chips", "fit_columns", "offer_cell", "row_line"]

PAGE = 100
"""Rows read per page."""

COLUMNS: tuple[tuple[str, str | None, int], ...] = (
    ("#", None, 5), ("model", "model", 18), ("vendor", "vendor", 10), ("condition", "condition", 11),
    ("rep", "replicate", 3), ("turns", None, 5), ("echo", None, 4), ("stop", "stop_reason", 14), ("status", "status", 9),
    ("offers", "offer_outcome", 8), ("tags", "tag", 15), ("cost", None, 8),
)
"""Column label, the filter field it maps to, and its usual width (a row of them fits 120 columns)."""

PRIORITY = ("#", "model", "condition", "stop", "status", "tags", "echo", "rep", "turns", "offers", "vendor", "cost")
"""Which columns a narrow terminal keeps first (the row number always: it names the row)."""

MAX_WIDTH = {"model": 32, "condition": 32, "stop": 24, "tags": 40, "vendor": 16, "offers": 12}
"""How wide a column may grow to fit its content when there is room."""

RIGHT = {"#", "rep", "turns", "echo", "cost"}
"""Right-aligned columns."""

SEP = " "

Layout = tuple[tuple[str, int], ...]
"""The columns shown, in order, with their widths."""

DEFAULT_LAYOUT: Layout = tuple((label, width) for label, _, width in COLUMNS)


BLIND_HIDDEN = frozenset({"model", "vendor", "condition", "rep", "cost", "tags"})
"""Columns a blind coder does not see (the cost would tell the vendor; other coders' and the judge's
tags would tell both what they saw and, where a code goes with one model, which model it is);
``#`` shows the neutral label."""


def fit_columns(available: int, content: dict[str, int] | None = None, hide: frozenset[str] = frozenset()) -> Layout:
    """The columns that fit ``available`` cells: chosen by `PRIORITY`, each at its usual width (or
    its content's, when narrower); the room left goes to the columns whose content was cut.
    Columns in ``hide`` are never shown (blind coding)."""
    content = content or {}
    usual = {label: width for label, _, width in COLUMNS}
    want = {label: max(len(label), min(usual[label], content.get(label, usual[label]))) for label in usual}
    chosen: list[str] = []
    used = 0
    for label in PRIORITY:
        if label in hide:
            continue
        need = want[label] + (len(SEP) if chosen else 0)
        if used + need <= available:
            chosen.append(label)
            used += need
    widths = {label: want[label] for label in chosen}
    room = available - used
    # the columns cut least first, so as many as possible show whole (then priority order)
    target = {label: min(MAX_WIDTH.get(label, widths[label]), content.get(label, widths[label])) for label in widths}
    for label in sorted(widths, key=lambda lb: (target[lb] - widths[lb], PRIORITY.index(lb))):
        grow = max(0, min(room, target[label] - widths[label]))
        widths[label] += grow
        room -= grow
    return tuple((label, widths[label]) for label, _, _ in COLUMNS if label in widths)


def _fit(cell: Text, width: int, right: bool) -> Text:
    cell = cell.copy()
    cell.truncate(width, overflow="ellipsis")
    pad = Text(" " * (width - cell.cell_len))
    return pad + cell if right else cell + pad


def row_line(cells: dict[str, Text], layout: Layout = DEFAULT_LAYOUT) -> Text:
    """One table row as a single line of fixed-width fields.

    The list is a one-column table of these lines: a 40-line screen then renders 40 cells
    instead of 440, which keeps a repaint of a new page well under the search budget.
    """
    return Text(SEP).join(_fit(cells.get(label, Text()), width, label in RIGHT) for label, width in layout)


def cell_text(line: str, label: str, layout: Layout = DEFAULT_LAYOUT) -> str:
    """The text of column ``label`` in a row's plain text (tests and the filter-by-value key)."""
    start = 0
    for name, width in layout:
        if name == label:
            return line.split("\n", 1)[0][start:start + width].strip()
        start += width + len(SEP)
    raise KeyError(label)


def header_line(layout: Layout, cursor: str | None = None) -> Text:
    """The header: column labels, the column cursor's underlined."""
    return row_line({label: Text(label, style="bold underline reverse" if label == cursor else "bold")
                     for label, _ in layout}, layout)


HEADER = header_line(DEFAULT_LAYOUT)

_FIELD = {label: name for label, name, _ in COLUMNS if name}
"""Column label → the filter field it maps to."""

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


def blind_row(r: ConversationSummary, view: Any) -> ConversationSummary:
    """The row as a blind coder sees it: a neutral label (``seq`` = place in their order), no model, vendor,
    condition, replicate or cost, the snippet masked."""
    from dataclasses import replace

    from runner.rigour.blind import HIDDEN, MODEL_TOKEN, PARTNER_TOKEN

    return replace(r, seq=view.rank(r.id), model=f"{MODEL_TOKEN} ↔ {PARTNER_TOKEN}" if " ↔ " in r.model else MODEL_TOKEN,
                   vendor=HIDDEN, condition=HIDDEN, replicate=0, simulated=False, cost=0.0,
                   snippet=view.snippet(r.snippet) if r.snippet is not None else None)


def cells_of(r: ConversationSummary, blind: bool = False) -> dict[str, Text]:
    """The cells of one row by column label (all `Text`: names and model text are never markup).
    ``blind``: the row went through `blind_row` (its ``#`` is the neutral label)."""
    model = Text(literal(r.model))
    if r.simulated:
        model = Text(literal(r.model)[:14]) + Text(" sim", style="magenta")
    cells = {
        "#": Text(f"#{r.seq + 1:04d}" if blind else str(r.seq), style="dim"), "model": model, "vendor": Text(literal(r.vendor)),
        "condition": Text(literal(r.condition)), "rep": Text(str(r.replicate)), "turns": Text(str(r.turns)),
        "stop": Text(literal(r.stop_reason or "—"), style="red" if (r.stop_reason or "").startswith("error") else ""),
        "status": Text(r.status, style=STATUS_STYLE.get(r.status, "")), "offers": offer_cell(r.offers),
        "tags": Text(literal(", ".join(r.tags)), style="cyan"), "cost": Text(f"${r.cost:.4f}"),
        # mean echo of the replies: the share of their content bigrams found in the prompts they read
        "echo": Text(f"{r.echo:.2f}") if r.echo is not None else Text("—", style="dim"),
    }
    return cells


def row_cells(r: ConversationSummary, layout: Layout = DEFAULT_LAYOUT, pattern: Any = None,
              blind: bool = False) -> tuple[Text]:
    """The row as one line; with a search, a second line holds the snippet of the hit, matches highlighted."""
    line = row_line(cells_of(r, blind), layout)
    if r.snippet is not None:
        width = max(10, sum(w for _, w in layout) + len(SEP) * (len(layout) - 1) - 4)
        snip = Text("    ") + Text(short(r.snippet, width), style="dim italic")
        highlight(snip, pattern, "reverse")
        line = line + Text("\n") + snip
    return (line,)


def content_widths(rows: Any, blind: bool = False) -> dict[str, int]:
    """The widest cell of each column over ``rows`` (for sizing columns to content)."""
    out: dict[str, int] = {}
    for r in rows:
        for label, cell in cells_of(r, blind).items():
            out[label] = max(out.get(label, len(label)), cell.cell_len)
    return out


class ConversationTable(Table, inherit_bindings=False):
    """The list: ←/→ move the column cursor (the screen's keys), not the table's sideways scroll."""

    BINDINGS = [b for b in Table.BINDINGS if getattr(b, "key", None) not in ("left", "right")]


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
        self.columns_layout: Layout = DEFAULT_LAYOUT
        """The columns shown and their widths (fitted to the terminal and to the content)."""
        self.column_cursor = "model"
        """The column cursor (underlined in the header): ``=`` filters on its value in the highlighted row."""
        self._content: dict[str, int] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="conversations-title", classes="title")
        yield Static(id="conversations-filters", classes="filters")
        yield Input(placeholder="search messages: words, \"a phrase\", prefix*, OR, -exclude  (Enter: search, "
                                "Esc: close)", id="search")
        yield ConversationTable(id="conversations", cursor_type="row", zebra_stripes=True)
        yield Static(id="conversations-empty", classes="empty")
        yield StatusLine()
        yield RankedFooter()

    def on_mount(self) -> None:
        if not getattr(self.app, "cursor_blink", True):
            self.query_one("#search", Input).cursor_blink = False
        if self.lapp.blind:
            self.column_cursor = "stop"
        self.columns_layout = fit_columns(self._available(), hide=self._hide())
        self._add_header(self.query_one("#conversations", DataTable))
        self.reload()
        self.load_run()
        self.set_interval(2.0, self._tick)

    # ---------------------------------------------------------------- layout

    @property
    def view(self) -> Any:
        """The coder's `BlindView` of this run (None: not blind), once a load has read it."""
        return self.lapp.cached_blind_view(self.run_id)

    def _hide(self) -> frozenset[str]:
        return BLIND_HIDDEN if self.lapp.is_blind_to(self.run_id) else frozenset()

    def _blind(self, page: Any, view: Any) -> Any:
        """A page in the blind coder's order, masked (a blind list is read whole: one page)."""
        from runner.store.reader import ConversationPage

        rows = sorted((blind_row(r, view) for r in page.rows), key=lambda r: (r.seq, r.id))
        return ConversationPage(rows, None)

    def _read(self, flt: ConversationFilter, limit: int, after: PageKey | None = None) -> Any:
        """A page of the list: in plan order, or (blind) the whole filtered list in the coder's order."""
        view = self.lapp.blind_view(self.run_id)
        if view is None:
            return self.reader.page(self.run_id, flt, after=after, limit=limit)
        return self._blind(self.reader.page(self.run_id, flt, limit=max(limit, len(view.order) + 10_000)), view)

    def _available(self) -> int:
        """Cells a row may use: the terminal width less the table's cell padding and scrollbar."""
        return max(20, self.app.size.width - 4)

    def _add_header(self, table: DataTable[Any]) -> None:
        header = header_line(self.columns_layout, self.column_cursor)
        table.add_column(header, key="row", width=header.cell_len)

    def _pattern(self) -> Any:
        try:
            query = search.parse(self.filter.search)
        except search.SearchError:
            return None
        return query.highlighter() if query is not None else None

    def _add_rows(self, table: DataTable[Any], rows: list[ConversationSummary]) -> None:
        pattern = self._pattern()
        for r in rows:
            table.add_row(*row_cells(r, self.columns_layout, pattern, self.view is not None), key=r.id, height=2 if r.snippet is not None else 1)

    def _relayout(self, force: bool = False) -> None:
        """Fit the columns again (terminal resized, new content, column cursor moved) and redraw the rows."""
        layout = fit_columns(self._available(), self._content, self._hide())
        if layout == self.columns_layout and not force:
            return
        self.columns_layout = layout
        if self.column_cursor not in {label for label, _ in layout}:
            self.column_cursor = "stop" if self._hide() else "model"
        table = self.query_one("#conversations", Table)
        keep = self.selected_id()
        table.clear(columns=True)
        self._add_header(table)
        self._add_rows(table, list(self.rows.values()))
        if keep is not None and keep in self.rows:
            table.move_cursor(row=table.get_row_index(keep), animate=False)

    def on_resize(self) -> None:
        if self.is_mounted:
            self._relayout()

    def action_column(self, step: int) -> None:
        labels = [label for label, _ in self.columns_layout if _FIELD.get(label)]
        i = labels.index(self.column_cursor) if self.column_cursor in labels else 0
        self.column_cursor = labels[max(0, min(len(labels) - 1, i + step))]
        self._relayout(force=True)

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
        self.app.call_from_thread(self.start_loading, "#conversations")
        page = self._read(flt, PAGE)
        self.post_message(PageLoaded(generation, page, first=True))

    @work(thread=True, exclusive=True, group="conversations-count", exit_on_error=False)
    def load_count(self, generation: int, flt: ConversationFilter) -> None:
        count = self.reader.count(self.run_id, flt)
        total = count if not flt.active() else self.reader.count(self.run_id)
        self.post_message(CountLoaded(generation, count, total))

    @work(thread=True, exclusive=True, group="conversations-more", exit_on_error=False)
    def load_more(self, generation: int, flt: ConversationFilter, after: PageKey) -> None:
        page = self._read(flt, PAGE, after)
        self.post_message(PageLoaded(generation, page, first=False))

    @work(thread=True, exclusive=True, group="conversations-refresh", exit_on_error=False)
    def load_refresh(self, generation: int, flt: ConversationFilter, rows: int) -> None:
        page = self._read(flt, max(PAGE, min(rows, 2000)))
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

    @on(StoreChanged)
    def _store_changed(self, message: StoreChanged) -> None:
        """Tags added elsewhere, turns written: refresh the rows shown in place."""
        live = self.run_status == "running" and "messages" in message.what
        if self.is_current and (live or message.what & {"tags", "codebooks", "runs"}):
            self.load_refresh(self.generation, self.filter, len(self.rows))

    def _tick(self) -> None:
        if self.run_status == "running" and self.is_current:
            self.load_refresh(self.generation, self.filter, len(self.rows))

    @on(PageLoaded)
    def _page_loaded(self, message: PageLoaded) -> None:
        if message.generation != self.generation:
            return
        if message.first:
            self.stop_loading("#conversations")
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
            pattern = self._pattern()
            blind = self.view is not None
            table.sync([(r.id, row_cells(r, self.columns_layout, pattern, blind)) for r in message.page.rows],
                       height=2 if any(r.snippet is not None for r in message.page.rows) else 1)
        else:
            if message.first:
                self.rows = {}
                self._content = content_widths(message.page.rows, self.view is not None)
                layout = fit_columns(self._available(), self._content, self._hide())
                if layout != self.columns_layout:
                    self.columns_layout = layout
                    table.clear(columns=True)
                    self._add_header(table)
                else:
                    table.clear()
            fresh = [r for r in message.page.rows if r.id not in self.rows]
            for r in fresh:
                self.rows[r.id] = r
            self._add_rows(table, fresh)
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
        title = Text.assemble(("run ", "dim"), (self.run_id, "bold"), "  ",
                              literal(self.lapp.mask(self.protocol, self.run_id)))
        if self.lapp.is_blind_to(self.run_id):
            title.append("  BLIND", style="bold reverse magenta")
            title.append(" (your own order; U unblinds)", style="dim")
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
        try:
            parsed = search.parse(text)
            view = self.view
            refused = view.refuses([t.text for t in parsed.words()]) if view is not None and parsed else None
            if refused:
                raise search.SearchError(refused)
        except search.SearchError as exc:
            # refused in words, the box stays open with the text to fix; the list is not changed
            self.notify(str(exc), severity="warning", markup=False)
            return
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
        from dataclasses import replace

        from tui.screens.modals import FilterModal

        if self.lapp.is_blind_to(self.run_id):
            # a blind coder filters on what they may see: never on model, vendor, condition or replicate
            message = FacetsLoaded(replace(message.facets, model=[], vendor=[], condition=[], replicate=[]))
        def done(result: Any) -> None:
            if result is not None:
                self.set_filter(result.filter)

        self.app.push_screen(FilterModal(message.facets, self.filter), done)

    def action_filter_cell(self) -> None:
        """Filter on the value of the cell under the cursor (highlighted row × column cursor)."""
        cid = self.selected_id()
        if cid is None or cid not in self.rows:
            return
        r = self.rows[cid]
        name = _FIELD.get(self.column_cursor)
        if name is None or self.column_cursor in self._hide():
            return
        values: list[Any] = {
            "model": [r.model.split(" ↔ ")[0]], "vendor": [r.vendor], "condition": [r.condition],
            "replicate": [r.replicate], "stop_reason": [r.stop_reason or "(none)"], "status": [r.status],
            "offer_outcome": list(r.offers), "tag": list(r.tags),
        }[name]
        if not values:
            self.notify(f"No {self.column_cursor} in this row to filter on.", markup=False)
            return
        if len(values) == 1:
            self.set_filter(self.filter.with_(**{name: values[0]}))
            return
        from tui.screens.modals import ChoiceModal

        def done(result: Any) -> None:
            if result is not None:
                self.set_filter(self.filter.with_(**{name: values[result.index]}))

        labels = [Text.assemble((f"{self.column_cursor} = ", "bold"), literal(str(v))) for v in values]
        self.app.push_screen(ChoiceModal("This row has several: keep conversations with…", labels), done)

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

    def blind_changed(self) -> None:
        """The coder unblinded this run: every column again, in plan order."""
        self.column_cursor = "model"
        self._render_title()
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
