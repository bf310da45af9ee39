"""Measure StoreWriter throughput: N coroutines each adding messages and updating
their conversation, like the engine does per turn.

    uv run python tests/store/bench_writer.py [--url URL] [--coroutines 2000] [--ops 20]

Prints ops/s, batches, and the event loop's worst scheduling lag (a probe that
sleeps 1 ms in a loop: the lag shows whether the loop thread is kept busy).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid

from runner.store import ConversationRow, MessageRow, RunRow, StoreWriter, upgrade


def _run_row() -> RunRow:
    return RunRow(
        id=uuid.uuid4().hex[:12], protocol_name="bench", protocol_version="1", protocol_path="bench.yaml",
        protocol_text="", protocol_hash="", plan_json="[]", models_json="{}", options_json="{}",
        latitude_version="0", litellm_version="0",
    )


async def bench(
    url: str, coroutines: int, ops_per: int, max_batch: int = 1000, fast: bool = False
) -> dict[str, float]:
    writer = StoreWriter(url, max_batch=max_batch)
    run = _run_row()
    await writer.add(run)
    convs = [
        ConversationRow(id=uuid.uuid4().hex[:12], run_id=run.id, seq=i, model_alias="m", litellm_model="sim/echo",
                        vendor="sim", condition="c", replicate=0, status="running")
        for i in range(coroutines)
    ]
    await asyncio.gather(*(writer.add(c) for c in convs))

    lag = 0.0
    stop = False

    async def probe() -> None:
        nonlocal lag
        while not stop:
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            lag = max(lag, time.perf_counter() - t - 0.001)

    async def conversation(conv: ConversationRow) -> None:
        for i in range(ops_per // 2):
            fields = dict(conversation_id=conv.id, idx=i, role="assistant", speaker="model",
                          step="steps[0]", content="x" * 200, tokens_in=10, tokens_out=20)
            if fast:
                await writer.insert(MessageRow, **fields)
            else:
                await writer.add(MessageRow(**fields))
            await writer.update(ConversationRow, conv.id, turns=i + 1, tokens_in=10 * (i + 1))

    batches0, ops0 = writer.batches, writer.ops
    probe_task = asyncio.create_task(probe())
    t0 = time.perf_counter()
    await asyncio.gather(*(conversation(c) for c in convs))
    elapsed = time.perf_counter() - t0
    stop = True
    await probe_task
    total = writer.ops - ops0
    batches = writer.batches - batches0
    await writer.close()
    return {"ops": total, "seconds": elapsed, "ops_per_s": total / elapsed, "batches": batches,
            "avg_batch": total / max(batches, 1), "largest_batch": writer.largest_batch, "max_loop_lag_ms": lag * 1000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--coroutines", type=int, default=2000)
    parser.add_argument("--ops", type=int, default=20, help="ops per coroutine (half adds, half updates)")
    parser.add_argument("--max-batch", type=int, default=1000)
    parser.add_argument("--insert", action="store_true", help="writer.insert(MessageRow, **fields) instead of add(row)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{os.path.join(tmp, 'bench.db')}"
        upgrade(url)
        result = asyncio.run(bench(url, args.coroutines, args.ops, args.max_batch, args.insert))
    print(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
