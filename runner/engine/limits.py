"""Per-model limits: requests in flight, requests per minute, tokens per minute.

A run never exceeds a vendor's rate limits by design: every call acquires its model's
slot and bucket capacity before it is sent.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator

from ..protocol.models_file import ModelAlias


class TokenBucket:
    """A bucket refilled continuously at `per_minute` units a minute."""

    def __init__(self, per_minute: int):
        self.capacity = float(per_minute)
        self.level = float(per_minute)
        self.rate = per_minute / 60.0
        self.stamp = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self, amount: float) -> None:
        amount = min(amount, self.capacity)
        async with self.lock:
            while True:
                now = time.monotonic()
                self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.level >= amount:
                    self.level -= amount
                    return
                await asyncio.sleep((amount - self.level) / self.rate)


class _ModelLimit:
    def __init__(self, model: ModelAlias):
        self.slots = asyncio.Semaphore(model.max_concurrency) if model.max_concurrency else None
        self.requests = TokenBucket(model.rpm) if model.rpm else None
        self.tokens = TokenBucket(model.tpm) if model.tpm else None


class Limits:
    """Rate limits for every model alias of a run."""

    def __init__(self) -> None:
        self._models: dict[str, _ModelLimit] = {}

    def _for(self, key: str, model: ModelAlias) -> _ModelLimit:
        limit = self._models.get(key)
        if limit is None:
            limit = self._models[key] = _ModelLimit(model)
        return limit

    @asynccontextmanager
    async def for_model(self, key: str, model: ModelAlias, est_tokens: int) -> AsyncIterator[None]:
        limit = self._for(key, model)
        if limit.slots is None and limit.requests is None and limit.tokens is None:
            yield
            return
        if limit.slots is not None:
            await limit.slots.acquire()
        try:
            if limit.requests is not None:
                await limit.requests.take(1)
            if limit.tokens is not None:
                await limit.tokens.take(est_tokens)
            yield
        finally:
            if limit.slots is not None:
                limit.slots.release()
