"""Hot spots: what the engine itself spends per model turn, piece by piece, in isolation.

    uv run python bench/hotspots.py [--n 2000]

The engine's CPU per completion is bare litellm's plus its own bookkeeping (throughput.py
measures the total). This times each piece of that bookkeeping on its own, with CPU time
(`time.process_time`, best of 3 rounds of `--n` repetitions, so other processes barely
matter), using
the engine's own functions on a 6-turn conversation of bench/protocols/six-turns.yaml:

- per turn, on the event loop: building the two `MessageRow`s (user + assistant), the
  writer round trip for them (asyncio.gather of two `writer.add`, includes the writer
  thread's commit), `cost_of` (litellm price lookup), `messages_hash` + `json.dumps` of
  the request record, rendering the user turn (`variables()` + Jinja), the retry wrapper
  (tenacity `AsyncRetrying` set up per call), `Limits.for_model`, `request_params`,
  `params.model_dump`;
- for comparison: `StoreWriter.insert` (no row object) and one batched op.

Any piece whose internals changed under it is reported as n/a. Results go to
bench/results/hotspots.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import REPO, save, table  # noqa: E402

import os  # noqa: E402

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")

PROTOCOL = Path(__file__).resolve().parent / "protocols" / "six-turns.yaml"


ROUNDS = 3
"""Each figure is the best of this many rounds (the machine may be shared)."""


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    for _ in range(min(50, n)):
        fn()
    best = float("inf")
    for _ in range(ROUNDS):
        c0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - c0) / n * 1e6)
    return best


async def per_call_async_us(fn: Callable[[], Any], n: int) -> float:
    for _ in range(min(20, n)):
        await fn()
    best = float("inf")
    for _ in range(ROUNDS):
        c0 = time.process_time()
        for _ in range(n):
            await fn()
        best = min(best, (time.process_time() - c0) / n * 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    n = args.n

    from runner.engine import providers
    from runner.engine.conversation import Conversation, Msg, RunContext
    from runner.engine.driver import conversation_row, run_row
    from runner.engine.events import ignore
    from runner.engine.limits import Limits
    from runner.engine.retry import RetryPolicy, call_with_retry
    from runner.plan import make_plan
    from runner.protocol import load, load_models
    from runner.store import StoreWriter
    from runner.store.db import upgrade
    from runner.store.tables import ConversationRow, MessageRow

    td = tempfile.TemporaryDirectory(prefix="latitude-hotspots-")
    models_path = Path(td.name) / "models.yaml"
    models_path.write_text("models:\n  bench: {model: openai/gpt-4o-mini, api_base: 'http://127.0.0.1:9/v1'}\n")
    loaded = load(PROTOCOL, load_models(models_path))
    plan = make_plan(loaded, replicates=1)
    spec = plan.specs[0]
    model = spec.model
    providers.litellm()  # import outside the timings

    results: dict[str, float | None] = {}

    def measure(name: str, fn: Callable[[], Any]) -> None:
        try:
            results[name] = per_call_us(fn, n)
        except Exception as exc:  # noqa: BLE001 - internals moved: report n/a
            print(f"  {name}: n/a ({type(exc).__name__}: {exc})", file=sys.stderr)
            results[name] = None

    db = Path(td.name) / "h.db"
    url = f"sqlite:///{db}"
    upgrade(url)

    async def run() -> None:
        writer = StoreWriter(url)
        await writer.add(run_row(plan, "r1", {}, "{}", ("bench", "bench")))
        crow = conversation_row("r1", spec)
        await writer.add(crow)
        cid = crow.id
        ctx = RunContext(run_id="r1", protocol=plan.protocol, writer=writer, limits=Limits(), emit=ignore)
        conv = Conversation(ctx, spec, cid)
        for t in range(5):  # a conversation 5 turns in: 10 messages
            conv.msgs.append(Msg("user", "user", f"user turn {t} " * 8))
            conv.msgs.append(Msg("assistant", "model", f"[gpt-4o-mini] reply {t}: " + "word " * 12,
                                 tokens_in=40, tokens_out=16, cost=1e-5))
        conv.msgs.append(Msg("user", "user", "turn six " * 5))
        view = conv.view()
        template = "Turn {{ turn }}. Keep going, briefly."
        idx = [1000]

        def row(role: str) -> MessageRow:
            idx[0] += 1
            return MessageRow(conversation_id=cid, idx=idx[0], role=role, speaker="model", step="steps[3]",
                              content="[gpt-4o-mini] reply: " + "word " * 12, latency_ms=101.0, ttft_ms=100.0,
                              tokens_in=40, tokens_out=16, cost=1e-5,
                              request_json=json.dumps({"model": model.model, "params": {}, "messages": 12}))

        measure("MessageRow(...) construction (x2 per turn)", lambda: row("assistant"))
        measure("cost_of (litellm cost_per_token)", lambda: providers.cost_of(model, 400, 16, 0))
        measure("messages_hash + json.dumps(request)", lambda: json.dumps(
            {"model": model.model, "params": {}, "messages_sha256": providers.messages_hash(view),
             "messages": len(view), "tools": []}))
        measure("render user turn (variables + Jinja)", lambda: conv.render(template))
        measure("conv.view() (message list for the request)", conv.view)
        measure("request_params + params.model_dump", lambda: (
            providers.request_params(model, plan.protocol.params.model_dump(exclude_none=True))))
        measure("context_window (per turn via telemetry)", lambda: providers.context_window(model))

        async def limits() -> None:
            async with ctx.limits.for_model("bench", model, 1000):
                pass

        async def nothing() -> int:
            return 1

        async def retry() -> None:
            await call_with_retry(nothing, RetryPolicy())

        async def two_adds() -> None:
            await asyncio.gather(writer.add(row("user")), writer.add(row("assistant")))

        def fields() -> dict[str, Any]:
            idx[0] += 1
            return dict(conversation_id=cid, idx=idx[0], role="assistant", speaker="model", step="steps[3]",
                        content="[gpt-4o-mini] reply: " + "word " * 12, latency_ms=101.0, ttft_ms=100.0,
                        tokens_in=40, tokens_out=16, cost=1e-5, request_json="{}")

        async def two_inserts() -> None:
            await asyncio.gather(writer.insert(MessageRow, **fields()), writer.insert(MessageRow, **fields()))

        async def one_update() -> None:
            await writer.update(ConversationRow, cid, turns=idx[0])

        for name, fn, reps in (
            ("Limits.for_model (no limits set)", limits, n),
            ("call_with_retry wrapper (no retry: the first attempt runs outside tenacity)", retry, n),
            ("writer: gather(add, add) round trip, 1 conversation", two_adds, max(200, n // 10)),
            ("writer: gather(insert, insert) round trip", two_inserts, max(200, n // 10)),
            ("writer: update round trip", one_update, max(200, n // 10)),
        ):
            try:
                results[name] = await per_call_async_us(fn, reps)
            except Exception as exc:  # noqa: BLE001
                print(f"  {name}: n/a ({type(exc).__name__}: {exc})", file=sys.stderr)
                results[name] = None

        async def concurrent_adds(k: int) -> float:
            c0 = time.process_time()
            await asyncio.gather(*(writer.add(row("assistant")) for _ in range(k)))
            return (time.process_time() - c0) / k * 1e6

        await concurrent_adds(100)
        results["writer: add, 500 at once (group commit), per row"] = min([await concurrent_adds(500)
                                                                           for _ in range(ROUNDS)])
        await writer.close()

    asyncio.run(run())
    td.cleanup()

    print(table([[k, v] for k, v in results.items()], ["piece (CPU per call, whole process)", "µs"]))
    per_turn = sum(v for k, v in results.items() if v is not None and k in (
        "MessageRow(...) construction (x2 per turn)", "cost_of (litellm cost_per_token)",
        "messages_hash + json.dumps(request)", "render user turn (variables + Jinja)",
        "conv.view() (message list for the request)", "request_params + params.model_dump",
        "Limits.for_model (no limits set)", "call_with_retry wrapper (no retry: the first attempt runs outside tenacity)",
        "writer: gather(add, add) round trip, 1 conversation"))
    per_turn += results.get("MessageRow(...) construction (x2 per turn)") or 0.0  # two rows per turn
    print(f"\nsum of the engine's own per-turn pieces above: ~{per_turn / 1000:.2f} ms per completion "
          "(the writer round trip measured alone, one conversation, so without group commit)")
    path = save("hotspots", {"n": n, "us_per_call": results, "engine_pieces_per_turn_ms": per_turn / 1000})
    print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
