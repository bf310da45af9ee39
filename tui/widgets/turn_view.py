"""One message of a transcript: speaker, text, and what is known about it.

Rendered from `rich.text.Text` only (model text is never markup) with control characters
escaped (`tui.text.literal`). Long parts fold: the system prompt and reasoning text are
collapsed until asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rich.text import Text
from textual.widgets import Static

from runner.store.tables import MessageRow, OfferRow, StopCandidateRow, TagRow
from tui.text import highlight, literal, literal_map, shown_span

__all__ = ["SPEAKER_STYLE", "TurnContext", "TurnView", "tag_chip"]

SPEAKER_STYLE = {
    "system": "dim",
    "user": "bold blue",
    "experimenter": "bold magenta",
    "model": "bold green",
    "a": "bold green",
    "b": "bold yellow",
    "tool": "bold cyan",
}
"""Speaker label styles; the left border colour comes from the ``-speaker-*`` class in app.tcss."""

OUTCOME_STYLE = {"accept": "bold green", "decline": "bold red", "unclear": "bold yellow"}


def tag_chip(tag: TagRow, coder: str) -> Text:
    """A tag as a chip: yours bold, other coders' with their name."""
    mine = tag.coder == coder
    label = literal(tag.code)
    if not tag.present:
        label = "¬" + label
    if not mine:
        who = tag.coder.split("@")[0]
        label += f" · {literal(who)}"
    if tag.span_start is not None:
        label = "❝" + label
    if tag.note:
        label += " ✎"
    return Text(f"[{label}]", style="bold cyan" if mine else "cyan dim" if tag.source == "judge" else "cyan")


@dataclass
class TurnContext:
    """What a turn needs from its conversation."""

    labels: dict[str, str] = field(default_factory=dict)
    """Speaker → label shown (a pair's ``a``/``b`` → model aliases)."""
    offers_made: dict[int, list[OfferRow]] = field(default_factory=dict)
    """Message idx → offers carried by that message."""
    offers_answered: dict[int, list[OfferRow]] = field(default_factory=dict)
    """Message idx → offers that message answered (with the classification)."""
    stop_idx: int | None = None
    stop_text: str | None = None
    stop_reason: str | None = None
    coder: str = ""
    search: re.Pattern[str] | None = None
    artifacts: dict[int, list[str]] = field(default_factory=dict)
    """Message idx → names of artifacts taken from it."""
    captures: dict[int, list[str]] = field(default_factory=dict)
    stops: dict[int, list[StopCandidateRow]] = field(default_factory=dict)
    """Message idx → stop candidates found in it (the counted stop is shown as ``■ stop`` too)."""


STOP_DECISION_STYLE = {"used": "bold yellow", "rejected": "dim", "ambiguous": "bold magenta"}


def stop_candidate_line(c: StopCandidateRow) -> Text:
    """One stop candidate as a line under its turn: the decision, the channel and rule, the text matched."""
    mark = "■" if c.counted else "□"
    what = "counted stop" if c.counted else f"stop candidate {c.decision}"
    if c.hypothetical:
        what += " (hypothetical)"
    line = Text.assemble((f"{mark} {what}", STOP_DECISION_STYLE.get(c.decision, "bold")),
                         (f"  {literal(c.stop_channel)} · {literal(c.rule)}", "dim"))
    shown = c.text or c.phrase
    if shown:
        line.append(f": “{literal(shown)[:80]}”", style="yellow" if c.decision == "used" else "dim")
    if c.judge:
        line.append(f"  judge {literal(c.judge)}", style="dim")
    return line


class TurnView(Static):
    """A message in the transcript (the cursor turn has the ``-cursor`` class)."""

    def __init__(self, message: MessageRow, ctx: TurnContext, tags: list[TagRow]) -> None:
        speaker = message.speaker if message.speaker in SPEAKER_STYLE else "model"
        super().__init__(classes=f"turn -speaker-{speaker}")
        self.message = message
        self.ctx = ctx
        self.tags = tags
        self.expanded = False
        """System prompt / reasoning shown in full."""

    @property
    def idx(self) -> int:
        return self.message.idx

    def on_mount(self) -> None:
        self.update(self.build())

    def set_tags(self, tags: list[TagRow]) -> None:
        self.tags = tags
        self.update(self.build())

    def toggle(self) -> None:
        self.expanded = not self.expanded
        self.update(self.build())

    def set_expanded(self, expanded: bool) -> None:
        if expanded != self.expanded:
            self.toggle()

    def build(self) -> Text:
        m = self.message
        ctx = self.ctx
        speaker = m.speaker
        head = Text()
        head.append(f"#{m.idx} ", style="dim")
        head.append(literal(ctx.labels.get(speaker, speaker)), style=SPEAKER_STYLE.get(speaker, "bold green"))
        if m.role == "tool":
            head.append(" (tool)", style="dim")
        head.append(f"  {literal(m.step)}", style="dim")
        if m.finish_reason and m.finish_reason not in ("stop", "end_turn"):
            head.append(f"  finish: {literal(m.finish_reason)}", style="yellow")
        for name in ctx.captures.get(m.idx, []):
            head.append(f"  capture: {literal(name)}", style="magenta")
        for t in self.tags:
            head.append(" ")
            head.append_text(tag_chip(t, ctx.coder))
        parts: list[Text] = [head]

        if m.role == "system" and not self.expanded:
            lines = m.content.splitlines() or [""]
            folded = Text(literal(lines[0])[:100], style="dim italic")
            folded.append(f"  … system prompt, {len(lines)} line(s), {len(m.content):,} chars — s to expand",
                          style="dim")
            parts.append(folded)
        else:
            parts.append(self._body())

        if m.reasoning:
            if self.expanded:
                parts.append(Text("reasoning", style="bold dim"))
                parts.append(Text(literal(m.reasoning), style="dim italic"))
            else:
                parts.append(Text(f"▸ reasoning ({len(m.reasoning):,} chars) — r to expand", style="dim italic"))
        if m.tool_calls_json:
            parts.append(Text(f"tool calls: {literal(m.tool_calls_json)[:300]}", style="cyan dim"))
        for o in ctx.offers_made.get(m.idx, []):
            parts.append(Text.assemble(("⟐ offer ", "bold magenta"), (literal(o.label), "magenta"),
                                       (f"  (answered in #{o.reply_message_idx})" if o.reply_message_idx is not None
                                        else "  (no reply)", "dim")))
        for o in ctx.offers_answered.get(m.idx, []):
            line = Text.assemble(("⟐ answers offer ", "magenta"), (literal(o.label), "magenta"), ": ",
                                 (o.classification.upper(), OUTCOME_STYLE.get(o.classification, "bold")),
                                 (f"  by {literal(o.method)}", "dim"))
            if o.evidence:
                line.append(f"  evidence: “{literal(o.evidence)[:120]}”", style="dim")
            parts.append(line)
        if ctx.stop_idx == m.idx:
            parts.append(Text.assemble(("■ stop ", "bold black on yellow"),
                                       (f" {literal(ctx.stop_reason or '')}", "yellow"),
                                       (f": “{literal(ctx.stop_text)}”" if ctx.stop_text else "", "yellow")))
        for c in ctx.stops.get(m.idx, []):
            parts.append(stop_candidate_line(c))
        for name in ctx.artifacts.get(m.idx, []):
            parts.append(Text.assemble(("▤ artifact ", "bold green"), (literal(name), "green"),
                                       ("  (o to view)", "dim")))
        for t in self.tags:
            if t.note:
                parts.append(Text.assemble(("✎ ", "cyan"), (f"{literal(t.coder)} on {literal(t.code)}: ", "dim"),
                                           literal(t.note)))
            if t.span_start is not None and t.quote is not None:
                parts.append(Text.assemble(("❝ ", "cyan"), (f"{literal(t.code)}: ", "cyan"),
                                           (literal(t.quote)[:200], "italic")))
            if t.evidence and t.source == "judge" and self.expanded:
                parts.append(Text.assemble(("judge: ", "dim"), (literal(t.evidence), "dim")))
        return Text("\n").join(parts)

    def _body(self) -> Text:
        m = self.message
        shown, offsets = literal_map(m.content)
        body = Text(shown)
        for t in self.tags:
            if t.span_start is not None and t.span_end is not None:
                a, b = shown_span(offsets, t.span_start, t.span_end)
                body.stylize("underline cyan", a, b)
        if self.ctx.stop_idx == m.idx and self.ctx.stop_text:
            needle = literal(self.ctx.stop_text)
            for hit in re.finditer(re.escape(needle), shown, re.IGNORECASE):
                body.stylize("bold black on yellow", hit.start(), hit.end())
        highlight(body, self.ctx.search, "reverse")
        return body
