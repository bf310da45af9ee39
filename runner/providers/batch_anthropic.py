"""Anthropic Message Batches, on the official `anthropic` SDK's async client (`BatchAPI`, `API`).

litellm cannot create Anthropic batches (issue 13); the SDK's ``messages.batches`` can. Each
request's ``params`` is the native transport's body (`native._anthropic_body(..., stream=False)`),
with ``cache_control`` given the one-hour lifetime where the request asks for it
(`BatchRequest.cache_ttl`).

- `submit` posts ``{"requests": [line, ...]}`` through the SDK client's own `post` (the lines
  are already JSON: re-parsing 100,000 of them only to serialise them again would cost seconds).
- `status` maps ``processing_status`` (``in_progress``, ``canceling``, ``ended``) and
  ``request_counts`` onto `BatchStatus`: an ended batch whose cancel was asked for is
  ``cancelled``; one with expired requests is ``expired``; else ``ended``.
- `results` streams the results JSONL (``messages.batches.with_streaming_response.results``),
  one `ItemResult` per line as it comes: ``succeeded`` → a `Reply`; ``errored`` → a
  `BatchItemFailed("errored")` with the status of its error type; ``expired`` and
  ``canceled`` → `BatchItemFailed("expired" | "cancelled")`.
- `find` returns None: a message batch carries no metadata, so a batch whose create answer
  was lost cannot be told apart from another by anything latitude sent. The gap is the
  collector's to close (commit before submitting; a batch created just before a crash is
  found by listing, if at all, by hand).

Retries: reads (retrieve, results) let the SDK retry (`READ_RETRIES`); create and cancel are
sent once.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

from ..protocol.models_file import ModelAlias
from . import native
from .base import MalformedReply, Reply, StreamCut, api_key, request_params
from .batch_wire import BatchItemFailed, BatchRequest, BatchState, BatchStatus, ItemResult, reply_cost

READ_RETRIES = 3
"""Attempts the SDK makes for a call that only reads."""

ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
                "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
                "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529}
"""Anthropic error `type` → the HTTP status a live request would have had (the API's error table)."""


def _client(model: ModelAlias, retries: int = 0, timeout: float | None = None) -> Any:
    import anthropic

    return anthropic.AsyncAnthropic(api_key=api_key(model) or "none", base_url=model.api_base, max_retries=retries,
                                    timeout=timeout or max(model.timeout_s, 60.0))


class AnthropicBatchAPI:
    """`BatchAPI` for Anthropic Message Batches."""

    name = "anthropic"
    max_requests = 100_000
    max_bytes = 256 * 1024 * 1024

    def line(self, request: BatchRequest) -> bytes:
        """``{"custom_id", "params"}`` as JSON bytes, the params as the native transport sends them
        unstreamed. Never carries a key."""
        model = request.model
        params = request_params(model, request.overrides)
        body = native._anthropic_body(model, params, request.messages, request.tools, stream=False,
                                      cacheable_system=request.cacheable_system, cache_key=request.cache_key,
                                      cache_ttl=request.cache_ttl)
        return json.dumps({"custom_id": request.custom_id, "params": body}, ensure_ascii=False).encode()

    async def submit(self, model: ModelAlias, lines: list[bytes], *, label: str) -> str:
        """Create the batch (`label` is not sent: Anthropic keeps no metadata on a batch)."""
        from anthropic.types.messages import MessageBatch

        if not lines:
            raise ValueError("a batch needs at least one request")
        if len(lines) > self.max_requests:
            raise ValueError(f"{len(lines)} requests: Anthropic takes at most {self.max_requests} per batch")
        payload = b'{"requests":[' + b",".join(lines) + b"]}"
        if len(payload) > self.max_bytes:
            raise ValueError(f"{len(payload)} bytes: Anthropic takes at most {self.max_bytes} per batch")
        async with _client(model, timeout=max(model.timeout_s, 600.0)) as client:
            batch = await client.post("/v1/messages/batches", content=payload, cast_to=MessageBatch,
                                      options={"headers": {"Content-Type": "application/json"}})
        return str(batch.id)

    async def find(self, model: ModelAlias, label: str) -> str | None:
        """Always None: Anthropic batches carry no metadata to find a label by (module docstring)."""
        return None

    async def status(self, model: ModelAlias, vendor_id: str) -> BatchStatus:
        async with _client(model, READ_RETRIES) as client:
            batch = await client.messages.batches.retrieve(vendor_id)
        return _status(batch)

    def results(self, model: ModelAlias, vendor_id: str) -> AsyncIterator[ItemResult]:
        return _results(model, vendor_id)

    async def cancel(self, model: ModelAlias, vendor_id: str) -> None:
        async with _client(model) as client:
            await client.messages.batches.cancel(vendor_id)


def _status(batch: Any) -> BatchStatus:
    c = batch.request_counts
    ps = str(batch.processing_status)
    state: BatchState
    if ps == "in_progress":
        state = "in_progress"
    elif ps == "canceling":
        state = "cancelling"
    elif batch.cancel_initiated_at is not None:
        state = "cancelled"
    elif c.expired:
        state = "expired"
    else:
        state = "ended"
    return BatchStatus(vendor_id=str(batch.id), state=state, succeeded=c.succeeded, errored=c.errored,
                       expired=c.expired, cancelled=c.canceled, processing=c.processing,
                       raw=batch.model_dump(mode="json"))


async def _results(model: ModelAlias, vendor_id: str) -> AsyncIterator[ItemResult]:
    async with _client(model, READ_RETRIES) as client:
        batch = await client.messages.batches.retrieve(vendor_id)
        if batch.processing_status != "ended":
            raise ValueError(f"batch {vendor_id} has not ended ({batch.processing_status}): its results cannot be "
                             "read yet")
        latency = 0.0
        if batch.ended_at is not None and batch.created_at is not None:
            latency = max((batch.ended_at - batch.created_at).total_seconds(), 0.0) * 1000
        async with client.messages.batches.with_streaming_response.results(vendor_id) as resp:
            async for line in resp.iter_lines():
                if line.strip():
                    item = _item(model, line, latency)
                    if item.custom_id:
                        yield item


def _item(model: ModelAlias, line: str, latency: float) -> ItemResult:
    """One line of the results. A line of an unexpected shape is its request's error
    (`MalformedReply`); one without a custom_id has ``""`` (`_results` leaves it out)."""
    try:
        obj = json.loads(line)
    except ValueError as exc:
        return ItemResult(custom_id="", error=MalformedReply(f"unreadable batch result line: {exc}"))
    if not isinstance(obj, dict) or obj.get("custom_id") is None:
        return ItemResult(custom_id="", error=MalformedReply("batch result line without a custom_id"))
    custom_id = str(obj["custom_id"])
    try:
        return _read_item(model, obj, custom_id, latency)
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        return ItemResult(custom_id=custom_id, error=MalformedReply(f"batch result of an unexpected shape: {exc}"))


def _read_item(model: ModelAlias, obj: dict[str, Any], custom_id: str, latency: float) -> ItemResult:
    result = obj.get("result") or {}
    kind = result.get("type")
    if kind == "succeeded":
        try:
            reply, basis = _reply(model, result.get("message") or {}, latency)
        except (MalformedReply, StreamCut) as exc:
            return ItemResult(custom_id=custom_id, error=exc)
        return ItemResult(custom_id=custom_id, reply=reply, price_basis=basis)
    if kind == "errored":
        outer = result.get("error") or {}
        if not isinstance(outer, dict):  # a bare message
            outer = {"message": str(outer)}
        err = outer.get("error") if isinstance(outer.get("error"), dict) else outer
        etype = str(err.get("type") or "api_error")
        return ItemResult(custom_id=custom_id, error=BatchItemFailed(
            "errored", str(err.get("message") or etype), ERROR_STATUS.get(etype), error_type=etype))
    if kind == "expired":
        return ItemResult(custom_id=custom_id, error=BatchItemFailed("expired", "not run before the batch expired"))
    if kind == "canceled":
        return ItemResult(custom_id=custom_id, error=BatchItemFailed("cancelled",
                                                                     "not run before the batch was cancelled"))
    return ItemResult(custom_id=custom_id, error=MalformedReply(f"batch result of unknown type {kind!r}"))


def _reply(model: ModelAlias, msg: dict[str, Any], latency: float) -> tuple[Reply, Any]:
    """A message → `Reply` (read as the live transport reads one: `native.parse_body`) at the batch price."""
    content, reasoning, calls, finish, (tokens_in, tokens_out, read, write), _, body_id = native.parse_body(
        "anthropic", msg, model, "batch reply")
    split = (msg.get("usage") or {}).get("cache_creation") or {}
    write_1h = int(split.get("ephemeral_1h_input_tokens") or 0) if isinstance(split, dict) else 0
    told = isinstance(split, dict) and ("ephemeral_1h_input_tokens" in split or "ephemeral_5m_input_tokens" in split)
    cost, basis = reply_cost(model, tokens_in, tokens_out, read, max(write - write_1h, 0), write_1h)
    # without the split (an older API version, a proxy) the writes' lifetime is unknown here (None,
    # priced as 5 minutes): the collector knows what the request asked (`BatchTransport._mark`)
    ttl = ("1h" if write_1h else "5m") if told else None
    return Reply(content=content, reasoning=reasoning or None, tool_calls=calls, finish_reason=finish,
                 tokens_in=tokens_in, tokens_out=tokens_out, cached_tokens=read, cost=cost, latency_ms=latency,
                 ttft_ms=None, request_id=body_id, cache_write_tokens=write,
                 cache_ttl=ttl if write else None), basis


API = AnthropicBatchAPI()
"""The module's `BatchAPI` (what `batch_wire.batch_api` returns for an Anthropic alias)."""

__all__ = ["API", "ERROR_STATUS", "READ_RETRIES", "AnthropicBatchAPI"]
