"""A transcript: the messages in order, per-turn telemetry, and tagging with one key per decision.

Keys (see `tui.actions`): ``n``/``p`` (or →/←) move through the conversations of the
current filter; ``j``/``k`` (or ↓/↑) move the focused turn; digits 1-9 toggle the first nine
codes on the focused turn (or the whole conversation after ``m``); ``t`` picks or creates any
code; ``v`` tags a selected span; ``a`` writes a note; ``u`` undoes.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from runner.analysis.codebook import Code
from runner.rigour.blind import mask_record, researcher_of
from runner.store import search
from runner.store.reader import ConversationFilter, ConversationRecord
from runner.store.tables import CodebookRow, TagRow
from tui.actions import bindings
from tui.messages import CodebookLoaded, ConversationLoaded, StoreChanged, TagsChanged
from tui.screens.base import BaseScreen
from tui.text import literal
from tui.widgets.code_bar import CodeBar
from tui.widgets.telemetry import TelemetryPanel
from tui.widgets.turn_view import TurnContext, TurnView, tag_chip
from tui.widgets.footer import RankedFooter
from tui.widgets.status_line import StatusLine

__all__ = ["TranscriptScreen", "fork_label", "turn_context"]


def fork_label(record: ConversationRecord) -> str:
    """"fork 2 of 5 of abc at #3" for a fork; "5 forks at #3" for a conversation forked; both for a
    fork that was forked again; "" otherwise. ``#N`` is the message number the transcript shows."""
    f = record.forks
    parts = []
    if f.parent_id is not None:
        place = f"{f.position + 1} of {f.siblings}" if f.position is not None else f"one of {f.siblings}"
        parts.append(f"fork {place} of {f.parent_id} at #{f.fork_at}")
    for at, n in sorted(f.children.items()):
        parts.append(f"{n} fork{'s' if n != 1 else ''} at #{at}")
    return " · ".join(parts)


def turn_context(record: ConversationRecord, coder: str, query: str | None = None) -> TurnContext:
    conv = record.conversation
    labels = {"model": conv.model_alias, "a": conv.model_alias, "b": conv.partner_alias or "b"}
    ctx = TurnContext(labels=labels, stop_idx=conv.stop_message_idx, stop_text=conv.stop_detail,
                      stop_reason=conv.stop_reason, coder=coder)
    if conv.stop_reason and conv.stop_reason.startswith("error"):
        ctx.stop_text = None
    for o in record.offers:
        ctx.offers_made.setdefault(o.offer_message_idx, []).append(o)
        if o.reply_message_idx is not None:
            ctx.offers_answered.setdefault(o.reply_message_idx, []).append(o)
    for a in record.artifacts:
        ctx.artifacts.setdefault(a.message_idx, []).append(a.name)
    for c in record.captures:
        ctx.captures.setdefault(c.message_idx, []).append(c.name)
    for sc in record.stops:  # the stop that ended the conversation is shown as ■ stop already
        if not (sc.counted and not sc.hypothetical and sc.message_idx == conv.stop_message_idx):
            ctx.stops.setdefault(sc.message_idx, []).append(sc)
    parsed = search.parse(query)
    ctx.search = parsed.highlighter() if parsed else None
    return ctx


def context_window(record: ConversationRecord) -> int | None:
    """The model's context window: as the engine recorded it with each request, else the models file's."""
    for m in reversed(record.messages):
        if m.role == "assistant" and m.request_json:
            try:
                window = json.loads(m.request_json).get("context_window")
            except (ValueError, AttributeError):
                window = None
            if window:
                return int(window)
    try:
        models = json.loads(record.run.models_json or "{}")
        window = (models.get(record.conversation.model_alias) or {}).get("context_window")
        return int(window) if window else None
    except (ValueError, TypeError, AttributeError):
        return None


class TranscriptScreen(BaseScreen):
    """One conversation, read and tagged."""

    SCOPE = "transcript"
    BINDINGS = bindings("transcript")

    def __init__(self, run_id: str, flt: ConversationFilter, conversation_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.filter = flt
        """The conversations list's filter: next/previous follow it."""
        self.conversation_id = conversation_id
        self.record: ConversationRecord | None = None
        self.tags: list[TagRow] = []
        """Live tags of the conversation, every coder."""
        self.cursor = 0
        """Index of the focused turn."""
        self.mode = "turn"
        """``turn``: tags go on the focused message; ``conversation``: on the whole conversation."""
        self.position: int | None = None
        self.count: int | None = None
        self.loaded_id: str | None = None
        """The conversation on screen (tests wait on it)."""
        self.coded: int | None = None
        """Conversations of the filter this coder has coded (shown as "37 of 120 coded by ana")."""
        self._telemetry_chosen: bool | None = None
        """The telemetry panel as the person last toggled it (None: by width, shown from 120 columns)."""

    def compose(self) -> ComposeResult:
        yield Static(id="transcript-title", classes="title")
        yield CodeBar(id="codebar")
        with Horizontal(id="transcript-body"):
            yield VerticalScroll(id="turns", can_focus=False)
            yield TelemetryPanel(id="telemetry")
        yield StatusLine()
        yield RankedFooter()

    def on_mount(self) -> None:
        self._fit_telemetry()
        self.load(self.conversation_id)
        self.set_interval(2.0, self._tick)

    TELEMETRY_MIN_WIDTH = 120
    """Below this many columns the telemetry panel starts hidden (``i`` shows it), leaving the text room."""

    def _fit_telemetry(self) -> None:
        panel = self.query_one(TelemetryPanel)
        wanted = self._telemetry_chosen
        panel.display = wanted if wanted is not None else self.app.size.width >= self.TELEMETRY_MIN_WIDTH

    def on_resize(self) -> None:
        if self.is_mounted:
            self._fit_telemetry()

    def _tick(self) -> None:
        """A conversation still being written is read again (new turns appear as they are committed)."""
        if self.record is not None and self.record.conversation.status in ("running", "pending") \
                and self.is_current:
            self.load(self.conversation_id, keep_cursor=True)

    # ---------------------------------------------------------------- loading

    @work(thread=True, exclusive=True, group="transcript-load", exit_on_error=False)
    def load(self, conversation_id: str, keep_cursor: bool = False, to_model: bool = False) -> None:
        if not keep_cursor:
            self.app.call_from_thread(self.start_loading, "#turns")
        record = self.reader.conversation(conversation_id)
        view = self.lapp.blind_view(self.run_id)
        if view is not None:
            ordered = view.sort(self.reader.ids(self.run_id, self.filter))
            position = ordered.index(conversation_id) if conversation_id in ordered else None
            count = len(ordered)
            if record is not None:  # a blind coder codes alone: nobody else's tags (a judge's neither)
                from dataclasses import replace

                record = mask_record(replace(record, tags=record.tags_of(self.lapp.coder)), view)
        else:
            position = self.reader.position(self.run_id, self.filter, conversation_id)
            count = self.reader.count(self.run_id, self.filter)
        coded = self.reader.coded_count(self.run_id, self.filter, self.lapp.coder)
        self.post_message(ConversationLoaded(record, position, count, keep_cursor, coded, to_model))

    @on(ConversationLoaded)
    async def _loaded(self, message: ConversationLoaded) -> None:
        record = message.record
        self.stop_loading("#turns")
        if record is None:
            self.notify("That conversation is no longer in the store.", severity="warning", markup=False)
            return
        same = self.loaded_id == record.conversation.id
        self.record = record
        self.conversation_id = record.conversation.id
        self.tags = record.tags
        self.position, self.count, self.coded = message.position, message.count, message.coded
        ctx = turn_context(record, self.lapp.coder, self.filter.search)
        turns = self.query_one("#turns", VerticalScroll)
        if same and message.keep_cursor:
            # a live conversation: add the turns written since, keep what is on screen
            shown = {v.idx for v in self._views()}
            await turns.mount_all([TurnView(m, ctx, self._tags_on(m.idx)) for m in record.messages
                                   if m.idx not in shown])
            for view in self._views():
                view.ctx = ctx
                view.set_tags(self._tags_on(view.idx))
            views = self._views()
        else:
            await turns.remove_children()
            views = [TurnView(m, ctx, self._tags_on(m.idx)) for m in record.messages]
            await turns.mount_all(views)
        self._waiting(record)
        self.query_one(TelemetryPanel).show(record.messages, context_window(record))
        if not (same and message.keep_cursor):
            self.cursor = self._first_interesting(views, ctx, message.to_model)
        self.cursor = min(self.cursor, max(0, len(views) - 1))
        self._move(0, scroll=not (same and message.keep_cursor))
        self._render_title()
        self._render_codebar()
        self.loaded_id = record.conversation.id

    def _waiting(self, record: ConversationRecord) -> None:
        """A live conversation with no reply yet says so, instead of an empty pane."""
        for old in self.query("#waiting"):
            old.remove()
        c = record.conversation
        if c.status in ("running", "pending") and not any(m.role == "assistant" for m in record.messages):
            note = ("waiting for the first reply (the conversation is running; new turns appear by themselves)"
                    if c.status == "running" else "not started yet (pending): its turns appear once the run reaches it")
            self.query_one("#turns", VerticalScroll).mount(Static(Text(note, style="italic yellow"), id="waiting"))

    @staticmethod
    def _first_interesting(views: list[TurnView], ctx: TurnContext, to_model: bool = False) -> int:
        """The first search hit when searching; else, in the coding loop (``to_model``: after n/p/N),
        the first model turn, so ``n 1`` tags the model's reply, never the prompt; else (opened from
        the list, to read from the top) the first non-system turn."""
        if ctx.search is not None:
            for i, v in enumerate(views):
                if ctx.search.search(v.message.content) or ctx.search.search(v.message.reasoning or ""):
                    return i
        for i, v in enumerate(views):
            if to_model and v.message.role == "assistant":
                return i
        for i, v in enumerate(views):
            if v.message.role != "system":
                return i
        return 0

    def _tags_on(self, idx: int | None) -> list[TagRow]:
        return [t for t in self.tags if t.message_idx == idx]

    def load_tags(self, conversation_id: str, notice: str | None = None) -> None:
        """Read the conversation's tags again; ``notice`` goes to the status line now, in the order the
        writes were made (the reading worker is exclusive: a newer read replaces an older one, so a
        notice carried by it could be lost or come out of order)."""
        if notice:
            self.notify(notice, markup=False, timeout=2)
        self._read_tags(conversation_id)

    @work(thread=True, exclusive=True, group="transcript-tags", exit_on_error=False)
    def _read_tags(self, conversation_id: str) -> None:
        view = self.lapp.blind_view(self.run_id)
        if view is not None:  # a blind coder codes alone: their own tags only
            tags = [TagRow(**{**t.model_dump(), "coder": view.text(t.coder)})
                    for t in self.reader.tags(conversation_id, self.lapp.coder)]
        else:
            tags = self.reader.tags(conversation_id)
        coded = self.reader.coded_count(self.run_id, self.filter, self.lapp.coder)
        self.post_message(TagsChanged(conversation_id, tags, None, coded))

    @on(TagsChanged)
    def _tags_changed(self, message: TagsChanged) -> None:
        if message.notice:
            self.notify(message.notice, markup=False, timeout=2)
        if message.coded is not None:
            self.coded = message.coded
        if message.conversation_id != self.conversation_id:
            self._render_title()
            return
        self.tags = message.tags
        for view in self.query(TurnView):
            view.set_tags(self._tags_on(view.idx))
        self._render_title()
        self._render_codebar()

    @on(CodebookLoaded)
    def _codebook_loaded(self) -> None:
        """A new codebook version (a rename or merge here or elsewhere): the tags on screen are read
        again, so they show the new names at once."""
        self._render_codebar()
        if self.record is not None:
            self.load_tags(self.conversation_id)

    @on(StoreChanged)
    def _store_changed(self, message: StoreChanged) -> None:
        if self.record is None:
            return
        if "tags" in message.what:
            self.load_tags(self.conversation_id)
        if "messages" in message.what and self.record.conversation.status in ("running", "pending"):
            self.load(self.conversation_id, keep_cursor=True)

    # ---------------------------------------------------------------- rendering

    def _views(self) -> list[TurnView]:
        return list(self.query(TurnView))

    def current(self) -> TurnView | None:
        views = self._views()
        return views[self.cursor] if views and 0 <= self.cursor < len(views) else None

    def unit(self) -> int | None:
        """The message idx tags go on (None: the whole conversation)."""
        if self.mode == "conversation":
            return None
        view = self.current()
        return view.idx if view is not None else None

    def _render_title(self) -> None:
        if self.record is None:
            return
        c = self.record.conversation
        title = Text()
        if self.position is not None and self.count:
            title.append(f"{self.position + 1:,}/{self.count:,} ", style="bold reverse")
            if self.filter.active():
                title.append("in filter ", style="dim")
        view = self.lapp.cached_blind_view(self.run_id)
        if view is not None:
            title.append(view.label(c.id), style="bold")
            title.append("  BLIND", style="bold reverse magenta")
            title.append(f"  {c.kind} · ")
        else:
            title.append(c.id, style="bold")
            title.append("  ")
            title.append(literal(c.model_alias), style="bold green")
            if c.partner_alias:
                title.append(" ↔ ")
                title.append(literal(c.partner_alias), style="bold yellow")

            if c.simulated:
                title.append(" SIMULATED", style="bold magenta")
            title.append(f"  {literal(c.vendor)} · {literal(c.condition)} · rep {c.replicate} · {c.kind} · ")
        title.append(c.status, style="yellow" if c.status == "running" else "red" if c.status == "error" else "")
        title.append(f" · stop: {literal(c.stop_reason or '—')} · {c.turns} turns")
        if view is None:
            title.append(f" · ${c.cost:.4f}")
        researcher = researcher_of(self.record.run)
        if researcher and researcher == self.lapp.coder:
            title.append("   ⚑ you ran this conversation: your codes on it count as self-coded",
                         style="bold reverse yellow")
        if self.coded is not None and self.count:
            title.append(f"   {self.coded:,} of {self.count:,} coded by ", style="bold cyan")
            title.append(literal(self.lapp.coder), style="bold cyan")
        fork = fork_label(self.record)
        if fork:
            title.append(f"\n{fork}", style="bold magenta")
            title.append("  (f: list them)", style="dim")
        if c.status == "error" or (c.stop_reason or "").startswith("error"):
            title.append("\nerror: ", style="bold red")
            title.append(literal(c.stop_detail or "(no error text was recorded)"), style="red")
        whole = self._tags_on(None)
        if whole:
            title.append("\nconversation: ", style="dim")
            for t in whole:
                title.append_text(tag_chip(t, self.lapp.coder))
                title.append(" ")
        self.query_one("#transcript-title", Static).update(title)

    def _render_codebar(self) -> None:
        unit = self.unit()
        applied = {t.code for t in self.tags if t.coder == self.lapp.coder and t.message_idx == unit
                   and t.span_start is None and t.present}
        book = self.lapp.codebook
        self.query_one(CodeBar).show(book.name if book else None, self.lapp.codes, applied, self.mode,
                                     self.lapp.coder)

    def _move(self, step: int, *, scroll: bool = True) -> None:
        views = self._views()
        if not views:
            return
        old = self.current()
        self.cursor = max(0, min(len(views) - 1, self.cursor + step))
        if old is not None:
            old.remove_class("-cursor")
        view = views[self.cursor]
        view.add_class("-cursor")
        if scroll:
            self.query_one("#turns", VerticalScroll).scroll_to_widget(view, animate=False, top=step < 0)
        self.query_one(TelemetryPanel).follow(view.idx)
        self._render_codebar()

    # ---------------------------------------------------------------- navigation

    def action_cursor(self, step: int) -> None:
        self._move(step)

    def action_cursor_to(self, index: int) -> None:
        views = self._views()
        if views:
            target = index if index >= 0 else len(views) + index
            self._move(target - self.cursor)

    def action_page(self, step: int) -> None:
        turns = self.query_one("#turns", VerticalScroll)
        (turns.scroll_page_down if step > 0 else turns.scroll_page_up)(animate=False)

    def action_next(self) -> None:
        self.neighbour(1)

    def action_prev(self) -> None:
        self.neighbour(-1)

    def _blind_next(self, view: Any, ids: list[str], step: int, wrap: bool = False) -> str | None:
        """The next (``step`` 1) or previous (-1) of ``ids`` after this conversation, in the coder's order."""
        ordered = view.sort(ids)
        here = view.rank(self.conversation_id)
        after = [i for i in ordered if (view.rank(i) > here if step > 0 else view.rank(i) < here)]
        if after:
            return after[0] if step > 0 else after[-1]
        rest = [i for i in ordered if i != self.conversation_id]
        return rest[0] if wrap and rest else None

    @work(thread=True, exclusive=True, group="transcript-neighbour", exit_on_error=False)
    def neighbour(self, step: int) -> None:
        view = self.lapp.blind_view(self.run_id)
        if view is not None:
            other = self._blind_next(view, self.reader.ids(self.run_id, self.filter), step)
        else:
            other = self.reader.neighbour(self.run_id, self.filter, self.conversation_id, 1 if step > 0 else -1)
        if other is None:
            self.app.call_from_thread(self.notify, "No next conversation in this filter." if step > 0
                                      else "No previous conversation in this filter.", markup=False, timeout=2)
            return
        self.app.call_from_thread(self._go, other)

    def action_next_uncoded(self) -> None:
        self.find_uncoded()

    @work(thread=True, exclusive=True, group="transcript-neighbour", exit_on_error=False)
    def find_uncoded(self) -> None:
        view = self.lapp.blind_view(self.run_id)
        if view is not None:
            other = self._blind_next(view, self.reader.ids(self.run_id, self.filter, uncoded_by=self.lapp.coder), 1,
                                     wrap=True)
        else:
            other = self.reader.next_uncoded(self.run_id, self.filter, self.conversation_id, self.lapp.coder)
        if other is None:
            self.app.call_from_thread(self.notify, f"Every conversation in this filter is coded by {self.lapp.coder}.",
                                      markup=False, timeout=2)
            return
        self.app.call_from_thread(self._go, other)

    def _go(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        self.load(conversation_id, to_model=True)

    def action_back(self) -> None:
        self.dismiss(self.conversation_id)

    def blind_changed(self) -> None:
        """The coder unblinded this run: the conversation again, unmasked."""
        self.load(self.conversation_id, keep_cursor=False)

    # ---------------------------------------------------------------- tagging

    def _codebook_id(self) -> int | None:
        book: CodebookRow | None = self.lapp.codebook
        return book.id if book is not None else None

    def _toggle(self, code: str, codebook_id: int | None = None) -> None:
        if self.record is None:
            return
        cid = self.record.conversation.id
        unit = self.unit()
        where = "conversation" if unit is None else f"#{unit}"

        def done(tag: TagRow | None) -> None:
            self.load_tags(cid, f"{'+' if tag is not None else '−'} {code} on {where}")

        self.lapp.write(self.lapp.coding.toggle(cid, unit, code, codebook_id or self._codebook_id()), done,
                        what="tag")

    def action_toggle_code(self, number: int) -> None:
        codes = self.lapp.codes
        if number > len(codes):
            self.notify(f"The codebook has no code {number}. Press t to add one." if codes
                        else "No codebook yet: press t to create a code, or F3 to import a codebook.",
                        severity="warning", markup=False, timeout=3)
            return
        self._toggle(codes[number - 1].name)

    def action_mode(self) -> None:
        self.mode = "conversation" if self.mode == "turn" else "turn"
        self._render_codebar()

    def _applied(self) -> set[str]:
        unit = self.unit()
        return {t.code for t in self.tags if t.coder == self.lapp.coder and t.message_idx == unit
                and t.span_start is None}

    def _pick_code(self, title: str, then: Any) -> None:
        """Open the picker; ``then(name, codebook_id)`` once the code exists (created if new)."""
        from tui.screens.modals import CodeForm, CodeFormModal, CodePick, CodePickerModal

        def created(book: CodebookRow, name: str) -> None:
            self.lapp.reload_codebook(book.name)
            then(name, book.id)

        def form_done(form: CodeForm | None) -> None:
            if form is None:
                return
            try:
                code = Code(name=form.name, definition=form.definition, include=form.include,
                            exclude=form.exclude, examples=form.examples, parent=form.parent)
            except ValueError as exc:
                self.notify(f"Not a valid code: {exc}", severity="error", markup=False)
                return
            book = self.lapp.codebook.name if self.lapp.codebook else None
            self.lapp.write(self.lapp.coding.create_code(book, code), lambda row: created(row, code.name),
                            what="create code")

        def picked(pick: CodePick | None) -> None:
            if pick is None:
                return
            if pick.create:
                self.app.push_screen(CodeFormModal(f"New code {pick.name}", name=pick.name,
                                                   taken={c.name for c in self.lapp.codes}), form_done)
            else:
                then(pick.name, None)

        self.app.push_screen(CodePickerModal(self.lapp.codes, title, self._applied()), picked)

    def action_pick(self) -> None:
        where = "the conversation" if self.unit() is None else f"turn #{self.unit()}"
        self._pick_code(f"Toggle a code on {where}", lambda name, book_id: self._toggle(name, book_id))

    def action_span(self) -> None:
        from tui.screens.modals import SpanModal, SpanSelection

        view = self.current()
        if view is None or self.record is None:
            return
        cid = self.record.conversation.id
        message = view.message

        def tag(selection: SpanSelection, name: str, book_id: int | None) -> None:
            def done(_tag: TagRow) -> None:
                self.load_tags(cid, f"+ {name} on a span of #{message.idx}")

            self.lapp.write(self.lapp.coding.span(cid, message.idx, name, book_id or self._codebook_id(),
                                                  selection.start, selection.end, message.content), done,
                            what="span tag")

        def selected(selection: SpanSelection | None) -> None:
            if selection is not None:
                self._pick_code(f"Tag “{literal(selection.quote)[:40]}” with",
                                lambda name, book_id: tag(selection, name, book_id))

        self.app.push_screen(SpanModal(message.content, f"Select a span of #{message.idx}"), selected)

    def action_note(self) -> None:
        from tui.screens.modals import Choice, ChoiceModal, TextModal, TextResult

        unit = self.unit()
        mine = [t for t in self.tags if t.coder == self.lapp.coder and t.message_idx == unit]
        if not mine:
            self.notify("None of your tags here to annotate: tag first (1-9 or t).", severity="warning",
                        markup=False, timeout=3)
            return
        cid = self.conversation_id

        def write(tag: TagRow, result: TextResult | None) -> None:
            if result is None:
                return
            self.lapp.write(self.lapp.coding.note(tag.id or 0, result.value.strip() or None),
                            lambda _t: self.load_tags(cid, f"note on {tag.code}"), what="note")

        def ask(tag: TagRow) -> None:
            self.app.push_screen(TextModal(f"Note on {literal(tag.code)}", tag.note or "",
                                           placeholder="why, doubts, anything (empty clears)"),
                                 lambda r: write(tag, r))

        if len(mine) == 1:
            ask(mine[0])
            return

        def chosen(choice: Choice | None) -> None:
            if choice is not None:
                ask(mine[choice.index])

        labels = [Text.assemble((literal(t.code), "bold"),
                                (f"  “{literal(t.quote)[:50]}”" if t.quote else "", "italic"),
                                (f"  ✎ {literal(t.note)[:40]}" if t.note else "", "dim")) for t in mine]
        self.app.push_screen(ChoiceModal("Note on which tag?", labels), chosen)

    def action_reviewed(self) -> None:
        if self.record is None:
            return

        cid = self.record.conversation.id

        def done(now: bool) -> None:
            self.load_tags(cid, "marked reviewed: codes you did not apply count as absent" if now
                           else "reviewed mark withdrawn")  # the progress count includes the mark

        self.lapp.write(self.lapp.coding.toggle_reviewed(self.record.conversation.id, self._codebook_id()), done,
                        what="reviewed")

    def action_undo(self) -> None:
        cid = self.conversation_id

        def done(decision: Any) -> None:
            if decision is None:
                self.notify("Nothing to undo.", markup=False, timeout=2)
            else:
                self.load_tags(cid, f"undone: {decision.action}")

        self.lapp.write(self.lapp.coding.undo(), done, what="undo")

    # ---------------------------------------------------------------- views

    def action_toggle_system(self) -> None:
        for view in self._views():
            if view.message.role == "system":
                view.toggle()

    def action_toggle_reasoning(self) -> None:
        view = self.current()
        if view is not None:
            view.toggle()

    def action_toggle_reasoning_all(self) -> None:
        views = [v for v in self._views() if v.message.reasoning]
        expand = not all(v.expanded for v in views)
        for v in views:
            v.set_expanded(expand)

    def action_telemetry(self) -> None:
        panel = self.query_one(TelemetryPanel)
        self._telemetry_chosen = not panel.display
        panel.display = self._telemetry_chosen

    def action_artifacts(self) -> None:
        from tui.screens.modals import ArtifactModal

        if self.record is None or not self.record.artifacts:
            self.notify("This conversation has no artifacts.", markup=False, timeout=2)
            return
        self.app.push_screen(ArtifactModal(self.record.artifacts))

    def action_forks(self) -> None:
        """The forks of this point (a fork's siblings), or those made of this conversation (at the
        focused message when it is a fork point, else the first point)."""
        record = self.record
        if record is None:
            return
        f = record.forks
        if f.parent_id is not None and f.fork_at is not None and not (f.children and self.unit() in f.children):
            parent, at = f.parent_id, f.fork_at
        elif f.children:
            unit = self.unit()
            parent, at = record.conversation.id, unit if unit in f.children else min(f.children)
        else:
            self.notify(f"No forks of this conversation. Make some with: latitude fork {record.conversation.id} "
                        "--at N --samples 5 (N: a model reply's #number).", markup=False, timeout=4)
            return
        from tui.screens.forks import ForksScreen

        self.app.push_screen(ForksScreen(parent, at))

    def action_compare(self) -> None:
        if self.lapp.is_blind_to(self.run_id):
            self.notify("Not while blind: comparing with another model of the same condition would say which "
                        "is which. Mark two conversations with c in the list instead.", markup=False)
            return
        self.open_compare()

    @work(thread=True, exclusive=True, group="transcript-compare", exit_on_error=False)
    def open_compare(self) -> None:
        other = self.reader.counterpart(self.conversation_id, "model")
        if other is None:
            other = self.reader.counterpart(self.conversation_id, "replicate")
        if other is None:
            self.app.call_from_thread(self.notify, "Nothing to compare with: no other model or replicate under "
                                      "this condition.", markup=False, timeout=3)
            return
        from tui.screens.compare import CompareScreen

        self.app.call_from_thread(self.app.push_screen, CompareScreen(self.conversation_id, other))
