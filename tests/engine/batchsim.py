"""An in-process `BatchAPI` answering from a small deterministic responder: the collector's
own tests (waves, splits, failures, resume) without a vendor wire. The vendor modules and the
fake provider's batch endpoints are tested with the collector in `test_batch_wire_run.py`."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from runner.protocol.models_file import ModelAlias
from runner.providers.base import Reply
from runner.providers.batch_wire import BatchItemFailed, BatchRequest, BatchStatus, ItemResult


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict))


def answer(messages: list[dict[str, Any]]) -> str:
    """What the responder says: names the last user message and the number of replies so far."""
    last = next((_text(m["content"]) for m in reversed(messages) if m["role"] == "user"), "")
    n = sum(1 for m in messages if m["role"] == "assistant")
    if "Answer with A or B" in last or "prefer" in last.lower():
        return "A"
    return f"reply {n + 1} to: {last[:60]}"


@dataclass
class _Batch:
    label: str
    lines: list[dict[str, Any]]
    polls: int = 0
    state: str = "in_progress"


@dataclass
class SimBatchAPI:
    """A vendor batch API in memory. `polls_to_end` polls before a batch ends (None: never);
    `fail` maps a custom_id prefix or an owner-independent predicate to an item failure."""

    name: str = "openai"
    max_requests: int = 50_000
    max_bytes: int = 200_000_000
    polls_to_end: int | None = 1
    fail_first: int = 0
    """Fail this many items (errored) of the first batch ended."""
    expire: int = 0
    """End this many batches (the first ones) as ``expired`` with half their items processed."""
    batches: dict[str, _Batch] = field(default_factory=dict)
    received: Counter[str] = field(default_factory=Counter)
    """Times each custom_id was submitted."""
    submits: int = 0
    lost_submit: bool = False
    """Create the batch, then raise (the answer lost): `find` still knows it."""
    responder: Callable[[list[dict[str, Any]]], str] = answer
    """What the model says to a message list."""
    _failed: int = 0
    _expired: int = 0

    def line(self, request: BatchRequest) -> bytes:
        return json.dumps({"custom_id": request.custom_id, "messages": request.messages,
                           "model": request.model.model}).encode()

    async def submit(self, model: ModelAlias, lines: list[bytes], *, label: str) -> str:
        await asyncio.sleep(0)
        self.submits += 1
        items = [json.loads(b) for b in lines]
        for item in items:
            self.received[item["custom_id"]] += 1
        vid = f"batch_{len(self.batches) + 1}"
        self.batches[vid] = _Batch(label, items)
        if self.lost_submit:
            raise ConnectionError("connection reset after the batch was created")
        return vid

    async def find(self, model: ModelAlias, label: str) -> str | None:
        return next((vid for vid, b in self.batches.items() if b.label == label), None)

    async def status(self, model: ModelAlias, vendor_id: str) -> BatchStatus:
        await asyncio.sleep(0)
        b = self.batches[vendor_id]
        b.polls += 1
        if self.polls_to_end is not None and b.polls >= self.polls_to_end and b.state == "in_progress":
            b.state = "expired" if self._expired < self.expire else "ended"
            self._expired += b.state == "expired"
        n = len(b.lines)
        done = n if b.state == "ended" else (n // 2 if b.state == "expired" else 0)
        return BatchStatus(vendor_id, b.state, succeeded=done, expired=n - done if b.state == "expired" else 0,  # type: ignore[arg-type]
                           processing=n - done if b.state == "in_progress" else 0, raw={"id": vendor_id})

    async def results(self, model: ModelAlias, vendor_id: str) -> AsyncIterator[ItemResult]:
        b = self.batches[vendor_id]
        n = len(b.lines) if b.state == "ended" else len(b.lines) // 2
        for item in b.lines[:n]:
            await asyncio.sleep(0)
            if self._failed < self.fail_first:
                self._failed += 1
                yield ItemResult(item["custom_id"], error=BatchItemFailed("errored", "server_error", 500))
                continue
            text = self.responder(item["messages"])
            yield ItemResult(item["custom_id"], reply=Reply(
                content=text, reasoning=None, tool_calls=[], finish_reason="stop", tokens_in=100, tokens_out=20,
                cached_tokens=0, cost=None, latency_ms=1.0, ttft_ms=None, request_id=item["custom_id"],
                request={"model": item["model"]}))

    async def cancel(self, model: ModelAlias, vendor_id: str) -> None:
        self.batches[vendor_id].state = "cancelled"
