"""Drive many conversations at once with bounded concurrency.

A slot is acquired before a task is spawned (backpressure: 10,000 conversations are
never all created at once). A conversation that fails after its retry budget ends with
`error:<kind>` and the run goes on. Cancellation (Ctrl-C) propagates; the committed turns
stay, and `latitude resume` picks the conversation up.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, TypeVar

from ..plan import ConversationSpec, Plan
from ..store.tables import ConversationRow, MessageRow, OfferRow, RunRow, StopCandidateRow, utcnow
from .conversation import Conversation, Ended, RunContext
from .events import ConversationFinished, ConversationStarted, RunStarted
from ..kinds import error_reason
from ..store.records import ConversationParams
from .retry import classify

T = TypeVar("T")


def new_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class Target:
    """A conversation to drive, with what was already stored of it (resume)."""

    spec: ConversationSpec
    conversation_id: str
    messages: list[MessageRow] = field(default_factory=list)
    offers: list[OfferRow] = field(default_factory=list)
    stops: list[StopCandidateRow] = field(default_factory=list)
    """Stop candidates already recorded (a resume reuses a judge's verdicts instead of asking again)."""
    choices: list[Any] = field(default_factory=list)
    """Stored `ChoiceRow`s (resume: a stored choice is never classified again)."""
    shared: int = 0
    """A fork: messages ``#0..#shared-1`` are copies of its parent's (replayed, never sent); their
    tokens and cost were the parent's and are not counted again in this conversation's totals."""


def conversation_fields(run_id: str, spec: ConversationSpec) -> dict[str, Any]:
    """The fields a new conversation's row is given (the rest take the table's defaults)."""
    return dict(
        id=new_id(), run_id=run_id, seq=spec.seq, model_alias=spec.model_alias, litellm_model=spec.model.model,
        vendor=spec.model.vendor, simulated=spec.model.simulated or bool(spec.partner and spec.partner.simulated),
        condition=spec.condition.name, replicate=spec.replicate,
        params_json=json.dumps(ConversationParams(
            sampling={**spec.model.sampling(), "seed": spec.seed}, vars=spec.condition.vars,
            comparison=spec.comparison.to_json() if spec.comparison else None).model_dump(exclude_none=True),
            default=str),
        kind=spec.kind, partner_alias=spec.partner_alias, partner_model=spec.partner.model if spec.partner else None,
        status="pending",
    )


def conversation_row(run_id: str, spec: ConversationSpec) -> ConversationRow:
    return ConversationRow(**conversation_fields(run_id, spec))


def conversation_values(run_id: str, spec: ConversationSpec) -> dict[str, Any]:
    """`conversation_row(run_id, spec).model_dump()` without building the row (a table-class
    instance costs ~0.2 ms: 2 s before the first request of a 10,000-conversation run)."""
    fields = conversation_fields(run_id, spec)
    defaults, factories = _conversation_defaults()
    values = dict(defaults)
    for name, factory in factories.items():
        if name not in fields:
            values[name] = factory()
    values.update(fields)
    return values


_DEFAULTS: tuple[dict[str, Any], dict[str, Callable[[], Any]]] | None = None


def _conversation_defaults() -> tuple[dict[str, Any], dict[str, Callable[[], Any]]]:
    """`ConversationRow`'s field defaults and default factories, read once from its model fields."""
    global _DEFAULTS
    if _DEFAULTS is None:
        from pydantic_core import PydanticUndefined

        defaults: dict[str, Any] = {}
        factories: dict[str, Callable[[], Any]] = {}
        for name, info in ConversationRow.model_fields.items():
            if info.default_factory is not None:
                factories[name] = info.default_factory  # type: ignore[assignment]
            elif info.default is not PydanticUndefined:
                defaults[name] = info.default
        _DEFAULTS = defaults, factories
    return _DEFAULTS


_SECRET_NAME = re.compile(r"(API_KEY|_KEY|_TOKEN|SECRET)$")


def scrub(text: str, key_vars: Iterable[str | None] = ()) -> str:
    """Remove the value of every key-like environment variable, and of the variables
    named in `key_vars` (a models file's `api_key_env`, whatever its name), from `text`."""
    named = {n for n in key_vars if n}
    for name, value in os.environ.items():
        if value and len(value) >= 8 and (_SECRET_NAME.search(name) or name in named) and value in text:
            text = text.replace(value, "***")
    return text


async def run_bounded(items: Iterable[T], work: Callable[[T], Awaitable[Any]], max_in_flight: int) -> None:
    """Run `work(item)` for every item, at most `max_in_flight` at once. A slot is acquired
    before a task is spawned (backpressure); Ctrl-C cancels every task."""
    slots = asyncio.Semaphore(max(1, max_in_flight))
    async with asyncio.TaskGroup() as tg:
        for item in items:
            await slots.acquire()
            task = tg.create_task(work(item))
            task.add_done_callback(lambda _t: slots.release())


async def run_targets(ctx: RunContext, targets: Iterable[Target], max_in_flight: int) -> Counter[str]:
    """Run every target; returns a count of final statuses."""
    statuses: Counter[str] = Counter()
    batches = ctx.client.batches if ctx.client is not None else None
    if batches is None:
        await run_bounded(targets, lambda target: _guarded(ctx, target, statuses), max_in_flight)
        return statuses
    # A batch run drives its conversations in groups of at most `batch_in_flight()`: every
    # conversation of a group is a live caller from the start, so a wave goes out when each of
    # them waits on one; the next group starts when the whole group has ended (a bound on memory:
    # each in-flight conversation holds its state, its coroutine and its request until the reply).
    targets = list(targets)
    cap = max(1, min(max_in_flight, batch_in_flight()))
    for first in range(0, len(targets), cap):
        group = targets[first:first + cap]
        for _ in group:
            batches.enter()
        await run_bounded(group, lambda target: _guarded(ctx, target, statuses), cap)
        # a finished conversation's state is cyclic garbage (frames, futures, tracebacks) in the
        # oldest generation, which the run's tuned collector (`gctune`) rarely walks: free the
        # group's before the next one is spawned, or every group's would add up
        gc.collect()
    return statuses


BATCH_IN_FLIGHT_DEFAULT = 25_000
"""Conversations of a batch run in flight at once (override with ``LATITUDE_BATCH_IN_FLIGHT``).
Each costs ~25 KB of RSS while in flight; at 25,000 a 100,000-conversation run peaks at ~0.8 GiB
and goes out as four groups of 25,000, one after the other (at 50,000, OpenAI's per-batch limit:
two groups, ~1.3 GiB)."""


def batch_in_flight() -> int:
    """`LATITUDE_BATCH_IN_FLIGHT` (a positive integer), or `BATCH_IN_FLIGHT_DEFAULT`."""
    raw = os.environ.get("LATITUDE_BATCH_IN_FLIGHT", "").strip()
    if not raw:
        return BATCH_IN_FLIGHT_DEFAULT
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"LATITUDE_BATCH_IN_FLIGHT: expected a positive integer, got {raw!r}")
    return value


async def _guarded(ctx: RunContext, target: Target, statuses: Counter[str]) -> None:
    spec = target.spec
    batches = ctx.client.batches if ctx.client is not None else None
    try:  # whatever happens, a batch run's collector stops counting this conversation as a live caller
        conv = Conversation(ctx, spec, target.conversation_id, target.messages, target.offers, target.stops)
        conv.choices_by_reply = {c.message_idx: c for c in target.choices}
        ctx.emit(ConversationStarted(conv.id, spec.model_alias))
        await _drive_one(ctx, target, conv, statuses)
    finally:
        if batches is not None:
            batches.leave()  # entered by run_targets


async def _drive_one(ctx: RunContext, target: Target, conv: Conversation, statuses: Counter[str]) -> None:
    spec = target.spec
    # a resumed conversation (pending, cut off, or cancelled) is running again; its start time stays
    started = {} if target.messages else {"started_at": utcnow()}
    await ctx.writer.update(ConversationRow, conv.id, status="running", **started)
    status, detail, idx = "done", None, None
    try:
        end: Ended = await conv.run()
        reason, detail, idx = end.reason, end.detail, end.message_idx
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # one conversation's failure never stops the run
        kind = classify(exc)
        models = [spec.model, spec.partner, spec.experimenter, *ctx.models.values()]
        key_vars = [m.api_key_env for m in models if m is not None]
        status, reason, detail = "error", error_reason(kind), scrub(f"{type(exc).__name__}: {exc}", key_vars)[:2000]
        try:
            await conv.flush()
        except Exception:
            pass
    msgs = conv.msgs[target.shared:]
    await ctx.writer.update(
        ConversationRow, conv.id, status=status, stop_reason=reason, stop_detail=detail, stop_message_idx=idx,
        turns=conv.turns,
        tokens_in=sum(m.tokens_in for m in msgs), tokens_out=sum(m.tokens_out for m in msgs),
        cached_tokens=sum(m.cached_tokens for m in msgs), cost=round(sum(m.cost for m in msgs), 10), ended_at=utcnow(),
        **_input_totals(msgs),
    )
    statuses[status] += 1
    ctx.emit(ConversationFinished(conv.id, spec.model_alias, status, reason))


def _input_totals(msgs: list[Any]) -> dict[str, Any]:
    """The conversation's cache writes and its model replies' prompt cost, charged and uncached
    (None when no reply had a known price)."""
    replies = [m for m in msgs if m.role == "assistant"]
    priced = [m for m in replies if m.input_cost is not None]
    return {
        "cache_write_tokens": sum(m.cache_write_tokens for m in msgs),
        "input_cost": round(sum(m.input_cost for m in priced), 10) if priced else None,
        "input_cost_uncached": round(sum(m.input_cost_uncached or 0.0 for m in priced), 10) if priced else None,
    }


def run_row(plan: Plan, run_id: str, options: dict[str, Any], models_json: str, versions: tuple[str, str]) -> RunRow:
    loaded = plan.loaded
    return RunRow(
        id=run_id, protocol_name=loaded.protocol.name, protocol_version=str(loaded.protocol.version),
        protocol_path=str(loaded.path.resolve()), protocol_text=loaded.text, protocol_hash=loaded.sha256,
        plan_json=json.dumps(plan.summary(), default=str), models_json=models_json,
        options_json=json.dumps(options, default=str), latitude_version=versions[0], litellm_version=versions[1],
        status="running", simulated=all(s.model.simulated for s in plan.specs),
        registration_id=options.get("registration"),
        researcher=options.get("researcher") or None,
    )


async def start(plan: Plan, writer: Any, run_id: str, options: dict[str, Any], models_json: str,
                versions: tuple[str, str]) -> list[Target]:
    """Write the run and its pending conversations; return the targets to drive."""
    await writer.add(run_row(plan, run_id, options, models_json, versions))
    targets = []
    rows = []
    for spec in plan.specs:
        row = conversation_row(run_id, spec)
        rows.append(row)
        targets.append(Target(spec, row.id))
    await asyncio.gather(*(writer.add(r) for r in rows))
    return targets


START_CHUNK = 2_000
"""Conversation rows per insert statement when a run starts."""


def start_sync(plan: Plan, url: str, run_id: str, options: dict[str, Any], models_json: str,
               versions: tuple[str, str], also: Callable[[str], list[Any]] | None = None) -> list[Target]:
    """`start`, committed in one transaction before any event loop runs: the run exists (and can
    be resumed) as soon as its id is known. `also(run_id)` gives further rows written in the same
    transaction (a registered run's deviations: the run never exists without them)."""
    from sqlmodel import Session

    from ..store.db import open as open_store

    from sqlalchemy import insert

    run = run_row(plan, run_id, options, models_json, versions)
    targets = []
    engine = open_store(url, write=True)
    try:
        with Session(engine) as session:
            session.add(run)
            session.flush()  # the run before its conversations (no ORM relationship orders them)
            # the conversations as plain multi-row inserts, a chunk at a time: no ORM object or
            # identity-map entry is kept per conversation (a 100,000-conversation run's rows
            # would otherwise be held, with their unit-of-work state, until the commit)
            table = ConversationRow.__table__  # type: ignore[attr-defined]
            chunk: list[dict[str, Any]] = []
            for spec in plan.specs:
                values = conversation_values(run_id, spec)
                targets.append(Target(spec, values["id"]))
                chunk.append(values)
                if len(chunk) >= START_CHUNK:
                    session.execute(insert(table), chunk)
                    chunk = []
            if chunk:
                session.execute(insert(table), chunk)
            if also is not None:
                session.add_all(also(run_id))
            session.commit()
    finally:
        engine.dispose()
    return targets


def started_event(run_id: str, plan: Plan, targets: list[Target]) -> RunStarted:
    totals = Counter(s.model_alias for s in plan.specs)
    remaining = Counter(t.spec.model_alias for t in targets)
    return RunStarted(run_id, dict(totals), {k: totals[k] - remaining[k] for k in totals})
