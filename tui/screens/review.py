"""The review queue: judge codings and suggested themes, one at a time, decided by one key.

Order: items where coders disagree first (someone applied the code on that conversation,
someone else coded it without), then the rest oldest first; skipped items come back after
the pending ones. ``a`` accept, ``r`` reject, ``s`` skip, ``u`` undo.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from runner.store.reader import ConversationFilter, SuggestionRecord
from tui.actions import bindings
from tui.coding import ReviewDecision
from tui.messages import SuggestionsLoaded
from tui.screens.base import BaseScreen
from tui.text import literal
from tui.widgets.footer import RankedFooter
from tui.widgets.status_line import StatusLine

__all__ = ["ReviewScreen", "render_item"]


def _excerpt(content: str, quote: str | None, width: int = 1200) -> Text:
    text = literal(content)
    start = 0
    if quote:
        pos = text.lower().find(literal(quote).lower())
        if pos > width // 2:
            start = pos - width // 4
    body = Text(("…" if start else "") + text[start:start + width] + ("…" if len(text) > start + width else ""))
    if quote:
        needle = literal(quote).lower()
        pos = body.plain.lower().find(needle)
        if pos >= 0:
            body.stylize("bold black on yellow", pos, pos + len(needle))
    return body


def _stop_card(item: SuggestionRecord, payload: dict[str, Any]) -> list[Text]:
    """A candidate stop: what the detector decided and why, and the reply with the match highlighted.
    ``a`` confirms it is a stop, ``r`` says it is not (the detector-vs-people tally reads these)."""
    decision = str(payload.get("decision", ""))
    style = {"used": "bold green", "rejected": "bold red", "ambiguous": "bold yellow"}.get(decision, "bold")
    parts = [Text.assemble(("detector: ", "bold"), (decision, style), "  rule ", (literal(str(payload.get("rule"))), "bold"),
                           f"  · {literal(str(payload.get('channel')))} · detection v{payload.get('detection')}"
                           + ("  · prompted" if payload.get("prompted") else "")),
             Text.assemble(("evidence: ", "bold"), literal(str(payload.get("evidence", "")))),
             Text("a: it is a stop   r: it is not a stop   s: skip", style="dim")]
    if payload.get("judge"):
        parts.append(Text.assemble(("judge: ", "dim"), literal(str(payload["judge"])), ": ",
                                   literal(str(payload.get("judge_evidence") or ""))[:300]))
    if item.message is not None:
        parts.append(Text(""))
        parts.append(Text(f"#{item.message.idx} {item.message.speaker}", style="bold green"))
        body = literal(item.message.content)
        start, end = (payload.get("span") or [None, None])[:2]
        if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(body):
            lo = max(0, start - 600)
            shown = Text(("…" if lo else "") + body[lo:end + 600] + ("…" if end + 600 < len(body) else ""))
            off = (1 if lo else 0) + start - lo
            shown.stylize("bold black on yellow", off, off + end - start)
            parts.append(shown)
        else:
            parts.append(_excerpt(item.message.content, str(payload.get("text") or "") or None))
    return parts


def render_item(item: SuggestionRecord) -> Text:
    s = item.suggestion
    payload: dict[str, Any] = json.loads(s.payload_json or "{}")
    parts: list[Any] = []
    head = Text()
    head.append(f" {s.kind} ", style={"theme": "bold reverse magenta", "stop": "bold reverse red"}.get(
        s.kind, "bold reverse blue"))
    head.append("  ")
    head.append(literal(s.code), style="bold cyan")
    if s.status != "pending":
        head.append(f"   ({s.status} before)", style="dim")
    if item.disagreement:
        head.append(f"   coders disagree: {', '.join(map(literal, item.coders_for))} applied it; "
                    f"{', '.join(map(literal, item.coders_against))} did not", style="bold yellow")
    parts.append(head)
    if s.definition:
        parts.append(Text.assemble(("definition: ", "bold"), literal(s.definition)))
    for key in ("include", "exclude"):
        if payload.get(key):
            parts.append(Text.assemble((f"{key}: ", "bold"), literal(str(payload[key]))))
    if item.conversation is not None:
        c = item.conversation
        where = "the whole conversation" if s.message_idx is None else f"message #{s.message_idx}"
        if c.condition == "—":  # blind (`runner.rigour.blind.mask_suggestion`): nothing that names model or condition
            parts.append(Text.assemble(("on ", "dim"), (where, "bold"), (" of ", "dim"), (item.label or "#????", "bold"),
                                       ("  BLIND", "bold magenta")))
        else:
            parts.append(Text.assemble(("on ", "dim"), (where, "bold"), (" of ", "dim"), (c.id, "bold"), "  ",
                                       (literal(c.model_alias), "green"),
                                       f" · {literal(c.condition)} · rep {c.replicate}"))
    if s.kind == "stop":
        parts += _stop_card(item, payload)
    elif s.kind == "judge":
        who = payload.get("coder")
        if who:
            parts.append(Text.assemble(("judge: ", "dim"), (literal(str(who)), "dim")))
        if payload.get("evidence"):
            parts.append(Text.assemble(("evidence: ", "bold"), literal(str(payload["evidence"]))))
        quotes = payload.get("quotes") or []
        for q in quotes[:5]:
            parts.append(Text.assemble(("  ❝ ", "cyan"), (f"#{q.get('turn')} ", "dim"),
                                       (literal(str(q.get("text", ""))), "italic")))
        if item.message is not None:
            parts.append(Text(""))
            parts.append(Text(f"#{item.message.idx} {item.message.speaker}", style="bold green"))
            parts.append(_excerpt(item.message.content, quotes[0].get("text") if quotes else None))
    else:
        size = payload.get("size")
        if size is not None:
            parts.append(Text(f"{size} texts in this theme", style="bold"))
        if payload.get("terms"):
            parts.append(Text.assemble(("terms: ", "bold"), literal(", ".join(map(str, payload["terms"])))))
        if payload.get("by_model"):
            parts.append(Text.assemble(("by model: ", "bold"),
                                       literal(", ".join(f"{k} {v}" for k, v in payload["by_model"].items()))))
        for e in (payload.get("examples") or [])[:5]:
            parts.append(Text.assemble(("  ❝ ", "cyan"), (literal(str(e.get("model", ""))) + " ", "green"),
                                       (literal(str(e.get("text", "")))[:300], "italic")))
        for e in (payload.get("contrast") or [])[:2]:
            parts.append(Text.assemble(("  ≠ ", "red"), (literal(str(e.get("text", "")))[:200], "dim italic")))
    return Text("\n").join(parts)


class ReviewScreen(BaseScreen):
    """One suggestion at a time."""

    SCOPE = "review"
    BINDINGS = bindings("review")

    def __init__(self) -> None:
        super().__init__()
        self.items: list[SuggestionRecord] = []
        self.index = 0
        self.decided = 0
        self.loaded = False
        self._focus_id: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="review-title", classes="title")
        with VerticalScroll(id="review-card-scroll"):
            yield Static(id="review-card")
        yield StatusLine()
        yield RankedFooter()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="review-load", exit_on_error=False)
    def load(self) -> None:
        self.app.call_from_thread(self.start_loading, "#review-card-scroll")
        pending, skipped = self.reader.suggestions("pending"), self.reader.suggestions("skipped")
        items = pending + skipped
        if self.lapp.blind:
            from runner.rigour.blind import mask_suggestion

            masker = self.lapp.store_masker()

            def view(i: SuggestionRecord) -> Any:
                return self.lapp.blind_view(i.conversation.run_id) if i.conversation else None

            def order(i: SuggestionRecord) -> tuple[int, str, int]:
                # the coder's own order of the conversations, not the plan's (grouped by model)
                v = view(i)
                return (0, i.conversation.run_id, v.rank(i.conversation.id)) if v is not None and i.conversation \
                    else (1, "", 0)

            items = [mask_suggestion(i, view(i), masker) for i in sorted(pending, key=order) + sorted(skipped, key=order)]
        self.post_message(SuggestionsLoaded(items))

    @on(SuggestionsLoaded)
    def _loaded(self, message: SuggestionsLoaded) -> None:
        self.stop_loading("#review-card-scroll")
        self.items = message.items
        self.index = 0
        if self._focus_id is not None:
            for i, item in enumerate(self.items):
                if item.suggestion.id == self._focus_id:
                    self.index = i
            self._focus_id = None
        self._show_item()
        self.loaded = True

    def current(self) -> SuggestionRecord | None:
        return self.items[self.index] if 0 <= self.index < len(self.items) else None

    def _show_item(self) -> None:
        pending = sum(1 for i in self.items if i.suggestion.status == "pending")
        disagree = sum(1 for i in self.items if i.disagreement)
        title = Text.assemble(("review queue", "bold"), f"   {pending:,} pending",
                              (f" ({disagree:,} with disagreement)" if disagree else "", "yellow"),
                              (f", {len(self.items) - pending:,} skipped" if len(self.items) > pending else "", "dim"),
                              (f"   decided this session: {self.decided}", "dim"),
                              ("   you: ", "dim"), (literal(self.lapp.coder), "bold"))
        if self.items:
            title.append(f"   item {self.index + 1}/{len(self.items)}", style="bold")
        self.query_one("#review-title", Static).update(title)
        item = self.current()
        card = self.query_one("#review-card", Static)
        if item is None:
            card.update(Text("Nothing to review. Judge codings (`latitude code`) and suggested themes "
                             "(`latitude themes`) land here.", style="dim"))
        else:
            card.update(render_item(item))
        self.query_one("#review-card-scroll", VerticalScroll).scroll_home(animate=False)

    def action_decide(self, status: str) -> None:
        item = self.current()
        if item is None or item.suggestion.id is None:
            return
        if status == "accepted" and item.suggestion.kind == "theme":
            self._accept_theme(item)
            return
        self._decide(item, status)

    def _accept_theme(self, item: SuggestionRecord) -> None:
        """A suggested theme has a machine name and definition: offer to rename it and edit the
        definition before it becomes a code (Enter keeps them as they are)."""
        from tui.screens.modals import CodeForm, CodeFormModal

        s = item.suggestion

        def done(form: CodeForm | None) -> None:
            if form is not None:
                self._decide(item, "accepted", name=form.name, definition=form.definition)

        self.app.push_screen(CodeFormModal(f"Accept theme {s.code} as a code: rename it, edit its definition",
                                           name=s.code, definition=s.definition or "",
                                           taken={c.name for c in self.lapp.codes}, focus="name"), done)

    def _decide(self, item: SuggestionRecord, status: str, **edits: Any) -> None:
        assert item.suggestion.id is not None
        book = self.lapp.codebook.name if self.lapp.codebook else None

        def done(decision: ReviewDecision) -> None:
            if decision.notice:
                self.notify(decision.notice, markup=False, timeout=2)
            if decision.code is not None:
                self.lapp.reload_codebook(decision.codebook)

        self.lapp.write(self.lapp.coding.decide(item.suggestion.id, status, book, **edits),  # type: ignore[arg-type]
                        done, what=f"review {status}")
        self.decided += 1
        if item in self.items:
            self.index = self.items.index(item)
        del self.items[self.index]
        if self.index >= len(self.items):
            self.index = max(0, len(self.items) - 1)
        self._show_item()

    def action_undo(self) -> None:
        def done(decision: ReviewDecision | None) -> None:
            if decision is None:
                self.notify("Nothing to undo.", markup=False, timeout=2)
                return
            self.decided = max(0, self.decided - 1)
            self.notify(f"undone: {decision.status}", markup=False, timeout=2)
            if decision.code is not None:
                self.lapp.reload_codebook(decision.codebook)
            self._focus_id = decision.suggestion_id
            self.load()

        self.lapp.write(self.lapp.coding.undo_review(), done, what="review undo")

    def action_open(self) -> None:
        item = self.current()
        if item is None or item.conversation is None:
            self.notify("This suggestion is not about one conversation.", markup=False, timeout=2)
            return
        from tui.screens.transcript import TranscriptScreen

        c = item.conversation
        screen = TranscriptScreen(c.run_id, ConversationFilter(), c.id)
        self.app.push_screen(screen)

    def action_back(self) -> None:
        self.app.pop_screen()
