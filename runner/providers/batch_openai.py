"""The OpenAI Batch API, on the official `openai` SDK's async client (`BatchAPI`, `API`).

A batch is a JSONL file uploaded with ``files.create(purpose="batch")``, then
``batches.create(endpoint="/v1/chat/completions", completion_window="24h",
metadata={"latitude_batch": label})``. Each line's ``body`` is the native transport's request
body (`native._openai_body(..., stream=False)`): a batch request is the live request, byte for
byte, without streaming.

Why the SDK and not litellm's batch functions (issue 13 names `litellm.acreate_batch` and
friends): importing litellm costs 4-15 s of CPU, and the native transport already speaks the
wire without it; the SDK is the vendor's own client for these endpoints, and is imported only
when a batch call is made.

Results are streamed: the output and error files are read line by line
(``files.with_streaming_response.content``), each line turned into an `ItemResult` as it comes,
so a 50,000-line file is never held parsed. A request in neither file (an expired or
cancelled batch returns what it finished; a failed batch ran nothing) is found by reading the
batch's input file again, only when the batch's counts say some are missing.

Retries: the calls that read (retrieve, list, file content) let the SDK retry (`READ_RETRIES`);
the calls that create (file upload, batch create, cancel) are sent once, so a batch is never
created twice behind the caller's back (the collector recovers a create whose answer was lost
with `find`).
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

from ..protocol.models_file import ModelAlias
from . import native
from .base import MalformedReply, Reply, StreamCut, api_key, request_params
from .batch_wire import FINAL_STATES, BatchItemFailed, BatchRequest, BatchState, BatchStatus, ItemResult, reply_cost

LABEL_KEY = "latitude_batch"
"""The metadata key a batch's label (the store's own batch id) is attached under."""

READ_RETRIES = 3
"""Attempts the SDK makes for a call that only reads (its own backoff, `retry-after` honoured)."""

FIND_SCAN = 1000
"""Most recent batches `find` looks through for a label."""

_STATES: dict[str, BatchState] = {
    "validating": "validating", "in_progress": "in_progress", "finalizing": "finalizing", "completed": "ended",
    "expired": "expired", "cancelling": "cancelling", "cancelled": "cancelled", "failed": "failed",
}
"""OpenAI batch `status` → `BatchState`."""

ENDPOINT = "/v1/chat/completions"


def _client(model: ModelAlias, retries: int = 0, timeout: float | None = None) -> Any:
    import openai

    return openai.AsyncOpenAI(api_key=api_key(model) or "none", base_url=model.api_base, max_retries=retries,
                              timeout=timeout or max(model.timeout_s, 60.0))


class OpenAIBatchAPI:
    """`BatchAPI` for OpenAI (and OpenAI-compatible servers that serve `/v1/batches`)."""

    name = "openai"
    max_requests = 50_000
    max_bytes = 200 * 1024 * 1024

    # ------------------------------------------------------------------ encoding
    def line(self, request: BatchRequest) -> bytes:
        """One JSONL line (no trailing newline): ``{custom_id, method, url, body}``, the body as the
        native transport sends it, unstreamed. Never carries a key."""
        model = request.model
        params = request_params(model, request.overrides)
        body = native._openai_body(model, params, request.messages, request.tools, stream=False,
                                   cacheable_system=request.cacheable_system, cache_key=request.cache_key,
                                   cache_ttl=request.cache_ttl)
        return json.dumps({"custom_id": request.custom_id, "method": "POST", "url": ENDPOINT, "body": body},
                          ensure_ascii=False).encode()

    # ------------------------------------------------------------------ batches
    async def submit(self, model: ModelAlias, lines: list[bytes], *, label: str) -> str:
        if not lines:
            raise ValueError("a batch needs at least one request")
        if len(lines) > self.max_requests:
            raise ValueError(f"{len(lines)} requests: OpenAI takes at most {self.max_requests} per batch")
        data = b"\n".join(lines) + b"\n"
        if len(data) > self.max_bytes:
            raise ValueError(f"{len(data)} bytes: OpenAI takes at most {self.max_bytes} per batch file")
        async with _client(model, timeout=max(model.timeout_s, 600.0)) as client:
            file = await client.files.create(file=(f"{label}.jsonl", data, "application/jsonl"), purpose="batch")
            try:
                batch = await client.batches.create(input_file_id=file.id, endpoint=ENDPOINT, completion_window="24h",
                                                    metadata={LABEL_KEY: label})
            except Exception as exc:
                status = getattr(exc, "status_code", None)
                # refused (a 4xx answer): the upload is of no use without its batch; best effort. Not
                # after a timeout or a broken connection: the batch may exist (the collector's `find`
                # looks for it), and it would fail without its input file.
                if isinstance(status, int) and 400 <= status < 500:
                    try:
                        await client.files.delete(file.id)
                    except Exception:  # noqa: BLE001 - the create error is the one to report
                        pass
                raise
        return str(batch.id)

    async def find(self, model: ModelAlias, label: str) -> str | None:
        """The newest batch whose metadata carries `label` (among the `FIND_SCAN` newest)."""
        async with _client(model, READ_RETRIES) as client:
            seen = 0
            async for batch in client.batches.list(limit=100):
                if (batch.metadata or {}).get(LABEL_KEY) == label:
                    return str(batch.id)
                seen += 1
                if seen >= FIND_SCAN:
                    break
        return None

    async def status(self, model: ModelAlias, vendor_id: str) -> BatchStatus:
        async with _client(model, READ_RETRIES) as client:
            batch = await client.batches.retrieve(vendor_id)
        return _status(batch)

    def results(self, model: ModelAlias, vendor_id: str) -> AsyncIterator[ItemResult]:
        return _results(model, vendor_id)

    async def cancel(self, model: ModelAlias, vendor_id: str) -> None:
        async with _client(model) as client:
            await client.batches.cancel(vendor_id)


def _status(batch: Any) -> BatchStatus:
    state = _STATES.get(str(batch.status), "in_progress")
    counts = batch.request_counts
    total = int(getattr(counts, "total", 0) or 0)
    done = int(getattr(counts, "completed", 0) or 0)
    failed = int(getattr(counts, "failed", 0) or 0)
    left = max(total - done - failed, 0)
    st = BatchStatus(vendor_id=str(batch.id), state=state, succeeded=done, errored=failed,
                     raw=batch.model_dump(mode="json"))
    if state == "expired":
        st.expired = left
    elif state in ("cancelled",):
        st.cancelled = left
    elif state == "failed":
        st.errored = failed + left
    elif state != "ended":
        st.processing = left
    return st


def _turnaround_ms(batch: Any) -> float:
    """The batch's time from creation to its end, in ms (each reply's `latency_ms`: a batch has
    no per-request timing)."""
    end = batch.completed_at or batch.expired_at or batch.cancelled_at or batch.failed_at
    return max(float(end) - float(batch.created_at), 0.0) * 1000 if end and batch.created_at else 0.0


async def _results(model: ModelAlias, vendor_id: str) -> AsyncIterator[ItemResult]:
    async with _client(model, READ_RETRIES) as client:
        batch = await client.batches.retrieve(vendor_id)
        if _STATES.get(str(batch.status)) not in FINAL_STATES:
            raise ValueError(f"batch {vendor_id} has not ended ({batch.status}): its results cannot be read yet")
        latency = _turnaround_ms(batch)
        seen: set[str] = set()
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            async with client.files.with_streaming_response.content(file_id) as resp:
                async for line in resp.iter_lines():
                    if not line.strip():
                        continue
                    item = _item(model, line, latency)
                    if not item.custom_id or item.custom_id in seen:
                        continue
                    seen.add(item.custom_id)
                    yield item
        counts = batch.request_counts
        total = int(getattr(counts, "total", 0) or 0)
        if len(seen) >= total and batch.status != "failed":
            return
        missing = _missing_error(batch)
        async with client.files.with_streaming_response.content(batch.input_file_id) as resp:
            async for line in resp.iter_lines():
                if not line.strip():
                    continue
                custom_id = str(json.loads(line)["custom_id"])
                if custom_id not in seen:
                    seen.add(custom_id)
                    yield ItemResult(custom_id=custom_id, error=missing())


def _missing_error(batch: Any) -> Any:
    """What a request in neither file met, from the batch's end."""
    status = str(batch.status)
    if status == "expired":
        return lambda: BatchItemFailed("expired", "not run before the batch's 24 h window ended", code="batch_expired")
    if status in ("cancelled", "cancelling"):
        return lambda: BatchItemFailed("cancelled", "not run before the batch was cancelled")
    if status == "failed":
        errs = getattr(getattr(batch, "errors", None), "data", None) or []
        text = "; ".join(f"{e.code}: {e.message}" for e in errs) or "the batch failed validation"
        code = (errs[0].code if errs else None)
        return lambda: BatchItemFailed("errored", f"batch failed: {text}", 400, error_type="invalid_request_error",
                                       code=code)
    return lambda: BatchItemFailed("errored", f"missing from the results of a {status} batch")


def _item(model: ModelAlias, line: str, latency: float) -> ItemResult:
    """One line of an output or error file. A line of an unexpected shape is its request's
    error (`MalformedReply`); one without a custom_id has ``""`` (`_results` leaves it out: its
    request is then found missing)."""
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


def _error_fields(err: Any) -> dict[str, Any]:
    """A vendor error as `{message, type, code}`: OpenAI's object, or the bare string some
    OpenAI-compatible servers send."""
    if isinstance(err, dict):
        return err
    return {"message": str(err)} if err else {}


def _read_item(model: ModelAlias, obj: dict[str, Any], custom_id: str, latency: float) -> ItemResult:
    response = obj.get("response")
    error = obj.get("error")
    if response and int(response.get("status_code") or 0) == 200:
        try:
            reply, basis = _reply(model, response.get("body") or {}, response.get("request_id"), latency)
        except (MalformedReply, StreamCut) as exc:
            return ItemResult(custom_id=custom_id, error=exc)
        return ItemResult(custom_id=custom_id, reply=reply, price_basis=basis)
    if response:  # the request was run and the vendor answered it with an HTTP error
        status = int(response.get("status_code") or 0) or None
        body = response.get("body")
        err = _error_fields(body.get("error") if isinstance(body, dict) else body) or _error_fields(error)
        return ItemResult(custom_id=custom_id, error=BatchItemFailed(
            "errored", str(err.get("message") or f"HTTP {status}"), status, error_type=err.get("type"),
            code=err.get("code")))
    error = _error_fields(error)
    code = error.get("code")
    message = str(error.get("message") or code or "no response")
    if code == "batch_expired":
        return ItemResult(custom_id=custom_id, error=BatchItemFailed("expired", message, code=code))
    if code == "batch_cancelled":
        return ItemResult(custom_id=custom_id, error=BatchItemFailed("cancelled", message, code=code))
    return ItemResult(custom_id=custom_id, error=BatchItemFailed("errored", message, 400,
                                                                 error_type="invalid_request_error", code=code))


def _reply(model: ModelAlias, body: dict[str, Any], request_id: str | None, latency: float) -> tuple[Reply, Any]:
    """A chat completion body → `Reply` (read as the live transport reads one: `native.parse_body`) at the
    batch price."""
    content, reasoning, calls, finish, (tokens_in, tokens_out, cached, _), _, body_id = native.parse_body(
        "openai", body, model, "batch reply")
    cost, basis = reply_cost(model, tokens_in, tokens_out, cached)
    return Reply(content=content, reasoning=reasoning or None, tool_calls=calls, finish_reason=finish,
                 tokens_in=tokens_in, tokens_out=tokens_out, cached_tokens=cached, cost=cost, latency_ms=latency,
                 ttft_ms=None, request_id=request_id or body_id), basis


API = OpenAIBatchAPI()
"""The module's `BatchAPI` (what `batch_wire.batch_api` returns for an OpenAI alias)."""

__all__ = ["API", "FIND_SCAN", "LABEL_KEY", "READ_RETRIES", "OpenAIBatchAPI"]
