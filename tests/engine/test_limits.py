"""Per-model limits: a run never exceeds a model's concurrency, requests or tokens per minute by design."""

from __future__ import annotations

import asyncio

import pytest

from runner.engine.limits import Limits, TokenBucket
from runner.protocol.models_file import ModelAlias


async def test_concurrency_limit_is_never_exceeded() -> None:
    limits = Limits()
    model = ModelAlias(model="openai/x", max_concurrency=3)
    inside = peak = 0

    async def call() -> None:
        nonlocal inside, peak
        async with limits.for_model("x", model, 10):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(call() for _ in range(20)))
    assert peak == 3


async def test_requests_per_minute_bucket_blocks_past_its_capacity() -> None:
    limits = Limits()
    model = ModelAlias(model="openai/x", rpm=2)
    for _ in range(2):
        async with limits.for_model("x", model, 10):
            pass
    with pytest.raises(asyncio.TimeoutError):
        async with asyncio.timeout(0.2):
            async with limits.for_model("x", model, 10):
                pass


async def test_tokens_per_minute_bucket_counts_the_estimate() -> None:
    bucket = TokenBucket(per_minute=1000)
    await bucket.take(900)
    with pytest.raises(asyncio.TimeoutError):
        async with asyncio.timeout(0.2):
            await bucket.take(500)  # 100 left; refills at ~17 tokens/s
    # a request larger than a minute's budget is clamped to the capacity, never stuck forever
    fresh = TokenBucket(per_minute=100)
    await asyncio.wait_for(fresh.take(10_000), 1)


async def test_aliases_have_separate_limits() -> None:
    limits = Limits()
    a = ModelAlias(model="openai/a", rpm=1)
    async with limits.for_model("a", a, 1):
        pass
    async with asyncio.timeout(0.5):  # another alias is not held up by a's bucket
        async with limits.for_model("b", ModelAlias(model="openai/b", rpm=1), 1):
            pass
