"""Two transcripts side by side: the same prompt under two models, or two replicates."""

from __future__ import annotations

from typing import Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from runner.store.reader import ConversationRecord
from tui.actions import bindings
from tui.messages import PairLoaded
from tui.screens.base import BaseScreen
from tui.screens.transcript import fork_label, turn_context
from tui.text import literal
from tui.widgets.turn_view import TurnView
from tui.widgets.footer import RankedFooter
from tui.widgets.status_line import StatusLine

__all__ = ["CompareScreen"]


def _title(record: ConversationRecord, label: str | None = None) -> Text:
    c = record.conversation
    if label is not None:  # blind: the neutral label, nothing that names the model or the condition
        return Text.assemble((label, "bold"), ("  BLIND", "bold reverse magenta"),
                             f"\n{c.kind} · {c.turns} turns · stop: {literal(c.stop_reason or '—')}")
    title = Text.assemble((c.id, "bold"), "  ", (literal(c.model_alias), "bold green"),
                          (f" ↔ {literal(c.partner_alias)}" if c.partner_alias else "", "bold yellow"),
                          f"\n{literal(c.condition)} · rep {c.replicate} · {c.turns} turns · stop: "
                          f"{literal(c.stop_reason or '—')}")
    fork = fork_label(record)
    if fork:
        title.append(f"\n{fork}", style="bold magenta")
    return title


class CompareScreen(BaseScreen):
    """``left`` and ``right`` conversation ids, read side by side; j/k move both."""

    SCOPE = "compare"
    BINDINGS = bindings("compare")

    def __init__(self, left: str, right: str) -> None:
        super().__init__()
        self.left_id = left
        self.right_id = right
        self.cursor = 0
        self.loaded = False
        self.labels: dict[str, str] = {}
        """Neutral labels of the conversations shown blind."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="compare-body"):
            for side in ("left", "right"):
                with Vertical(classes="compare-side"):
                    yield Static(id=f"{side}-title", classes="title")
                    yield VerticalScroll(id=f"{side}-turns", can_focus=False)
        yield StatusLine()
        yield RankedFooter()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="compare-load", exit_on_error=False)
    def load(self) -> None:
        self.app.call_from_thread(self.start_loading, "#compare-body")
        self.post_message(PairLoaded(self._read(self.left_id), self._read(self.right_id)))

    def _read(self, conversation_id: str) -> ConversationRecord | None:
        """The record, masked when the coder is blind to its run (worker thread)."""
        from runner.rigour.blind import mask_record

        record = self.reader.conversation(conversation_id)
        view = self.lapp.blind_view(record.conversation.run_id) if record is not None else None
        if record is not None and view is not None:
            from dataclasses import replace

            self.labels[conversation_id] = view.label(conversation_id)
            # a blind coder codes alone: their own tags only, as in the transcript
            return mask_record(replace(record, tags=record.tags_of(self.lapp.coder)), view)
        return record

    @on(PairLoaded)
    async def _loaded(self, message: PairLoaded) -> None:
        self.stop_loading("#compare-body")
        for side, record in (("left", message.left), ("right", message.right)):
            turns = self.query_one(f"#{side}-turns", VerticalScroll)
            await turns.remove_children()
            title = self.query_one(f"#{side}-title", Static)
            if record is None:
                title.update(Text("(missing)"))
                continue
            title.update(_title(record, self.labels.get(record.conversation.id)))
            ctx = turn_context(record, self.lapp.coder)
            await turns.mount_all([TurnView(m, ctx, [t for t in record.tags if t.message_idx == m.idx])
                                   for m in record.messages])
        self.cursor = 0
        self._move(0)
        self.loaded = True

    def _move(self, step: int) -> None:
        for side in ("left", "right"):
            views = list(self.query_one(f"#{side}-turns").query(TurnView))
            for v in views:
                v.remove_class("-cursor")
        longest = max((len(list(self.query_one(f"#{s}-turns").query(TurnView))) for s in ("left", "right")),
                      default=0)
        self.cursor = max(0, min(max(0, longest - 1), self.cursor + step))
        for side in ("left", "right"):
            views = list(self.query_one(f"#{side}-turns").query(TurnView))
            if views:
                view = views[min(self.cursor, len(views) - 1)]
                view.add_class("-cursor")
                self.query_one(f"#{side}-turns", VerticalScroll).scroll_to_widget(view, animate=False, top=True)

    def action_scroll(self, step: int) -> None:
        self._move(step)

    def action_swap(self) -> None:
        self.left_id, self.right_id = self.right_id, self.left_id
        self.load()

    def action_other(self, vary: Literal["model", "replicate", "fork"], step: int) -> None:
        if self.labels:
            self.notify(f"Not while blind: the next {vary} of the same condition would say which is which.",
                        markup=False)
            return
        self.find_other(vary, step)

    @work(thread=True, exclusive=True, group="compare-other", exit_on_error=False)
    def find_other(self, vary: Literal["model", "replicate", "fork"], step: int) -> None:
        other = self.reader.counterpart(self.right_id, vary, 1 if step > 0 else -1)
        if other is None or other == self.left_id:
            alt = self.reader.counterpart(other or self.right_id, vary, 1 if step > 0 else -1) if other else None
            other = alt if alt not in (None, self.left_id) else None
        if other is None:
            self.app.call_from_thread(self.notify, f"No other {vary} to show.", markup=False, timeout=2)
            return
        self.right_id = other
        self.post_message(PairLoaded(self._read(self.left_id), self._read(other)))

    def action_back(self) -> None:
        self.app.pop_screen()
