"""One conversation: a small interpreter over the protocol's steps.

Every completed turn is committed before the next request. On resume the interpreter
walks the same steps again, consuming the stored messages in order instead of calling
the model, so no completed call is ever repeated and the script picks up exactly where
it stopped.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ..analysis.echo import EchoHistory, EchoScore
from ..comparisons import variables as _comparison_variables
from ..kinds import CallPurpose
from ..plan import ConversationSpec
from ..protocol import schema, templates
from ..protocol.models_file import ModelAlias
from ..providers import Reply
from ..store.records import RequestRecord
from ..store.tables import ArtifactRow, CaptureRow, MessageRow, OfferRow, StopCandidateRow, utcnow
from . import stops
from .client import ModelClient
from .events import Emit
from .stop_flow import StopFlow
from .limits import Limits
from .retry import RetryPolicy

ARTIFACT_TOOL = {
    "type": "function",
    "function": {
        "name": "write_artifact",
        "description": "Write a named text file (an artifact). It is kept with this conversation and can be seen later.",
        "parameters": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "File name, e.g. notes.md"},
                "content": {"type": "string", "description": "The full text of the file"},
            },
            "required": ["name", "content"],
        },
    },
}


OFFER_WORDS = {"accept": "accept", "decline": "decline", "unclear": "unclear"}
"""An offer judge's words → the stored classification."""


class Ended(Exception):
    """Unwinds the interpreter when the conversation is over."""

    def __init__(self, reason: str, detail: str | None = None, message_idx: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.message_idx = message_idx


@dataclass
class RunContext:
    """What every conversation of a run shares."""

    run_id: str
    protocol: schema.Protocol
    writer: Any
    """A `runner.store.StoreWriter` (async `add`/`update`)."""
    limits: Limits
    emit: Emit
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sources: dict[str, Any] = field(default_factory=dict)
    """`sources.NAME` for templates: `{"text": ...}`, or a list of them (conversation `seq` picks one)."""
    models: dict[str, ModelAlias] = field(default_factory=dict)
    """The models file's aliases, for models named inside the protocol (an offer's judge)."""
    client: ModelClient | None = None
    """The one model client of the run (built from `limits`, `retry` and `emit` when not given)."""

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = ModelClient(limits=self.limits, retry=self.retry, emit=self.emit)


@dataclass
class Msg:
    """A message of this conversation as the interpreter sees it."""

    role: str
    speaker: str
    content: str
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    cached_tokens: int = 0
    finish_reason: str | None = None
    cache_write_tokens: int = 0
    input_cost: float | None = None
    input_cost_uncached: float | None = None
    aside: str | None = None
    """A pair's check-in: the side it is addressed to (question) or came from (answer); only that
    side sees it, never its partner."""


ASIDE_STEP = "stop.check_in:"
"""Step prefix of a pair's check-in messages: ``stop.check_in:a`` (the side follows the colon)."""


def aside_of(step: str) -> str | None:
    """The side a message belongs to privately (a pair's check-in), from its step."""
    return step[len(ASIDE_STEP):] if step.startswith(ASIDE_STEP) else None


def _from_row(row: MessageRow) -> Msg:
    calls = json.loads(row.tool_calls_json) if row.tool_calls_json else None
    tool_call_id = None
    if row.role == "tool" and row.request_json:
        tool_call_id = RequestRecord.model_validate_json(row.request_json).tool_call_id
    return Msg(
        role=row.role, speaker=row.speaker, content=row.content, tool_calls=calls, tool_call_id=tool_call_id,
        latency_ms=row.latency_ms, ttft_ms=row.ttft_ms, tokens_in=row.tokens_in or 0,
        tokens_out=row.tokens_out or 0, cost=row.cost or 0.0, cached_tokens=row.cached_tokens or 0,
        finish_reason=row.finish_reason, cache_write_tokens=row.cache_write_tokens or 0,
        input_cost=row.input_cost, input_cost_uncached=row.input_cost_uncached, aside=aside_of(row.step or ""),
    )


class Conversation:
    """Runs one `ConversationSpec` to its end, writing every message as it goes."""

    def __init__(
        self,
        ctx: RunContext,
        spec: ConversationSpec,
        conversation_id: str,
        stored: list[MessageRow] | None = None,
        stored_offers: list[OfferRow] | None = None,
        stored_stops: list[StopCandidateRow] | None = None,
    ):
        self.ctx = ctx
        self.p = ctx.protocol
        self.spec = spec
        self.id = conversation_id
        self.msgs: list[Msg] = []
        self.replay = [_from_row(r) for r in (stored or [])]
        self.offers_by_reply = {o.reply_message_idx: o for o in (stored_offers or [])}
        self.choices_by_reply: dict[int, Any] = {}
        """Stored choices by reply idx (set by the driver on resume)."""
        self.turns = 0
        self.captures: dict[str, str] = {}
        self.loop_vars: dict[str, Any] = {}
        self.started = time.monotonic()
        self.stop_armed = self.p.stop is not None and self.p.stop.announced_by is None
        self.pending: list[dict[str, Any]] = []
        """Fields of the `MessageRow`s not yet written (see `_row`)."""
        self.artifacts = 0
        self.context_tokens = 0
        self._window: int | None | bool = False
        self.client: ModelClient = ctx.client  # type: ignore[assignment]  # set by RunContext
        self.vars = {**self.p.vars, **spec.condition.vars}
        self.last_reply_idx = -1
        self.stopping = StopFlow(self, stored_stops)
        self.system = self._system_text()
        self.echo = EchoHistory()
        """Every message so far, for scoring each new reply's echo of its prompts (`MessageRow.echo`)."""
        self._echo_fed = 0

    # ------------------------------------------------------------ variables

    def _window_size(self) -> int | None:
        if self._window is False:
            self._window = self.client.context_window(self.spec.model)
        return self._window  # type: ignore[return-value]

    def telemetry(self) -> dict[str, Any]:
        replies = [m for m in self.msgs if m.role == "assistant"]
        last = replies[-1] if replies else None
        window = self._window_size() if replies else None
        return {
            "last_latency_ms": (last.latency_ms or 0.0) if last else 0.0,
            "last_ttft_ms": (last.ttft_ms or 0.0) if last else 0.0,
            # the model replies' own figures (an experimenter's calls are not the model's state)
            "tokens_in": sum(m.tokens_in for m in replies),
            "tokens_out": sum(m.tokens_out for m in replies),
            "cost_usd": sum(m.cost for m in replies),
            "wall_s": time.monotonic() - self.started,
            "context_tokens": self.context_tokens,
            "context_window": window or 0,
            "context_fill": (self.context_tokens / window) if window else 0.0,
            "turns": self.turns,
        }

    def variables(self, side: str | None = None) -> dict[str, Any]:
        spec = self.spec
        out: dict[str, Any] = {
            **self.vars,
            **comparison_variables(self.p, spec),
            **self.captures,
            **self.loop_vars,
            "model": spec.model_alias,
            "litellm_model": spec.model.model,
            "vendor": spec.model.vendor,
            "condition": spec.condition.name,
            "replicate": spec.replicate,
            "turn": self.turns + 1,
            "reply": [m.content for m in self.msgs if m.role == "assistant"],
            "telemetry": self.telemetry(),
            "sources": {name: (src[spec.seq % len(src)] if isinstance(src, list) and src else src)
                        for name, src in self.ctx.sources.items()},
            "stop_phrase": self.p.stop.phrases[0] if self.p.stop and self.p.stop.phrases else "",
            **self.stopping.variables(),
            "partner": spec.partner_alias or "",
            "side": side or "a",
        }
        return out

    def render(self, source: str, side: str | None = None) -> str:
        return templates.render(source, self.variables(side))

    def test(self, expression: str | None) -> bool:
        return True if not expression else bool(templates.evaluate(expression, self.variables()))

    def _system_text(self) -> str | None:
        cond = self.spec.condition
        if cond.no_system:
            return None
        system = cond.system or self.p.system
        if system is None:
            return None
        return templates.render(system.content, self.variables())

    @property
    def cacheable(self) -> bool:
        system = self.spec.condition.system or self.p.system
        return bool(system and system.cacheable)

    # ------------------------------------------------------------ writing

    def _row(self, msg: Msg, step: str, **extra: Any) -> dict[str, Any]:
        """A `MessageRow`'s fields (written with `StoreWriter.insert`: a SQLModel row object costs
        ~0.3 ms to build, two per turn). Its times are taken now, as the row's default factories would."""
        now = utcnow()
        fields = {
            "conversation_id": self.id, "idx": len(self.msgs), "role": msg.role, "speaker": msg.speaker,
            "step": step, "content": msg.content,
            "tool_calls_json": json.dumps(msg.tool_calls) if msg.tool_calls else None,
            "latency_ms": msg.latency_ms, "ttft_ms": msg.ttft_ms, "tokens_in": msg.tokens_in or None,
            "tokens_out": msg.tokens_out or None, "cost": msg.cost if msg.role == "assistant" else None,
            "started_at": now, "created_at": now,
        }
        fields.update(extra)
        return fields

    def _replaying(self, role: str) -> Msg | None:
        i = len(self.msgs)
        if i < len(self.replay):
            msg = self.replay[i]
            if msg.role != role:
                raise RuntimeError(
                    f"stored message {i} of conversation {self.id} is {msg.role!r}, the protocol expects {role!r}; "
                    "was the protocol changed since the run started?"
                )
            return msg
        return None

    def add_local(self, msg: Msg, step: str, **extra: Any) -> None:
        """Append a message; it is written with the next model reply (or at the end)."""
        stored = self._replaying(msg.role)
        if stored is not None:
            self.msgs.append(stored)
            return
        self.pending.append(self._row(msg, step, **extra))
        self.msgs.append(msg)

    async def flush(self, *more: Any) -> None:
        """Write the pending messages, then `more` (row objects), in one group commit (the messages'
        keys are not needed: they go in without RETURNING)."""
        pending, self.pending = self.pending, []
        if pending or more:
            await self.ctx.writer.write_all([(MessageRow, f) for f in pending], more, keys=False)

    # ------------------------------------------------------------ the script

    async def run(self) -> Ended:
        """Run to the end. Returns how it ended (errors propagate to the driver)."""
        try:
            if self.system is not None:
                self.add_local(Msg("system", "system", self.system), "system")
            if self.p.pair:
                await self.run_pair()
            else:
                await self.steps(self.p.steps, "steps")
            raise Ended("completed")
        except Ended as end:
            await self.flush()
            return end

    async def steps(self, steps: list[Any], path: str, block: dict[str, int] | None = None) -> None:
        for i, step in enumerate(steps):
            here = f"{path}[{i}]"
            if not self.test(getattr(step, "when", None)):
                continue
            if isinstance(step, schema.Say):
                self.stopping.set_closing(step, path == "steps" and i == len(steps) - 1)
                reply = await self.exchange(schema.text_of(step.say), here, step.id)
                if step.capture:
                    await self.capture(step.capture, reply)
            elif isinstance(step, schema.Offer):
                self.stopping.set_closing(step, path == "steps" and i == len(steps) - 1)
                await self.offer(step, here)
            elif isinstance(step, schema.Open):
                await self.open(step, here)
            elif isinstance(step, schema.Repeat):
                await self.repeat(step, here)
            elif isinstance(step, schema.Choose):
                from . import choose

                await choose.run_step(self, step, here)
            if block is not None:
                await self._maybe_break(block)

    async def capture(self, name: str, reply: str) -> None:
        """Keep the last reply under `name` for templates, and record it (once) in the store."""
        self.captures[name] = reply
        idx = self.last_reply_idx
        if idx >= len(self.replay):
            await self.flush(CaptureRow(conversation_id=self.id, name=name, message_idx=idx))

    async def _maybe_break(self, block: dict[str, Any]) -> None:
        brk: schema.BreakEvery | None = block.get("break")
        if brk is None:
            return
        done = self.turns - block["start"] - block["breaks_turns"]
        if done >= brk.turns * (block["breaks"] + 1):
            block["breaks"] += 1
            before = self.turns
            await self.offer(brk.offer, block["path"])
            block["breaks_turns"] += self.turns - before

    async def repeat(self, step: schema.Repeat, path: str) -> None:
        spec = step.repeat
        if spec.over is not None:
            items = spec.over if isinstance(spec.over, list) else templates.evaluate(spec.over, self.variables())
            passes: Any = list(items)
        elif spec.times is not None:
            passes = list(range(1, spec.times + 1))
        else:
            passes = list(range(1, spec.max + 1))
        block = {"break": spec.break_every, "start": self.turns, "breaks": 0, "breaks_turns": 0,
                 "path": f"{path}.repeat.break_every.offer"}
        for n, item in enumerate(passes, start=1):
            self.loop_vars[spec.as_] = item
            self.loop_vars["index"] = n
            await self.steps(spec.steps, f"{path}.repeat.steps", block)
            if spec.until and self.test(spec.until):
                break

    async def open(self, step: schema.Open, path: str) -> None:
        spec = step.open
        block = {"break": spec.break_every, "start": self.turns, "breaks": 0, "breaks_turns": 0,
                 "path": f"{path}.open.break_every.offer"}
        for _ in range(spec.turns):
            self.stopping.closing = False
            await self.exchange(schema.text_of(spec.nudge), f"{path}.open", step.id, via_experimenter=False)
            await self._maybe_break(block)

    async def offer(self, step: schema.Offer, path: str) -> None:
        offer_idx = len(self.msgs)
        reply = await self.exchange(schema.text_of(step.offer), path, step.id)
        if step.capture:
            await self.capture(step.capture, reply)
        reply_idx = self.last_reply_idx
        outcome = await self.classify(step, reply, path, offer_idx, reply_idx)
        accepted = outcome == "accept" or (outcome == "unclear" and step.if_unclear == "accepted")
        if accepted:
            await self.steps(step.if_accepted, f"{path}.if_accepted")
        else:
            if step.on_decline == "end" and outcome == "decline":
                raise Ended("declined", f"{step.label}: {reply[:200]}", reply_idx)
            await self.steps(step.if_declined, f"{path}.if_declined")

    async def classify(self, step: schema.Offer, reply: str, path: str, offer_idx: int, reply_idx: int) -> str:
        stored = self.offers_by_reply.get(reply_idx)
        if stored is not None:
            return stored.classification
        if step.classify.judge:
            outcome, evidence, method = await self._judge(step, reply)
        else:
            outcome, evidence = classify_by_patterns(step.classify, reply)
            method = "patterns"
        await self.flush(
            OfferRow(conversation_id=self.id, step=path, label=step.label, offer_message_idx=offer_idx,
                     reply_message_idx=reply_idx, classification=outcome, method=method, evidence=evidence)
        )
        return outcome

    async def _judge(self, step: schema.Offer, reply: str) -> tuple[str, str, str]:
        from . import verdict

        judge = verdict.resolve(self, step.classify.judge or "", "offer judge")
        if judge.is_subject:
            raise ValueError(f"the offer judge {judge.alias!r} is the subject of this conversation; "
                             "a model never classifies itself")
        offer_text = next(m.content for m in reversed(self.msgs) if m.role == "user")
        prompt = ("Someone made an offer, and got a reply. Classify the reply as accept, decline or unclear.\n\n"
                  f"Offer:\n{offer_text}\n\nReply:\n{reply}\n\n"
                  + verdict.instruction(["accept", "decline", "unclear"]))
        said = await verdict.ask(self, judge, prompt, OFFER_WORDS, purpose="offer_judge")
        return said.word, said.evidence, judge.method

    # ------------------------------------------------------------ turns

    async def exchange(self, template: str, step: str, step_id: str | None, via_experimenter: bool = True) -> str:
        """A user turn (scripted, or written by the experimenter), then the model's reply."""
        if step_id is not None and self.p.stop and self.p.stop.announced_by == step_id:
            self.stop_armed = True
        await self.stopping.before_user_turn()  # a check-in, every K turns
        if self.turns >= self.p.max_turns:
            raise Ended("max_turns")  # before the user turn: never store a turn that was not sent
        if self._replaying("user") is not None:
            self.add_local(Msg("user", "user", ""), step)
        elif self.p.experimenter and via_experimenter:
            await self.experimenter_turn(self.render(template), step)
        else:
            self.add_local(Msg("user", "user", self.render(template)), step)
        return await self.model_turn(step)

    def view(self, side: str = "model") -> list[dict[str, Any]]:
        """The message list as the model on `side` sees it."""
        out: list[dict[str, Any]] = []
        pair = self.p.pair
        for m in self.msgs:
            if m.aside is not None and m.aside != side:
                continue  # a check-in of the partner's: private to it
            if pair is not None and m.aside is None and m.role == "user" and m.speaker == "user" \
                    and side != pair.first:
                continue  # the opener is shown to the side that speaks first only
            if m.role == "system":
                out.append({"role": "system", "content": m.content})
            elif m.role == "tool":
                out.append({"role": "tool", "content": m.content, "tool_call_id": m.tool_call_id})
            elif m.role == "assistant" and (side == "model" or m.speaker == side):
                d: dict[str, Any] = {"role": "assistant", "content": m.content}
                if m.tool_calls:
                    d["tool_calls"] = m.tool_calls
                    if not m.content:
                        # None, not "": litellm would replace an empty text with a placeholder
                        # sentence the model never wrote ("[System: Empty message content ...]")
                        d["content"] = None
                out.append(d)
            else:
                out.append({"role": "user", "content": m.content})
        return out

    async def model_turn(self, step: str, side: str = "model") -> str:
        model = self.spec.model if side in ("model", "a") else (self.spec.partner or self.spec.model)
        alias = self.spec.model_alias if side in ("model", "a") else (self.spec.partner_alias or self.spec.model_alias)
        tools = ([ARTIFACT_TOOL] if self.p.tools.artifact else []) + self.stopping.tools() or None
        while True:
            if self.turns >= self.p.max_turns:
                raise Ended("max_turns")
            stored = self._replaying("assistant")
            if stored is not None:
                self.msgs.append(stored)
                self.turns += 1
                msg = stored
            else:
                # the conversation (each side of a pair sees its own history) names the prompt cache
                cache_key = self.id if side == "model" else f"{self.id}:{side}"
                reply = await self._call(model, alias, self.view(side), tools=tools, cache_key=cache_key)
                msg = Msg("assistant", side, reply.content, tool_calls=reply.tool_calls or None,
                          latency_ms=reply.latency_ms, ttft_ms=reply.ttft_ms, tokens_in=reply.tokens_in,
                          tokens_out=reply.tokens_out, cost=reply.cost or 0.0,
                          cached_tokens=reply.cached_tokens or 0, finish_reason=reply.finish_reason,
                          cache_write_tokens=reply.cache_write_tokens or 0, input_cost=reply.input_cost,
                          input_cost_uncached=reply.input_cost_uncached, aside=aside_of(step))
                self.context_tokens = reply.tokens_in + reply.tokens_out
                record = RequestRecord.model_validate({
                    **reply.request, "context_window": self._window_size(), "empty": True if reply.empty else None,
                    "attempts": reply.attempts if reply.attempts > 1 else None})
                scored = self._echo_of(side, reply.content, msg.aside)
                row = self._row(msg, step, reasoning=reply.reasoning, finish_reason=reply.finish_reason,
                                cached_tokens=reply.cached_tokens or None, request_id=reply.request_id,
                                request_json=record.dump(), cache_write_tokens=reply.cache_write_tokens or None,
                                cache_ttl=reply.cache_ttl, input_cost=reply.input_cost,
                                input_cost_uncached=reply.input_cost_uncached, echo=scored.echo,
                                echo_unigram=scored.echo_words, echo_bigrams=scored.bigrams, **_sent(reply))
                self.msgs.append(msg)
                self.turns += 1
                self.pending.append(row)
                await self.flush()  # committed before the next request
            self.last_reply_idx = len(self.msgs) - 1
            if _is_empty(msg) and self.p.on_empty == "end":
                raise Ended("empty_reply", f"empty reply (finish reason {msg.finish_reason})", len(self.msgs) - 1)
            if msg.tool_calls and tools:
                await self._run_tools(msg, step)
                await self.stopping.after_tools(self.last_reply_idx)
                continue
            self.stopping.on_scripted_reply(side)
            await self.stopping.on_reply(msg.content, self.last_reply_idx)
            return msg.content

    def _echo_of(self, side: str, content: str, aside: str | None = None) -> EchoScore:
        """Score a new reply (before it is appended) against the messages it read (`analysis.echo`): a
        pair's check-in (`aside`) is a prompt of its own side only, as the side's view shows it."""
        for m in self.msgs[self._echo_fed:]:
            self.echo.add(m.role, m.speaker, m.content, aside=m.aside)
        scored = self.echo.reply(side, content, aside)
        self._echo_fed = len(self.msgs) + 1  # the reply itself, about to be appended, is in the history
        return scored

    async def _run_tools(self, msg: Msg, step: str) -> None:
        limits = self.p.tools.artifact
        artifact_rows = []
        reply_idx = len(self.msgs) - 1
        for call in msg.tool_calls or []:
            fn = call.get("function", {})
            if self.stopping.is_end_tool(fn.get("name")):
                result, artifact = self.stopping.on_tool_call(call, reply_idx), None
            elif limits is None:
                result, artifact = f"error: unknown tool {fn.get('name')!r}", None
            else:
                result, artifact = _write_artifact(fn.get("name"), fn.get("arguments") or "{}", limits, self.artifacts)
            if self._replaying("tool") is None and artifact is not None:
                self.artifacts += 1
                artifact_rows.append(ArtifactRow(conversation_id=self.id, message_idx=reply_idx,
                                                 name=artifact[0], content=artifact[1]))
            elif artifact is not None:
                self.artifacts += 1
            self.add_local(Msg("tool", "tool", result, tool_call_id=call.get("id")), step,
                           request_json=RequestRecord(tool_call_id=call.get("id")).dump())
        await self.flush(*artifact_rows)

    async def _call(self, model: ModelAlias, alias: str, messages: list[dict[str, Any]],
                    tools: list[dict[str, Any]] | None = None, purpose: CallPurpose = "turn",
                    cache_key: str | None = None) -> Reply:
        """One call through the run's client (limits, retry, events, cost, audit live there).
        `cache_key` marks a turn of a growing conversation for the vendor's prompt cache (never a
        response cache: every call is a new request)."""
        overrides = self.p.params.model_dump(exclude_none=True)
        if self.spec.seed is not None:
            overrides["seed"] = self.spec.seed
        return await self.client.chat(model, messages, alias=alias, owner=self.id, purpose=purpose,
                                      overrides=overrides, tools=tools, cacheable_system=self.cacheable,
                                      cache_key=cache_key)

    # ------------------------------------------------------------ roles

    async def experimenter_turn(self, planned: str, step: str) -> None:
        exp = self.p.experimenter
        assert exp is not None and self.spec.experimenter is not None
        transcript = "\n\n".join(
            f"[{'You' if m.role == 'user' else 'Participant'}] {m.content}"
            for m in self.msgs if m.role in ("user", "assistant")
        ) or "(nothing yet)"
        messages = [
            {"role": "system", "content": self.render(schema.text_of(exp.instructions))},
            {"role": "user", "content": (
                f"Transcript so far:\n{transcript}\n\nYour next planned message:\n{planned}\n\n"
                "Write the message you will send now: the planned one in your own words, or one neutral follow-up. "
                f"Reply with the message text only. To end the conversation instead, reply only with {exp.end_token}."
            )},
        ]
        reply = await self._call(self.spec.experimenter, self.spec.experimenter_alias or "experimenter", messages,
                                 purpose="experimenter")
        text = reply.content.strip()
        if text.startswith(exp.end_token) or text == "":
            await self.flush()
            raise Ended("experimenter_ended", text[:200], len(self.msgs) - 1)
        self.add_local(
            Msg("user", "experimenter", text, latency_ms=reply.latency_ms, ttft_ms=reply.ttft_ms,
                tokens_in=reply.tokens_in, tokens_out=reply.tokens_out, cost=reply.cost or 0.0),
            step, request_json=RequestRecord.model_validate({**reply.request, "planned": planned}).dump(),
            cached_tokens=reply.cached_tokens, **_sent(reply),
        )
        # the experimenter's cost is its own: keep it out of the subject's totals in the row's `cost`
        self.pending[-1]["cost"] = reply.cost
        await self.flush()  # committed now: a resume never repeats a completed experimenter call

    async def run_pair(self) -> None:
        pair = self.p.pair
        assert pair is not None
        first = pair.first
        other = "b" if first == "a" else "a"
        self.stop_armed = self.p.stop is not None
        if self._replaying("user") is not None:
            self.add_local(Msg("user", "user", ""), "pair.opener")
        else:
            self.add_local(Msg("user", "user", self.render(schema.text_of(pair.opener), first)), "pair.opener")
        side = first
        while True:
            await self.model_turn(f"pair.{side}", side)
            await self.stopping.after_pair_reply(side)  # a check-in to this side, every K of its replies
            side = other if side == first else first


def comparison_variables(protocol: schema.Protocol, spec: ConversationSpec) -> dict[str, Any]:
    """`a`, `b`, `label_a`, `label_b`, `a_id`, `b_id` of the conversation's planned comparison, if any."""
    return _comparison_variables(protocol.preferences, spec.comparison) if spec.comparison else {}


def _sent(reply: Reply) -> dict[str, Any]:
    """`MessageRow.started_at`: when the request was sent (the client stamps it before the call)."""
    return {"started_at": reply.started_at} if reply.started_at is not None else {}


def _is_empty(msg: Msg) -> bool:
    return msg.role == "assistant" and not msg.content.strip() and not msg.tool_calls


def classify_by_patterns(classifier: schema.Classifier, reply: str) -> tuple[str, str]:
    """accept / decline / unclear, with the matched words as evidence."""
    accept = _first_match(classifier.accept, reply)
    decline = _first_match(classifier.decline, reply)
    if decline and not accept:
        return "decline", decline
    if accept and not decline:
        return "accept", accept
    if accept and decline:
        return "unclear", f"both: {accept!r} / {decline!r}"
    return "unclear", ""


def _first_match(patterns: list[str], text: str) -> str | None:
    best: tuple[int, str] | None = None
    for p in patterns:
        m = re.search(p, text, flags=re.IGNORECASE)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), m.group(0))
    return best[1] if best else None


def match_stop(stop: schema.Stop, content: str) -> str | None:
    """The stop phrase as used in `content` under the rule's match mode, or None (see `stops.detect`)."""
    used = stops.first_used(stops.detect(content, stop.phrases or [], stop.match, stop.case_sensitive))
    return used.text if used is not None else None


def _write_artifact(name: str | None, arguments: str, limits: schema.ArtifactTool,
                    count: int) -> tuple[str, tuple[str, str] | None]:
    if name != "write_artifact":
        return f"error: unknown tool {name!r}; the only tool is write_artifact", None
    try:
        args = json.loads(arguments)
        fname, content = str(args["name"]), str(args["content"])
    except (ValueError, KeyError, TypeError):
        return "error: write_artifact takes a JSON object with `name` and `content`", None
    if count >= limits.max_files:
        return f"error: at most {limits.max_files} files may be written", None
    if len(content.encode()) > limits.max_bytes:
        return f"error: a file may hold at most {limits.max_bytes} bytes", None
    fname = fname.strip()[:200] or "untitled"
    return f"saved {fname} ({len(content)} characters)", (fname, content)
