"""Forks: the continuations sampled from one point of a conversation, one row each with its
reply at the fork point, so the spread of what the model did from that moment is read at a
glance; Enter opens one, ``c`` puts two side by side (``f`` there steps through the rest)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from runner.store.reader import ConversationFilter
from tui.actions import bindings
from tui.messages import ForksLoaded
from tui.screens.base import BaseScreen
from tui.text import literal
from tui.widgets.footer import RankedFooter
from tui.widgets.status_line import StatusLine
from tui.widgets.table import Table

__all__ = ["ForksScreen"]

REPLY_CHARS = 400
"""How much of each reply the table shows (the transcript has it all)."""


class ForksScreen(BaseScreen):
    """The forks of `parent_id` from its message ``#at``, in sample order."""

    SCOPE = "forks"
    AUTO_FOCUS = "#forks"
    BINDINGS = bindings("forks")

    def __init__(self, parent_id: str, at: int) -> None:
        super().__init__()
        self.parent_id = parent_id
        self.at = at
        self.ids: list[str] = []
        self.loaded = False
        """True once the list is shown (tests wait on it)."""

    def compose(self) -> ComposeResult:
        yield Static(id="forks-title", classes="title")
        yield Table(id="forks", cursor_type="row", zebra_stripes=True)
        yield StatusLine()
        yield RankedFooter()

    def on_mount(self) -> None:
        self.query_one("#forks", Table).add_columns("fork", "model", "seed", "turns", "stop", f"reply at #{self.at}")
        self.load()

    @work(thread=True, exclusive=True, group="forks-load", exit_on_error=False)
    def load(self) -> None:
        self.app.call_from_thread(self.start_loading, "#forks")
        self.post_message(ForksLoaded(self._masked(self.reader.forks_at(self.parent_id, self.at))))

    def _masked(self, forks: list[Any]) -> list[Any]:
        """The forks as this coder may see them (worker thread): for a run they are blind to, no model
        alias and the model names in the reply masked, like every other screen."""
        from dataclasses import replace

        from runner.rigour.blind import MODEL_TOKEN

        out = []
        for f in forks:
            view = self.lapp.blind_view(f.conversation.run_id)
            if view is not None:
                c = f.conversation
                f = replace(f, conversation=c.model_copy(update={"model_alias": MODEL_TOKEN, "litellm_model": "",
                                                                  "vendor": "", "condition": "",
                                                                  "partner_alias": None, "partner_model": None}),
                            reply=view.text(f.reply, c.id))
            out.append(f)
        return out

    @on(ForksLoaded)
    def _show(self, message: ForksLoaded) -> None:
        self.stop_loading("#forks")
        forks = message.forks
        n = len(forks)
        self.query_one("#forks-title", Static).update(Text.assemble(
            (f"{n} fork{'s' if n != 1 else ''}", "bold magenta"), f" of {self.parent_id} at #{self.at}",
            ("   each samples the reply at the fork point again; everything before it is the parent's", "dim")))
        table = self.query_one("#forks", Table)
        table.clear()
        for k, f in enumerate(forks):
            c = f.conversation
            reply = " ".join(literal(f.reply).split())  # one line per fork: whitespace folded, text literal
            table.add_row(Text(f"{k + 1} of {n}"), Text(literal(c.model_alias), style="green"),
                          Text("—" if f.seed is None else str(f.seed)), Text(str(c.turns), justify="right"),
                          Text(literal(c.stop_reason or c.status)),
                          Text(reply[:REPLY_CHARS] + ("…" if len(reply) > REPLY_CHARS else "")), key=c.id)
        self.ids = [f.conversation.id for f in forks]
        self.loaded = True

    def selected(self) -> str | None:
        table = self.query_one("#forks", DataTable)
        if table.row_count == 0:
            return None
        return self.ids[table.cursor_row] if 0 <= table.cursor_row < len(self.ids) else None

    def action_open(self) -> None:
        chosen = self.selected()
        if chosen is None:
            return
        self.open_transcript(chosen)

    @work(thread=True, exclusive=True, group="forks-open", exit_on_error=False)
    def open_transcript(self, conversation_id: str) -> None:
        record = self.reader.conversation(conversation_id)
        if record is None:
            return
        from tui.screens.transcript import TranscriptScreen

        self.app.call_from_thread(self.app.push_screen,
                                  TranscriptScreen(record.conversation.run_id, ConversationFilter(), conversation_id))

    def action_compare(self) -> None:
        chosen = self.selected()
        if chosen is None or len(self.ids) < 2:
            self.notify("Only one fork from this point: nothing to compare it with.", markup=False, timeout=3)
            return
        from tui.screens.compare import CompareScreen

        other = self.ids[(self.ids.index(chosen) + 1) % len(self.ids)]
        self.app.push_screen(CompareScreen(chosen, other))

    def action_back(self) -> None:
        self.app.pop_screen()
