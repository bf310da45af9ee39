"""One measured client, in a fresh interpreter (run by the benchmarks, not by hand).

    python bench/_worker.py MODE --base URL [--conversations N --turns T --concurrency C ...]

MODE is one of:
  httpx    bare httpx.AsyncClient loop, streamed OpenAI-format requests
  aiohttp  bare aiohttp.ClientSession loop, same requests
  litellm  bare `litellm.acompletion(stream=True)` loop, same requests
  litellm-nostream  the same with stream=False (for comparison: no per-chunk work)
  native   bare loop over `runner.providers.native.chat` (the native transport alone)
  engine   latitude's engine, called in-process the way `latitude run` calls it
           (load + plan + upgrade + StoreWriter + start + run_targets), without the
           live display; needs --protocol, --models, --db

Every bare loop has the engine's shape: N conversations of T sequential calls, at most C
conversations in flight (a slot is taken before a conversation's task is created), each
request carrying the conversation so far (user turns + the replies received).

Prints one JSON line at the end: import cost (wall, CPU), warm-up, then the workload
only (wall, CPU of the whole process incl. threads, completions, errors), GC time and RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")

USER_TURNS = [
    "Hello. This is turn one of a benchmark conversation; please reply briefly.",
    "Turn two. What did you say a moment ago, in one sentence?",
    "Turn three. Name something you noticed in this conversation.",
    "Turn four. Keep going, briefly.",
    "Turn five. Almost done; one more sentence please.",
    "Turn six, the last. Thanks for your replies.",
]
MODEL = "gpt-4o-mini"


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def hwm_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssTimeline:
    """RSS of this process every `every_s` seconds, with the completions so far."""

    def __init__(self, counter: Any, every_s: float = 2.0) -> None:
        import threading

        self.counter = counter
        self.every_s = every_s
        self.points: list[tuple[float, float, int]] = []
        self._t0 = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.points.append((round(time.perf_counter() - self._t0, 1), round(rss_mib(), 1), self.counter()))

    def stop(self) -> list[tuple[float, float, int]]:
        self._stop.set()
        self._thread.join()
        return self.points


class GcClock:
    """Time spent in the cyclic garbage collector (gc.callbacks)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.collections = [0, 0, 0]
        self._t = 0.0
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._t
            self.collections[info["generation"]] += 1


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of every live thread of this process, by Python thread name."""
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    tck = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                f = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(tid), f"tid {tid}")
        if int(tid) == os.getpid():
            name = "main"
        out[name] = out.get(name, 0.0) + (int(f[11]) + int(f[12])) / tck
    return out


def thread_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(v - before.get(k, 0.0), 3) for k, v in after.items() if v - before.get(k, 0.0) > 0.005}


def user_text(turn: int) -> str:
    return USER_TURNS[turn % len(USER_TURNS)]


# ---------------------------------------------------------------------------- bare loops


async def drive(n: int, turns: int, concurrency: int, call: Any, counts: dict[str, int]) -> dict[str, int]:
    """n conversations of `turns` sequential calls, at most `concurrency` in flight."""
    counts.setdefault("completions", 0)
    counts.setdefault("errors", 0)
    slots = asyncio.Semaphore(concurrency)

    async def conversation(i: int) -> None:
        messages: list[dict[str, str]] = []
        try:
            for t in range(turns):
                messages.append({"role": "user", "content": user_text(t)})
                reply = await call(messages)
                messages.append({"role": "assistant", "content": reply})
                counts["completions"] += 1
        except Exception as exc:  # noqa: BLE001
            counts["errors"] += 1
            if counts["errors"] <= 3:
                print(f"error in conversation {i}: {type(exc).__name__}: {exc}", file=sys.stderr)

    async with asyncio.TaskGroup() as tg:
        for i in range(n):
            await slots.acquire()
            tg.create_task(conversation(i)).add_done_callback(lambda _t: slots.release())
    return counts


def make_httpx(base: str, key: str) -> tuple[Any, Any]:
    import httpx

    client = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
        timeout=httpx.Timeout(600.0),
    )
    url = base.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {key}"}

    async def call(messages: list[dict[str, str]]) -> str:
        body = {"model": MODEL, "messages": messages, "stream": True, "stream_options": {"include_usage": True}}
        parts: list[str] = []
        async with client.stream("POST", url, json=body, headers=headers) as r:
            r.raise_for_status()
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                for ch in chunk.get("choices") or []:
                    text = (ch.get("delta") or {}).get("content")
                    if text:
                        parts.append(text)
        return "".join(parts)

    return client, call


def make_aiohttp(base: str, key: str) -> tuple[Any, Any]:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=0),
                                    timeout=aiohttp.ClientTimeout(total=600))
    url = base.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {key}"}

    async def call(messages: list[dict[str, str]]) -> str:
        body = {"model": MODEL, "messages": messages, "stream": True, "stream_options": {"include_usage": True}}
        parts: list[str] = []
        async with session.post(url, json=body, headers=headers) as r:
            r.raise_for_status()
            async for raw in r.content:
                line = raw.decode().strip()
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                for ch in chunk.get("choices") or []:
                    text = (ch.get("delta") or {}).get("content")
                    if text:
                        parts.append(text)
        return "".join(parts)

    return session, call


def make_litellm(base: str, key: str, stream: bool = True) -> tuple[Any, Any]:
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.drop_params = True
    litellm.cache = None

    async def call_plain(messages: list[dict[str, str]]) -> str:
        resp = await litellm.acompletion(
            model="openai/" + MODEL, messages=list(messages), api_base=base, api_key=key, stream=False,
            timeout=600, num_retries=0, caching=False,
        )
        return resp.choices[0].message.content or ""

    if not stream:
        return None, call_plain

    async def call(messages: list[dict[str, str]]) -> str:
        stream = await litellm.acompletion(
            model="openai/" + MODEL, messages=list(messages), api_base=base, api_key=key, stream=True,
            stream_options={"include_usage": True}, timeout=600, num_retries=0, caching=False,
        )
        parts: list[str] = []
        async for chunk in stream:
            choices = getattr(chunk, "choices", None) or []
            if choices:
                text = getattr(choices[0].delta, "content", None)
                if text:
                    parts.append(text)
        return "".join(parts)

    return None, call


def make_native(base: str, key: str, stream: bool = True) -> tuple[Any, Any]:
    """`runner.providers.native.chat` alone (no engine), the key in the environment as latitude reads it."""
    from runner.protocol.models_file import ModelAlias
    from runner.providers import native

    os.environ["BENCH_NATIVE_KEY"] = key
    model = ModelAlias(model="openai/" + MODEL, api_base=base, api_key_env="BENCH_NATIVE_KEY", transport="native",
                       stream=stream, timeout_s=600)

    async def call(messages: list[dict[str, str]]) -> str:
        return (await native.chat(model, list(messages))).content

    return None, call


async def bare(args: argparse.Namespace, out: dict[str, Any]) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    if args.mode == "litellm-nostream":
        closer, call = make_litellm(args.base, args.key, stream=False)
    else:
        maker = {"httpx": make_httpx, "aiohttp": make_aiohttp, "litellm": make_litellm, "native": make_native}[args.mode]
        closer, call = maker(args.base, args.key)
    out["import_wall_s"] = time.perf_counter() - t0
    out["import_cpu_s"] = time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    await call([{"role": "user", "content": "warm-up"}])
    out["warmup_wall_s"], out["warmup_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
    out["rss_before_mib"] = rss_mib()
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
        out["gc_frozen_objects"] = gc.get_freeze_count()
    if args.gc_threshold:
        gc.set_threshold(args.gc_threshold, 20, 100)
        out["gc_threshold"] = gc.get_threshold()
    gcc = GcClock()
    prof = start_profile(args)
    th0 = thread_cpu()
    live: dict[str, int] = {"completions": 0}
    timeline = RssTimeline(lambda: live["completions"])
    t0, c0 = time.perf_counter(), time.process_time()
    counts = await drive(args.conversations, args.turns, args.concurrency, call, live)
    out["rss_timeline"] = timeline.stop()
    out["wall_s"], out["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
    out["thread_cpu_s"] = thread_delta(th0, thread_cpu())
    stop_profile(prof, args)
    out.update(counts)
    out["gc_s"], out["gc_collections"] = gcc.total, gcc.collections
    out["rss_peak_mib"] = hwm_mib()
    out["litellm_imported"] = "litellm" in sys.modules
    if closer is not None:
        await closer.aclose() if hasattr(closer, "aclose") else await closer.close()


# ---------------------------------------------------------------------------- engine


def engine(args: argparse.Namespace, out: dict[str, Any]) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    from runner.engine.conversation import RunContext
    from runner.engine.driver import new_id, run_targets, start, started_event
    from runner.engine.limits import Limits
    from runner.plan import make_plan
    from runner.protocol import load, load_models
    from runner.store import StoreWriter
    from runner.store.db import upgrade
    from runner.store.tables import RunRow, utcnow

    out["import_runner_wall_s"] = time.perf_counter() - t0
    out["import_runner_cpu_s"] = time.process_time() - c0
    t1, c1 = time.perf_counter(), time.process_time()
    from runner.engine import providers

    if not args.native:
        providers.litellm()
    out["import_litellm_wall_s"] = time.perf_counter() - t1
    out["import_litellm_cpu_s"] = time.process_time() - c1
    out["import_wall_s"] = time.perf_counter() - t0
    out["import_cpu_s"] = time.process_time() - c0

    t0, c0 = time.perf_counter(), time.process_time()
    loaded = load(Path(args.protocol), load_models(Path(args.models)))
    plan = make_plan(loaded, replicates=args.conversations)
    upgrade(args.db)
    out["setup_wall_s"], out["setup_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0

    model = plan.specs[0].model
    events: dict[str, int] = {"TurnCompleted": 0}

    def emit(ev: Any) -> None:  # the cheapest listener: count events
        name = type(ev).__name__
        events[name] = events.get(name, 0) + 1

    run_id = new_id()
    options = {"replicates": args.conversations, "concurrency": args.concurrency, "bench": True}
    state: dict[str, Any] = {}

    async def main() -> None:
        # warm-up in the same event loop (litellm caches its HTTP clients per loop)
        t0, c0 = time.perf_counter(), time.process_time()
        await providers.chat(model, [{"role": "user", "content": "warm-up"}])
        out["warmup_wall_s"], out["warmup_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        out["rss_before_mib"] = rss_mib()
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
            out["gc_frozen_objects"] = gc.get_freeze_count()
        if args.gc_threshold:
            gc.set_threshold(args.gc_threshold, 20, 100)
            out["gc_threshold"] = gc.get_threshold()
        state["gc"] = GcClock()
        state["prof"] = start_profile(args)
        th0 = thread_cpu()
        state["timeline"] = RssTimeline(lambda: events["TurnCompleted"])
        state["t0"], state["c0"] = time.perf_counter(), time.process_time()
        writer = StoreWriter(args.db)
        s0, sc0 = time.perf_counter(), time.process_time()
        targets = await start(plan, writer, run_id, options, "{}", ("bench", "bench"))
        out["start_wall_s"], out["start_cpu_s"] = time.perf_counter() - s0, time.process_time() - sc0
        ctx = RunContext(run_id=run_id, protocol=plan.protocol, writer=writer, limits=Limits(), emit=emit,
                         sources={n: {"text": s.text} for n, s in plan.protocol.sources.items()})
        emit(started_event(run_id, plan, targets))
        state["statuses"] = dict(await run_targets(ctx, targets, args.concurrency))
        await writer.update(RunRow, run_id, status="done", ended_at=utcnow())
        out["thread_cpu_s"] = thread_delta(th0, thread_cpu())  # before close: the writer thread ends there
        await writer.close()
        out["wall_s"], out["cpu_s"] = time.perf_counter() - state["t0"], time.process_time() - state["c0"]
        out["rss_timeline"] = state["timeline"].stop()
        stop_profile(state["prof"], args)

    from runner.engine import eventloop

    kind = args.loop or eventloop.loop_kind()  # by default the loop `latitude run` picks
    if args.gc_default:
        eventloop.run(main(), kind)
    else:  # as `latitude run` drives it (runner.engine.runs.drive)
        from runner.engine.gctune import tuned_gc

        with tuned_gc():
            eventloop.run(main(), kind)
    out["gc_tuned"] = not args.gc_default
    out["event_loop"] = kind
    gcc = state["gc"]
    out["gc_s"], out["gc_collections"] = gcc.total, gcc.collections
    out["rss_peak_mib"] = hwm_mib()
    out["statuses"] = state.get("statuses")
    out["events"] = events

    import sqlite3

    path = args.db.split("sqlite:///", 1)[1]
    con = sqlite3.connect(path)
    try:
        (done,) = con.execute(
            "select count(*) from messages m join conversations c on c.id = m.conversation_id "
            "where c.run_id = ? and m.role = 'assistant'", (run_id,)).fetchone()
        statuses = dict(con.execute("select status, count(*) from conversations where run_id = ? group by status",
                                    (run_id,)).fetchall())
        reasons = dict(con.execute("select stop_reason, count(*) from conversations where run_id = ? "
                                   "group by stop_reason", (run_id,)).fetchall())
    finally:
        con.close()
    out["completions"] = done
    out["db_statuses"] = statuses
    out["db_stop_reasons"] = reasons
    out["errors"] = sum(v for k, v in statuses.items() if k != "done")
    out["run_id"] = run_id
    out["litellm_imported"] = "litellm" in sys.modules


# ---------------------------------------------------------------------------- profiling


def start_profile(args: argparse.Namespace) -> Any:
    if not args.profile:
        return None
    import cProfile

    prof = cProfile.Profile()
    prof.enable()
    return prof


def stop_profile(prof: Any, args: argparse.Namespace) -> None:
    if prof is None:
        return
    prof.disable()
    prof.dump_stats(args.profile)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["httpx", "aiohttp", "litellm", "litellm-nostream", "native", "engine"])
    p.add_argument("--base", default="", help="OpenAI base URL of the fake provider (…/v1)")
    p.add_argument("--key", default=os.environ.get("BENCH_FAKE_KEY", "sk-bench"))
    p.add_argument("--conversations", type=int, default=200)
    p.add_argument("--turns", type=int, default=6)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--protocol")
    p.add_argument("--models")
    p.add_argument("--db")
    p.add_argument("--profile", help="write a cProfile of the workload here")
    p.add_argument("--native", action="store_true",
                   help="engine: the models file's aliases are native; do not import litellm")
    p.add_argument("--gc-freeze", action="store_true",
                   help="what-if: gc.freeze() after imports and warm-up (moves litellm's import-time objects "
                        "out of the collector's reach)")
    p.add_argument("--gc-default", action="store_true",
                   help="engine: keep CPython's GC settings (`latitude run` freezes and raises thresholds: "
                        "runner.engine.gctune)")
    p.add_argument("--gc-threshold", type=int, default=0,
                   help="what-if: gc.set_threshold(N, 20, 100) after warm-up (CPython's default is 700, 10, 10)")
    p.add_argument("--loop", choices=["asyncio", "uvloop"],
                   help="event loop (bare loops: asyncio unless told; engine: the one `latitude run` picks, "
                        "runner.engine.eventloop)")
    args = p.parse_args()
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(65536, hard), hard))
    except (ValueError, OSError):
        pass
    out: dict[str, Any] = {"mode": args.mode, "conversations": args.conversations, "turns": args.turns,
                           "concurrency": args.concurrency}
    if args.mode == "engine":
        engine(args, out)
    elif args.loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(bare(args, out))
        out["event_loop"] = "uvloop"
    else:
        asyncio.run(bare(args, out))
        out["event_loop"] = "asyncio"
    out["cpu_per_completion_ms"] = 1000 * out["cpu_s"] / max(1, out["completions"])
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
