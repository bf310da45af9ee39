"""The stop channels of one conversation: phrase, end tool, check-in; judge and confirmation.

`Conversation` calls the hooks below at fixed points (after each model reply, on tool calls,
before each scripted user turn); the decisions themselves are the pure functions of
`runner.engine.stops`. Every candidate is written as a `StopCandidateRow` (detection 1, the
run's own), used or rejected, so false stops and missed stops can be audited.
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any

from ..protocol import schema, templates
from ..store.records import StopReviewPayload
from ..store.tables import StopCandidateRow, SuggestionRow
from . import stops

if TYPE_CHECKING:
    from .conversation import Conversation

END_TOOL_RESULT = "The conversation has ended."
HYPOTHETICAL_TOOL_RESULT = "Noted. (This is hypothetical: the conversation goes on.)"

REASONS = {"phrase": "stop_phrase", "tool": "stop_tool", "check_in": "stop_check_in"}
"""Stop reason of a conversation ended by each channel."""


def end_tool(rule: schema.Stop) -> dict[str, Any]:
    """The OpenAI-style definition of the end tool."""
    return {
        "type": "function",
        "function": {
            "name": rule.tool.name,
            "description": rule.tool.description,
            "parameters": {
                "type": "object",
                "properties": {"reason": {"type": "string", "description": "Why you are ending it (optional)"}},
                "required": [],
            },
        },
    }


def option_order(protocol: str, seq: int, seed: int | None, options: tuple[str, str]) -> tuple[list[str], str]:
    """The check-in options in this conversation's order, and the seed that chose it (stored)."""
    key = f"check_in:{protocol}:{seq}:{seed}"
    order = list(options)
    random.Random(key).shuffle(order)
    return order, key


REVIEW_CODE = "stop:candidate"
"""The code of a stop candidate in the review queue (accept: it is a stop; reject: it is not)."""


def needs_review(row: StopCandidateRow) -> bool:
    """Phrase and own-words candidates go to the review queue, and check-in answers that were unclear."""
    return row.stop_channel in ("phrase", "own_words") or (row.stop_channel == "check_in" and row.decision == "ambiguous")


def review_item(row: StopCandidateRow) -> SuggestionRow:
    """The review-queue item of a candidate: a person confirms (accept) or rejects it."""
    payload = {"detection": row.detection, "channel": row.stop_channel, "decision": row.decision, "rule": row.rule,
               "phrase": row.phrase, "match": row.match, "text": row.text, "evidence": row.evidence,
               "span": [row.span_start, row.span_end], "prompted": row.prompted, "counted": row.counted,
               "judge": row.judge, "judge_evidence": row.judge_evidence}
    return SuggestionRow(kind="stop", conversation_id=row.conversation_id, message_idx=row.message_idx,
                         code=REVIEW_CODE, definition=f"Is this a stop? The detector said {row.decision} ({row.rule}).",
                         payload_json=StopReviewPayload.model_validate(payload).dump())


class StopFlow:
    """Stop state of one conversation."""

    def __init__(self, conv: Conversation, stored: list[StopCandidateRow] | None = None):
        self.conv = conv
        self.rule = conv.p.stop
        cond = conv.spec.condition
        if cond.stop_channels is not None:
            self.channels: tuple[str, ...] = tuple(cond.stop_channels)
        else:
            self.channels = self.rule.offered if self.rule else ()
        self.channel: str | None = None
        """Channel of the first stop (stored on the conversation)."""
        self.prompted: bool | None = None
        """Whether the first stop answered a closing turn."""
        self.closing = False
        """Whether the user turn being answered signals the end."""
        self.suspended = False
        self.script_turns = 0
        self.last_check_in = 0
        self.side_turns: dict[str, int] = {}
        """A pair: each side's own replies so far (outside check-ins)."""
        self.side_checked: dict[str, int] = {}
        """A pair: each side's reply count at its last check-in."""
        self.confirm_asked = False
        self._pending_tool: StopCandidateRow | None = None
        self._extra: list[StopCandidateRow] = []
        self.stored = {(r.message_idx, r.stop_channel, r.span_start): r for r in (stored or []) if r.detection == 1}
        ci = self.rule.check_in if self.rule else None
        if ci is not None:
            self.order, self.order_seed = option_order(conv.p.name, conv.spec.seq, conv.spec.seed,
                                                       (ci.continue_option, ci.stop_option))
        else:
            self.order, self.order_seed = [], ""

    # ------------------------------------------------------------ variables and tools

    def variables(self) -> dict[str, Any]:
        return {"stop_channels": list(self.channels), "stop_exit": self.rule.exit if self.rule else "real"}

    def tools(self) -> list[dict[str, Any]]:
        return [end_tool(self.rule)] if self.rule is not None and "tool" in self.channels else []

    def is_end_tool(self, name: str | None) -> bool:
        return self.rule is not None and "tool" in self.channels and name == self.rule.tool.name

    def set_closing(self, step: Any, last_top_level: bool) -> None:
        """Called before a scripted user turn: does it signal the end?"""
        explicit = getattr(step, "closing", None)
        self.closing = bool(explicit) if explicit is not None else last_top_level

    def _replayed(self, idx: int) -> bool:
        return idx < len(self.conv.replay)

    # ------------------------------------------------------------ phrase (and own words)

    async def on_reply(self, content: str, idx: int) -> None:
        """After every model reply: record candidate phrases, and stop on the first used one."""
        rule = self.rule
        if self.suspended or (rule is None and self.conv.spec.condition.stop_channels != []):
            return
        if rule is not None and "phrase" in self.channels and rule.phrases:
            cands = stops.detect(content, rule.phrases, rule.match, rule.case_sensitive)
            channel = "phrase"
            if not self.conv.stop_armed:
                cands = [stops.shifted(c, "rejected", "not_announced",
                                       f"before the announcing step ({c.decision}, {c.rule}); {c.evidence}")
                         for c in cands]
        else:
            cands = stops.own_words(content)
            channel = "own_words"
        if not cands:
            return
        rows: list[StopCandidateRow] = []
        for c in cands:
            judge = judge_evidence = None
            if c.decision == "ambiguous" and channel == "phrase" and rule is not None and rule.confirm == "judge":
                c, judge, judge_evidence = await self._judge(c, content, idx)
            rows.append(StopCandidateRow(
                conversation_id=self.conv.id, message_idx=idx, stop_channel=channel, phrase=c.phrase,
                match=rule.match if rule is not None and channel == "phrase" else "used", decision=c.decision,
                rule=c.rule,
                span_start=c.start, span_end=c.end, text=c.text, evidence=c.evidence, judge=judge,
                judge_evidence=judge_evidence, prompted=self.closing,
            ))
        used = next((r for r in rows if r.decision == "used" and r.stop_channel == "phrase"), None)
        others = [r for r in rows if r is not used]
        if not self._replayed(idx):
            await self._write(*others)
        if used is not None:
            await self._stop(used, "phrase", used.text, idx)

    async def _judge(self, c: stops.Candidate, content: str, idx: int) -> tuple[stops.Candidate, str | None, str]:
        stored = self.stored.get((idx, "phrase", c.start))
        if stored is not None and stored.judge:
            return stops.shifted(c, stored.decision, stored.rule, stored.evidence), stored.judge, \
                stored.judge_evidence or ""  # type: ignore[arg-type]
        from . import verdict

        rule = self.rule
        assert rule is not None and rule.judge
        judge = verdict.resolve(self.conv, rule.judge, "stop judge")
        if judge.is_subject:
            return (stops.shifted(c, "ambiguous", "judge_unclear",
                                  f"not asked: the judge would be the subject model; {c.evidence}"), None,
                    "the judge is the subject model; a model never judges its own stop")
        said = await verdict.ask(self.conv, judge, stops.judge_prompt(c, content), stops.JUDGE_WORDS,
                                 purpose="stop_judge")
        decided = {"stop": ("used", "judge_used"), "mention": ("rejected", "judge_rejected")}.get(
            said.word, ("ambiguous", "judge_unclear"))
        return (stops.shifted(c, decided[0], decided[1], f"judge said {said.word}; was {c.rule}: {c.evidence}"),  # type: ignore[arg-type]
                judge.method, said.evidence)

    # ------------------------------------------------------------ tool

    def on_tool_call(self, call: dict[str, Any], idx: int) -> str:
        """An end-tool call: record it (written after the tool results), answer the model."""
        fn = call.get("function", {})
        args = fn.get("arguments") or "{}"
        try:
            parsed = json.loads(args) if isinstance(args, str) else args
        except ValueError:
            parsed = None
        reason = parsed.get("reason") if isinstance(parsed, dict) else None
        hypothetical = self.rule is not None and self.rule.hypothetical("tool")
        row = StopCandidateRow(
            conversation_id=self.conv.id, message_idx=idx, stop_channel="tool", phrase=fn.get("name") or "",
            decision="used", rule="tool_call", text=args if isinstance(args, str) else json.dumps(args),
            evidence=f"called {fn.get('name')}" + (f" with reason: {reason}" if reason else " (no reason given)"),
            prompted=self.closing,
        )
        if self.suspended:
            row.evidence += " (during a check-in or confirmation; not acted on)"
            self._extra.append(row)
        elif self._pending_tool is None:
            self._pending_tool = row
        return HYPOTHETICAL_TOOL_RESULT if hypothetical or self.suspended else END_TOOL_RESULT

    async def after_tools(self, idx: int) -> None:
        """After the tool results of one reply are in: act on an end-tool call."""
        extra, self._extra = self._extra, []
        if extra and not self._replayed(idx):
            await self._write(*extra)
        row, self._pending_tool = self._pending_tool, None
        if row is not None:
            await self._stop(row, "tool", row.evidence, idx)

    # ------------------------------------------------------------ check-in

    def on_scripted_reply(self, side: str = "model") -> None:
        if not self.suspended:
            self.script_turns += 1
            self.side_turns[side] = self.side_turns.get(side, 0) + 1

    def _check_in_rule(self) -> Any:
        rule = self.rule
        ci = rule.check_in if rule else None
        if ci is None or "check_in" not in self.channels or self.suspended:
            return None
        return ci

    async def before_user_turn(self) -> None:
        """Before a scripted user turn: ask the check-in question when K turns have passed."""
        ci = self._check_in_rule()
        if ci is None or self.script_turns == 0 or self.script_turns % ci.every \
                or self.script_turns == self.last_check_in:
            return
        self.last_check_in = self.script_turns
        await self._check_in(ci, "stop.check_in", "model", f"check-in after {self.script_turns} turns")

    async def after_pair_reply(self, side: str) -> None:
        """A pair, after `side` spoke: after every K of that side's own replies, ask it the check-in
        question privately, before its partner answers (the partner never sees the question or the
        answer, and the side's next request still ends with the partner's turn). Either side choosing
        to stop ends the conversation."""
        ci = self._check_in_rule()
        n = self.side_turns.get(side, 0)
        if ci is None or n == 0 or n % ci.every or self.side_checked.get(side) == n:
            return
        self.side_checked[side] = n
        from .conversation import ASIDE_STEP

        await self._check_in(ci, f"{ASIDE_STEP}{side}", side, f"check-in to side {side} after {n} of its replies")

    async def _check_in(self, ci: Any, step: str, side: str, when: str) -> None:
        conv = self.conv
        if conv.turns >= conv.p.max_turns:
            return
        from .conversation import Msg, aside_of

        text = templates.render(schema.text_of(ci.question),
                                {**conv.variables(), "options": self.order, "tag": ci.tag})
        conv.add_local(Msg("user", "user", text, aside=aside_of(step)), step)
        self.suspended = True
        try:
            reply = await conv.model_turn(step, side)
        finally:
            self.suspended = False
        idx = conv.last_reply_idx
        answer, evidence = stops.check_in_answer(reply, ci.continue_option, ci.stop_option, ci.tag)
        decision, rule_name = {"stop": ("used", "chose_stop"), "continue": ("rejected", "chose_continue")}.get(
            answer, ("ambiguous", "unclear"))
        row = StopCandidateRow(
            conversation_id=conv.id, message_idx=idx, stop_channel="check_in",
            phrase={"stop": ci.stop_option, "continue": ci.continue_option}.get(answer, ""),
            decision=decision, rule=rule_name, text=evidence,  # type: ignore[arg-type]
            evidence=f"{when}; options shown as {' / '.join(self.order)}; answer: {evidence}",
            options_json=json.dumps({"order": self.order, "seed": self.order_seed}), prompted=False,
        )
        if decision == "used":
            await self._stop(row, "check_in", evidence, idx)
        elif not self._replayed(idx):
            await self._write(row)

    # ------------------------------------------------------------ stopping

    async def _stop(self, row: StopCandidateRow, channel: str, detail: str, idx: int) -> None:
        """A used stop: count it, confirm it if asked to, then end (unless hypothetical)."""
        from .conversation import Ended, Msg

        rule = self.rule
        assert rule is not None
        conv = self.conv
        first = self.channel is None
        row.counted = first
        hypothetical = rule.hypothetical(channel)
        row.hypothetical = hypothetical
        if first:
            self.channel, self.prompted = channel, row.prompted
        if not hypothetical and rule.then == "confirm" and not self.confirm_asked and conv.turns < conv.p.max_turns:
            self.confirm_asked = True
            conv.add_local(Msg("user", "user", templates.render(schema.text_of(rule.confirm_question),
                                                                 conv.variables())), "stop.confirm")
            self.suspended = True
            try:
                reply = await conv.model_turn("stop.confirm")
            finally:
                self.suspended = False
            answer, evidence = stops.confirm_answer(reply)
            row.confirm_answer, row.confirm_message_idx, row.confirm_evidence = answer, conv.last_reply_idx, evidence
            if answer == "no":
                row.counted = False
                if first:
                    self.channel = self.prompted = None
                if not self._replayed(idx):
                    await self._write(row)
                return
        if not self._replayed(idx):
            await self._write(row)
        if not hypothetical:
            raise Ended(REASONS[channel], detail[:500], idx)

    async def _write(self, *rows: StopCandidateRow) -> None:
        await self.conv.flush(*rows, *(review_item(r) for r in rows if needs_review(r)))

