"""The batch transport (``transport: batch``): a provider family whose `chat` does not send.

`chat` enqueues a `BatchRequest` under a stable `custom_id` and awaits a future. A **wave
collector** (`BatchTransport`, one per run) gathers the waiting requests of each alias and
flushes them as one vendor batch (split by the vendor's `max_requests` / `max_bytes`) when

- every live caller is waiting (the driver registers each conversation with `enter`/`leave`:
  when as many requests wait as there are conversations, nobody can move without a batch), or
- a queue reaches the vendor's limits, or
- nothing was enqueued for `idle_s` (short: for callers nobody counts, a judge pass or a test), or,
  while the driver counts its callers, for `stall_s` (long: a safety net only; on a large run the
  callers can take many seconds to reach their next request, and a short timeout would split a
  wave into small batches).

Before the vendor is asked, the batch row and every request id are committed (`Ledger.prepared`);
after it answers, its vendor id (`Ledger.submitted`). The collector then polls (`poll_interval`)
and, once the batch has ended, resolves each future from `results`: the reply, or the item's
error (`BatchItemFailed`), which the client's `call_with_retry` classifies and retries (the
retry has another attempt number, so another `custom_id`, and goes out in the next wave; or
live, on the native transport, with ``batch_fallback: live``).

Resume: `custom_id` is a function of (run, owner, purpose, the messages sent, attempt), so a
resumed conversation that reaches the same request finds it in the ledger (`Ledger.stored`):
its batch is polled or read again instead of resubmitting it. A batch committed but never
given a vendor id (killed in between) is looked up by its label (`BatchAPI.find`); not found,
it was never created, and its requests go out again (their old rows marked ``resent``).

This module knows nothing of the store (the engine's `runner.engine.batches.StoreLedger`
implements `Ledger`) and imports no SDK (the vendor modules do, when a batch is sent).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from ..protocol.models_file import ModelAlias
from . import prices
from .base import Reply, messages_hash
from .batch_wire import BatchAPI, BatchItemFailed, BatchRequest, BatchStatus, ItemResult, batch_api, request_audit

__all__ = ["BatchTransport", "Ledger", "MemoryLedger", "Place", "StoredRequest", "WaveEvent", "batch_price",
           "chat", "context_window", "cost", "custom_id", "deterministic", "price_note", "price_per_token"]

BATCH_DISCOUNT = 0.5
"""Both vendors' published batch price: half the live price, input and output."""

READ_RETRIES = 8
"""Failed reads in a row of a batch that is out (a poll, a results download) tried again, the
wait doubling from the poll interval up to `READ_BACKOFF_MAX_S` (some 20 minutes in all at the
default 10 s interval), before its requests are failed."""

BATCH_ENVELOPE = 16
"""Bytes a vendor's batch adds to its lines besides one separator each (a newline per JSONL line
for OpenAI; ``{"requests":[`` ... ``]}`` and the commas for Anthropic): counted against `max_bytes`."""

READ_BACKOFF_MAX_S = 300.0
"""The longest wait between two reads of a batch after a failed one."""


# ----------------------------------------------------------------------------- prices


def _batch_prices(model: ModelAlias) -> tuple[float, float] | None:
    info = prices.model_info(model.model)
    if not info:
        return None
    inp, out = info.get("input_cost_per_token_batches"), info.get("output_cost_per_token_batches")
    if inp is None or out is None:
        return None
    return float(inp), float(out)


def price_note(model: ModelAlias) -> str:
    """How a batch request of `model` is priced (`BatchPriceBasis`): ``price map`` (litellm's
    ``*_batches`` prices) or ``50% rule`` (the vendor's half price applied to the live price)."""
    return "price map" if _batch_prices(model) else "50% rule"


def cost(model: ModelAlias, tokens_in: int, tokens_out: int, cached: int = 0, cache_write: int = 0,
         cache_ttl: str | None = None) -> float | None:
    """USD cost of one batch request at the batch price (`prices.batch_cost`, the one pricing of
    batch replies; cache writes at their lifetime's price); None when the model has no price."""
    hour = cache_ttl == "1h"
    return prices.batch_cost(model.model, tokens_in, tokens_out, cached, 0 if hour else cache_write,
                             cache_write if hour else 0)[0]


def batch_price(model: ModelAlias) -> tuple[float, float] | None:
    """(input, output) USD per token at the batch price, for plan estimates; None when unknown."""
    batch = _batch_prices(model)
    if batch is not None:
        return batch
    live = prices.price_per_token(model.model)
    return None if live is None else (live[0] * BATCH_DISCOUNT, live[1] * BATCH_DISCOUNT)


def price_per_token(model: ModelAlias) -> tuple[float, float] | None:
    return batch_price(model)


def context_window(model: ModelAlias) -> int | None:
    return model.context_window or prices.context_window(model.model)


def deterministic(model: ModelAlias, overrides: dict[str, Any] | None = None) -> bool:
    """A vendor's reply can differ when asked again."""
    return False


# ----------------------------------------------------------------------------- ids and the ledger


@dataclass(frozen=True, slots=True)
class Place:
    """Where a request stands in its owner's work: what makes its `custom_id` stable."""

    owner: str
    """A conversation id, a judge unit."""
    purpose: str
    """`CallPurpose`."""
    attempt: int = 1
    """The client's attempt number (from 1)."""


def custom_id(run_id: str, place: Place, messages: list[dict[str, Any]]) -> str:
    """The request's id in its batch: the same for the same run, owner, purpose, message list and
    attempt (a resume reaching the same request gets the same id), 48 characters of ``[a-z0-9-]``."""
    key = f"{run_id}|{place.owner}|{place.purpose}|{len(messages)}|{messages_hash(messages)}|{place.attempt}"
    return f"{place.purpose[:4]}-{place.attempt}-{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def failure_text(error: BaseException | None) -> str:
    """A failed request's error as `BatchRequestRow.error_kind` keeps it: ``kind: {...}``, the item's
    kind, then what the retry policy decides on (the vendor's HTTP status, error type and code) and
    the message as JSON, so a resumed run classifies it as the session that read it did."""
    kind = getattr(error, "kind", "errored")
    return f"{kind}: " + json.dumps({"status": getattr(error, "status", None), "type": getattr(error, "error_type", None),
                                     "code": getattr(error, "code", None), "message": str(error)[:500]})


def failure_of(text: str | None) -> BatchItemFailed:
    """The `BatchItemFailed` a failure recorded in an earlier session stood for (`failure_text`; an
    older row's ``kind: message`` is read as that kind with no status)."""
    head, _, rest = (text or "errored").partition(": ")
    try:
        got = json.loads(rest)
    except ValueError:
        got = None
    if not isinstance(got, dict):
        got = {"message": text or ""}
    kind = head if head in ("errored", "expired", "cancelled") else "errored"
    status = got.get("status")
    return BatchItemFailed(kind, f"(recorded in an earlier session) {got.get('message') or ''}",  # type: ignore[arg-type]
                           status if isinstance(status, int) else None, error_type=got.get("type"), code=got.get("code"))


@dataclass(slots=True)
class StoredRequest:
    """What the ledger remembers of a request sent in an earlier session."""

    batch_id: str
    vendor_id: str | None
    state: str
    """`BatchRequestState`."""
    error_kind: str | None = None


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """A batch as the collector commits it, before the vendor is asked."""

    id: str
    alias: str
    vendor: str
    model: str
    requests: int
    bytes: int
    price_note: str


class Ledger(Protocol):
    """Where the collector commits batches (the store, in a run)."""

    stored: dict[str, StoredRequest]
    """Requests of earlier sessions of this run, by custom_id (read once, at start)."""

    async def prepared(self, batch: BatchInfo, requests: list[tuple[str, Place]]) -> None:
        """Commit a batch row and its requests (custom_id, place), before the vendor is asked."""
        ...

    async def submitted(self, batch_id: str, vendor_id: str) -> None: ...

    async def polled(self, batch_id: str, status: BatchStatus) -> None: ...

    async def read(self, batch_id: str, outcomes: list[tuple[str, str, str | None]]) -> None:
        """Record each request's outcome (custom_id, state, error kind) once the batch is read."""
        ...

    async def abandoned(self, batch_id: str) -> None:
        """The vendor never created this batch: mark it, and its requests ``resent``."""
        ...


class MemoryLedger:
    """A `Ledger` that keeps nothing past the process (a judge pass without a store, tests)."""

    def __init__(self) -> None:
        self.stored: dict[str, StoredRequest] = {}
        self.batches: dict[str, dict[str, Any]] = {}

    async def prepared(self, batch: BatchInfo, requests: list[tuple[str, Place]]) -> None:
        self.batches[batch.id] = {"info": batch, "state": "preparing", "requests": [c for c, _ in requests]}
        for cid, _ in requests:
            self.stored[cid] = StoredRequest(batch.id, None, "submitted")

    async def submitted(self, batch_id: str, vendor_id: str) -> None:
        self.batches[batch_id].update(state="submitted", vendor_id=vendor_id)

    async def polled(self, batch_id: str, status: BatchStatus) -> None:
        self.batches[batch_id]["state"] = status.state

    async def read(self, batch_id: str, outcomes: list[tuple[str, str, str | None]]) -> None:
        for cid, state, kind in outcomes:
            self.stored[cid] = StoredRequest(batch_id, self.batches[batch_id].get("vendor_id"), state, kind)

    async def abandoned(self, batch_id: str) -> None:
        self.batches[batch_id]["state"] = "abandoned"


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class WaveEvent:
    """What the collector reports (the engine turns these into its `Batch*` events)."""

    kind: str
    """``submitted``, ``polled`` or ``ended``."""
    batch_id: str
    alias: str
    vendor: str
    requests: int
    succeeded: int = 0
    failed: int = 0
    state: str = ""
    live_cost: float | None = None
    """What the batch's answered requests would have cost live (``ended`` only)."""
    cost: float | None = None
    """What they cost at the batch price (``ended`` only)."""


# ----------------------------------------------------------------------------- the collector


@dataclass(slots=True)
class _Waiting:
    cid: str
    place: Place
    line: bytes
    future: asyncio.Future[Reply]
    audit: dict[str, Any]


@dataclass(slots=True)
class _Queue:
    alias: str
    model: ModelAlias
    api: BatchAPI
    items: list[_Waiting] = field(default_factory=list)
    bytes: int = 0


@dataclass(slots=True)
class _Watch:
    """One vendor batch being polled, and the futures waiting on it."""

    batch_id: str
    alias: str
    model: ModelAlias
    api: BatchAPI
    waiting: dict[str, asyncio.Future[Reply]] = field(default_factory=dict)
    audits: dict[str, dict[str, Any]] = field(default_factory=dict)
    """What was sent for each waiting request (`Reply.request`: a result carries only its custom_id)."""
    task: asyncio.Task[None] | None = None


class BatchTransport:
    """The wave collector of one run (see the module docstring)."""

    def __init__(self, ledger: Ledger, *, run_id: str = "", report: Callable[[WaveEvent], None] | None = None,
                 poll_interval: float = 10.0, idle_s: float = 2.0, stall_s: float = 120.0,
                 api_for: Callable[[ModelAlias], BatchAPI] = batch_api, read_retries: int = READ_RETRIES):
        self.ledger = ledger
        """Where batches are committed."""
        self.run_id = run_id
        """Part of every custom_id."""
        self.report = report or (lambda _e: None)
        self.poll_interval = poll_interval
        """Seconds between two polls of a batch that is out."""
        self.idle_s = idle_s
        """Seconds without a new request after which a partial wave goes out, when no caller is counted."""
        self.stall_s = max(stall_s, idle_s)
        """The same while the driver counts its callers (`enter`): a safety net, not the rule."""
        self.api_for = api_for
        self.read_retries = read_retries
        """Reads of a batch that is out (polls, results) that may fail in a row before its requests
        are failed (each then retried under a new custom_id, i.e. sent again)."""
        self.active = 0
        """Live callers the driver counts (conversations running)."""
        self.waiting = 0
        """Requests whose callers are waiting (queued or out in a batch)."""
        self.submitted = 0
        """Requests sent in batches by this session (resumed ones excluded)."""
        self.resumed = 0
        """Requests answered from a batch of an earlier session."""
        self._queues: dict[str, _Queue] = {}
        self._watches: dict[str, _Watch] = {}
        self._recovering: dict[str, asyncio.Future[str | None]] = {}
        self._unclaimed: dict[str, ItemResult] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_enqueue = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------ callers

    def enter(self) -> None:
        """A live caller (a conversation) starts."""
        self.active += 1

    def leave(self) -> None:
        """A live caller ended: the others may now all be waiting."""
        self.active -= 1
        self._maybe_flush()

    @property
    def batches_out(self) -> int:
        """Vendor batches being polled."""
        return len(self._watches)

    async def chat(self, model: ModelAlias, messages: list[dict[str, Any]], *, alias: str, place: Place,
                   overrides: dict[str, Any] | None = None, tools: list[dict[str, Any]] | None = None,
                   cacheable_system: bool = False, cache_key: str | None = None) -> Reply:
        """One request through a batch: the reply, or the item's error raised. A batch can outlast
        five minutes, so an Anthropic request that marks a prefix (the system prompt, or the moving
        prefix of a conversation: `cache_key`) asks for the one-hour cache lifetime."""
        cid = custom_id(self.run_id, place, messages)
        marks = cacheable_system or cache_key is not None
        request = BatchRequest(cid, model, messages, overrides, tools, cacheable_system,
                               "1h" if marks and model.vendor == "anthropic" and model.prompt_cache else None,
                               cache_key=cache_key)
        audit = request_audit(request)
        done = self._unclaimed.pop(cid, None)
        if done is not None:
            self.resumed += 1
            if done.reply is not None:  # read before its caller came: `_mark` had no audit for it
                done.reply.request = {**audit, **(done.reply.request or {})}
                _asked_ttl(done, model, audit)
            return self._outcome(done)
        stored = self.ledger.stored.get(cid)
        if stored is not None and stored.state != "resent":
            if stored.state == "failed":
                raise failure_of(stored.error_kind)
            vendor_id = stored.vendor_id or await self._recover(model, stored.batch_id)
            if vendor_id is not None:
                stored.vendor_id = vendor_id
                self.resumed += 1
                return await self._wait(self._join(stored.batch_id, vendor_id, alias, model, cid, audit))
        return await self._wait(self._enqueue(request, alias, place, audit))

    async def _wait(self, fut: asyncio.Future[Reply]) -> Reply:
        """Await a batch future, counted as waiting (what decides when a wave goes out)."""
        self.waiting += 1
        try:
            self._maybe_flush()
            return await fut
        finally:
            self.waiting -= 1

    def _outcome(self, item: ItemResult) -> Reply:
        if item.reply is not None:
            return item.reply
        raise item.error or BatchItemFailed("errored", "no result")

    def _enqueue(self, request: BatchRequest, alias: str, place: Place, audit: dict[str, Any]) -> asyncio.Future[Reply]:
        model, cid = request.model, request.custom_id
        key = f"{alias}\x00{model.model}\x00{model.api_base or ''}"
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue(alias, model, self.api_for(model))
        line = queue.api.line(request)
        size = len(line) + 1  # with its separator: what the vendor receives (`BATCH_ENVELOPE`)
        if queue.items and (len(queue.items) >= queue.api.max_requests
                            or queue.bytes + size + BATCH_ENVELOPE > queue.api.max_bytes):
            self._flush(key)  # this request starts the next batch
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        queue.items.append(_Waiting(cid, place, line, fut, audit))
        queue.bytes += size
        self._last_enqueue = time.monotonic()
        if len(queue.items) >= queue.api.max_requests:
            self._flush(key)
        else:
            self._arm_timer()
        return fut

    # ------------------------------------------------------------ waves

    def _queued(self) -> int:
        return sum(len(q.items) for q in self._queues.values())

    def _maybe_flush(self) -> None:
        if self.active > 0 and self.waiting >= self.active and self._queued():
            self.flush()

    def _timeout(self) -> float:
        return self.stall_s if self.active > 0 else self.idle_s

    def _arm_timer(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._timeout(), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._queued():
            return
        idle, limit = time.monotonic() - self._last_enqueue, self._timeout()
        if idle >= limit * 0.99:
            self.flush()
        else:
            self._timer = asyncio.get_running_loop().call_later(limit - idle, self._on_timer)

    def flush(self) -> None:
        """Send every queued request now (one batch per alias, split by the vendor's limits)."""
        for key in list(self._queues):
            self._flush(key)

    def _flush(self, key: str) -> None:
        queue = self._queues[key]
        if not queue.items:
            return
        items, queue.items, queue.bytes = queue.items, [], 0
        self._spawn(self._send(queue.alias, queue.model, queue.api, items))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, alias: str, model: ModelAlias, api: BatchAPI, items: list[_Waiting]) -> None:
        batch_id = uuid.uuid4().hex[:16]
        try:
            info = BatchInfo(batch_id, alias, api.name, model.model, len(items), sum(len(i.line) for i in items),
                             price_note(model))
            await self.ledger.prepared(info, [(i.cid, i.place) for i in items])
            try:
                vendor_id = await api.submit(model, [i.line for i in items], label=batch_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                vendor_id = await _quiet(api.find(model, batch_id))
                if vendor_id is None:
                    await self.ledger.abandoned(batch_id)
                    raise
            await self.ledger.submitted(batch_id, vendor_id)
        except BaseException as exc:
            for i in items:
                _fail(i.future, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self.submitted += len(items)
        self.report(WaveEvent("submitted", batch_id, alias, api.name, len(items)))
        watch = _Watch(batch_id, alias, model, api, {i.cid: i.future for i in items}, {i.cid: i.audit for i in items})
        items.clear()  # the lines are at the vendor now: not held while the batch is out
        self._watches[batch_id] = watch
        await self._poll(watch, vendor_id)

    # ------------------------------------------------------------ resume

    async def _recover(self, model: ModelAlias, batch_id: str) -> str | None:
        """The vendor id of a batch committed in an earlier session before the vendor answered."""
        fut = self._recovering.get(batch_id)
        if fut is None:
            fut = self._recovering[batch_id] = asyncio.get_running_loop().create_future()
            try:
                vendor_id = await self.api_for(model).find(model, batch_id)
                if vendor_id is None:
                    await self.ledger.abandoned(batch_id)
                else:
                    await self.ledger.submitted(batch_id, vendor_id)
                fut.set_result(vendor_id)
            except BaseException as exc:
                fut.set_exception(exc)
                del self._recovering[batch_id]
                raise
        return await asyncio.shield(fut)

    def _join(self, batch_id: str, vendor_id: str, alias: str, model: ModelAlias, cid: str,
              audit: dict[str, Any]) -> asyncio.Future[Reply]:
        watch = self._watches.get(batch_id)
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        if watch is None:
            watch = self._watches[batch_id] = _Watch(batch_id, alias, model, self.api_for(model))
            watch.waiting[cid] = fut
            self._spawn(self._poll(watch, vendor_id, resumed=True))
        else:
            watch.waiting[cid] = fut
        watch.audits[cid] = audit
        return fut

    # ------------------------------------------------------------ polling and results

    async def _poll(self, watch: _Watch, vendor_id: str, resumed: bool = False) -> None:
        """Poll a batch that is out until it ends, then read its results. A read that fails (a
        poll, or a results download broken off) is tried again (`_read_again`): the batch is at
        the vendor, and failing its requests would send them all again under new custom_ids."""
        api, model = watch.api, watch.model
        ready: list[tuple[asyncio.Future[Reply] | None, ItemResult]] = []
        try:
            failures = 0
            while True:
                try:
                    status = await api.status(model, vendor_id)
                except Exception as exc:
                    failures += 1
                    await self._read_again(exc, failures)
                    continue
                failures = 0
                await self.ledger.polled(watch.batch_id, status)
                self.report(WaveEvent("polled", watch.batch_id, watch.alias, api.name,
                                      status.succeeded + status.errored + status.expired + status.cancelled
                                      + status.processing, status.succeeded,
                                      status.errored + status.expired + status.cancelled, status.state))
                if status.final:
                    break
                await asyncio.sleep(self.poll_interval)
            outcomes: list[tuple[str, str, str | None]] = []
            live = paid = 0.0
            priced = True
            seen: set[str] = set()
            while True:
                try:
                    async for item in api.results(model, vendor_id):
                        if item.custom_id in seen:  # read before the download broke off
                            continue
                        live, paid, priced = self._take(item, watch, vendor_id, resumed, outcomes, ready,
                                                        live, paid, priced)
                        seen.add(item.custom_id)
                    break
                except Exception as exc:
                    failures += 1
                    await self._read_again(exc, failures)
            missing = BatchItemFailed("expired" if status.state == "expired" else "cancelled",
                                      f"batch {vendor_id} ended ({status.state}) without this request")
            for cid in watch.waiting:
                outcomes.append((cid, "failed", failure_text(missing)))
            await self.ledger.read(watch.batch_id, outcomes)
        except BaseException as exc:
            self._watches.pop(watch.batch_id, None)
            for fut in watch.waiting.values():
                _fail(fut, exc)
            for fut, item in ready:  # taken out of `waiting` when their results were read: answered
                if fut is not None and not fut.done():
                    if isinstance(exc, asyncio.CancelledError):
                        fut.cancel()
                    elif item.reply is not None:
                        fut.set_result(item.reply)
                    else:
                        fut.set_exception(item.error or BatchItemFailed("errored", "no result"))
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self._watches.pop(watch.batch_id, None)
        failed = sum(1 for _, s, _ in outcomes if s == "failed")
        self.report(WaveEvent("ended", watch.batch_id, watch.alias, api.name, len(outcomes), len(outcomes) - failed,
                              failed, status.state, live if priced else None, paid if priced else None))
        for fut, item in ready:
            if fut is not None and not fut.done():
                if item.reply is not None:
                    fut.set_result(item.reply)
                else:
                    fut.set_exception(item.error or BatchItemFailed("errored", "no result"))
        for fut in watch.waiting.values():
            if not fut.done():
                fut.set_exception(missing)

    def _take(self, item: ItemResult, watch: _Watch, vendor_id: str, resumed: bool,
              outcomes: list[tuple[str, str, str | None]],
              ready: list[tuple[asyncio.Future[Reply] | None, ItemResult]], live: float, paid: float,
              priced: bool) -> tuple[float, float, bool]:
        """One result of an ended batch: its outcome for the ledger, its waiting caller, and the
        (live, paid, priced) totals of the batch so far."""
        model = watch.model
        if item.reply is not None:
            self._mark(item, watch, vendor_id)
            r = item.reply
            # live, the same request would have written the cache at the alias's own lifetime
            lc = prices.cost(model.model, r.tokens_in, r.tokens_out, r.cached_tokens, r.cache_write_tokens,
                             model.cache_ttl if r.cache_write_tokens else None)
            bc = r.cost if r.cost is not None else cost(model, r.tokens_in, r.tokens_out, r.cached_tokens,
                                                        r.cache_write_tokens, r.cache_ttl)
            outcomes.append((item.custom_id, "succeeded", None))
            if lc is None or bc is None:
                priced = False
            else:
                live, paid = live + lc, paid + bc
        else:
            outcomes.append((item.custom_id, "failed", failure_text(item.error)))
        fut = watch.waiting.pop(item.custom_id, None)  # last: nothing above may lose a caller
        if fut is not None:
            ready.append((fut, item))
        elif resumed and item.custom_id in self.ledger.stored:
            self._unclaimed[item.custom_id] = item  # a resumed caller may reach it later
        return live, paid, priced

    async def _read_again(self, exc: Exception, failures: int) -> None:
        """After the `failures`-th read of a batch in a row failed with `exc`: wait, then let the
        caller try again; re-raise `exc` when trying again cannot help (the vendor refused the
        request: a 4xx other than 408, 409 or 429) or after `read_retries` failures in a row."""
        status = getattr(exc, "status_code", None)
        refused = isinstance(status, int) and 400 <= status < 500 and status not in (408, 409, 429)
        if refused or failures > self.read_retries:
            raise exc
        await asyncio.sleep(min(self.poll_interval * 2 ** (failures - 1), READ_BACKOFF_MAX_S))

    def _mark(self, item: ItemResult, watch: _Watch, vendor_id: str) -> None:
        """Record in the reply's audit which batch it came from and how it was priced (the vendor
        module prices it; where it did not, the client does, at the batch price)."""
        reply = item.reply
        assert reply is not None
        audit = watch.audits.pop(item.custom_id, {})
        _asked_ttl(item, watch.model, audit)
        basis = getattr(item, "price_basis", None) or price_note(watch.model)
        reply.request = {**audit, **(reply.request or {}), "batch": {
            "batch_id": watch.batch_id, "vendor_id": vendor_id, "custom_id": item.custom_id, "price": basis}}

    async def aclose(self) -> None:
        """Cancel the collector's own tasks (the run is over or interrupted)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _asked_ttl(item: ItemResult, model: ModelAlias, audit: dict[str, Any]) -> None:
    """Cache writes whose lifetime the vendor did not say (`Reply.cache_ttl` None): the lifetime
    the request asked of every breakpoint (`audit`, as `chat` set it), repriced when one hour."""
    reply = item.reply
    if reply is None or not reply.cache_write_tokens or reply.cache_ttl is not None or not audit:
        return  # no audit: a result read before its resumed caller came, filled when it comes (`chat`)
    reply.cache_ttl = "1h" if audit.get("cache_ttl") == "1h" else "5m"
    if reply.cache_ttl == "1h":
        reply.cost, basis = prices.batch_cost(model.model, reply.tokens_in, reply.tokens_out, reply.cached_tokens,
                                              0, reply.cache_write_tokens)
        item.price_basis = basis or item.price_basis


def _fail(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if fut.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        fut.cancel()
    else:
        fut.set_exception(exc)


async def _quiet(aw: Any) -> Any:
    try:
        return await aw
    except Exception:
        return None


async def chat(model: ModelAlias, messages: list[dict[str, Any]], *, transport: BatchTransport | None = None,
               alias: str = "", place: Place | None = None, overrides: dict[str, Any] | None = None,
               tools: list[dict[str, Any]] | None = None, cacheable_system: bool = False,
               cache_key: str | None = None, cache_ttl: str | None = None) -> Reply:
    """The family's `chat`: through `transport` (the run's collector, which the client passes).
    The cache lifetime is the collector's choice (one hour for a marked prefix); `cache_ttl` is
    accepted for the `Provider` interface."""
    if transport is None:
        raise RuntimeError(f"{model.model}: transport batch needs a run's wave collector (call through ModelClient)")
    return await transport.chat(model, messages, alias=alias or model.model, place=place or Place("", "turn"),
                                overrides=overrides, tools=tools, cacheable_system=cacheable_system,
                                cache_key=cache_key)
