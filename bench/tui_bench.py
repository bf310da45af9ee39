"""TUI benchmark: the conversations screen on 100,000 conversations / 1,000,000 messages.

    uv run python bench/tui_bench.py                 # build (or reuse) the db, measure, print
    uv run python bench/tui_bench.py --rebuild       # build the db again
    uv run python bench/tui_bench.py --json bench/results/tui.json

The database is built once with plain sqlite3 bulk inserts (the FTS triggers are dropped
during the load and the index rebuilt after it, then the triggers put back, exactly as the
migration made them) and cached in ``/tmp/latitude-tui-bench-<size>.db``.

Measured (median of ``--repeat`` runs, after one warm-up):
- **open**: from pressing Enter on the run in the runs screen to the first page of the
  conversations table painted (the table stamps the time it first renders a new set of rows), via Pilot;
- **search (reader)**: `StoreReader.page()` + `count()` for a full-text query, alone;
- **search (screen)**: typing the query in the search box and pressing Enter, to the new
  first page painted (and, separately, to the count of matches shown);
- **start-up**: a fresh process (``python -c``, as ``latitude tui`` starts) to the runs screen
  showing its rows, headless, with its parts: interpreter + ``import tui.app``, ``make_app()``
  (opening the store and checking its migrations), and the app's own start to the runs shown.
Targets (issues 5 and 14): open < 1 s, search < 200 ms, start-up < 1 s (on a quiet machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

RUN_ID = "benchrun0001"
MODELS = [("gpt-4o", "openai/gpt-4o", "openai"), ("claude-sonnet", "anthropic/claude-sonnet-4", "anthropic"),
          ("gemini-pro", "gemini/gemini-2.5-pro", "google"), ("llama-70b", "groq/llama-3.3-70b", "meta"),
          ("mistral-large", "mistral/mistral-large", "mistral")]
CONDITIONS = ["baseline", "warm", "cold", "named", "anonymous"]
STOPS = ["completed", "stop_phrase", "max_turns", "declined", "error:timeout"]
RARE = "lighthouse"
"""Planted in 0.1% of model messages (a rare term: ~1,000 hits)."""
MEDIUM = "story"
"""Planted in 5% of model messages (~50,000 hits)."""
QUERIES = {"rare word": RARE, "common word": MEDIUM, "phrase": '"quiet lighthouse"', "prefix": "lightho*"}


def _vocabulary(rng: random.Random, n: int = 4000) -> list[str]:
    letters = "etaoinshrdlucmfwypvbgkqjxz"
    words = set()
    while len(words) < n:
        k = rng.randint(2, 9)
        words.add("".join(rng.choice(letters[: 10 + k * 2]) for _ in range(k)))
    words.discard(RARE)
    words.discard(MEDIUM)
    return sorted(words)


def build(path: Path, conversations: int = 100_000, messages_per: int = 10, seed: int = 5) -> None:
    """Write the benchmark database at ``path`` (replacing it)."""
    from runner.store.db import upgrade

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    upgrade(f"sqlite:///{path}")
    rng = random.Random(seed)
    vocab = _vocabulary(rng)
    weights = [1 / (i + 1) for i in range(len(vocab))]  # Zipf
    cum = []
    acc = 0.0
    for w in weights:
        acc += w
        cum.append(acc)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    triggers = [sql for (sql,) in con.execute(
        "SELECT sql FROM sqlite_master WHERE type='trigger' AND name LIKE 'messages_fts_%'")]
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='trigger' AND name LIKE 'messages_fts_%'"
                               ).fetchall():
        con.execute(f"DROP TRIGGER {name}")
    con.execute("BEGIN")
    now = "2026-01-05 10:00:00.000000"
    con.execute(
        "INSERT INTO runs (id, protocol_name, protocol_version, protocol_path, protocol_text, protocol_hash, plan_json,"
        " models_json, options_json, latitude_version, litellm_version, started_at, status, simulated) VALUES"
        " (?, 'bench', '1', 'bench.yaml', 'name: bench', 'h', '{}', '{}', '{}', 'bench', 'bench', ?, 'done', 1)",
        (RUN_ID, now))
    conv_rows = []
    msg_rows = []
    offer_rows = []
    mid = 0
    for i in range(conversations):
        cid = f"c{i:011d}"
        alias, litellm_model, vendor = MODELS[i % len(MODELS)]
        cond = CONDITIONS[(i // len(MODELS)) % len(CONDITIONS)]
        rep = i // (len(MODELS) * len(CONDITIONS))
        stop = STOPS[rng.randrange(len(STOPS))]
        conv_rows.append((cid, RUN_ID, i, alias, litellm_model, vendor, 0, cond, rep, "{}", "single", "done", stop,
                          messages_per // 2, 300, 200, 0, 0.0012, now))
        for idx in range(messages_per):
            words = rng.choices(vocab, cum_weights=cum, k=rng.randint(12, 40))
            model = idx % 2 == 1
            if model:
                r = rng.random()
                if r < 0.001:
                    words[len(words) // 2: len(words) // 2] = ["quiet", RARE]
                elif r < 0.051:
                    words.insert(3, MEDIUM)
            mid += 1
            msg_rows.append((mid, cid, idx, "assistant" if model else "user", "model" if model else "user",
                             f"steps[{idx // 2}]", " ".join(words), now, now,
                             812.0 if model else None, 95.0 if model else None))
        offer_rows.append((cid, "steps[2]", "story_break", 4, 5, ["accept", "decline", "unclear"][i % 3],
                           "patterns", "", now))
        if len(msg_rows) >= 50_000:
            _flush(con, conv_rows, msg_rows, offer_rows)
    _flush(con, conv_rows, msg_rows, offer_rows)
    con.execute("COMMIT")
    con.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
    for sql in triggers:
        con.execute(sql)
    con.execute("PRAGMA optimize")
    con.execute("ANALYZE")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def _flush(con: sqlite3.Connection, convs: list[Any], msgs: list[Any], offers: list[Any]) -> None:
    con.executemany(
        "INSERT INTO conversations (id, run_id, seq, model_alias, litellm_model, vendor, simulated, condition,"
        " replicate, params_json, kind, status, stop_reason, turns, tokens_in, tokens_out, cached_tokens, cost,"
        " started_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", convs)
    con.executemany(
        "INSERT INTO messages (id, conversation_id, idx, role, speaker, step, content, started_at, created_at,"
        " latency_ms, ttft_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?)", msgs)
    con.executemany(
        "INSERT INTO offers (conversation_id, step, label, offer_message_idx, reply_message_idx, classification,"
        " method, evidence, created_at) VALUES (?,?,?,?,?,?,?,?,?)", offers)
    convs.clear()
    msgs.clear()
    offers.clear()


def ensure_db(conversations: int, messages_per: int, rebuild: bool = False) -> Path:
    path = Path(f"/tmp/latitude-tui-bench-{conversations}x{messages_per}.db")
    if rebuild or not path.exists():
        t0 = time.perf_counter()
        print(f"building {path} ({conversations:,} conversations, {conversations * messages_per:,} messages)…",
              file=sys.stderr)
        build(path, conversations, messages_per)
        print(f"built in {time.perf_counter() - t0:.1f} s ({path.stat().st_size / 1e6:,.0f} MB)", file=sys.stderr)
    else:
        from runner.store.db import upgrade

        upgrade(f"sqlite:///{path}")
    return path


def measure_reader(url: str, repeat: int) -> dict[str, Any]:
    from runner.store.reader import ConversationFilter, StoreReader

    reader = StoreReader(url)
    out: dict[str, Any] = {}
    try:
        def timed(fn: Any) -> float:
            fn()  # warm-up
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            return statistics.median(times)

        out["first page (no filter)"] = timed(lambda: reader.page(RUN_ID, ConversationFilter(), limit=100))
        out["count (no filter)"] = timed(lambda: reader.count(RUN_ID, ConversationFilter()))
        out["first page (model filter)"] = timed(
            lambda: reader.page(RUN_ID, ConversationFilter(model="claude-sonnet", offer_outcome="decline")))
        for label, q in QUERIES.items():
            flt = ConversationFilter(search=q)
            out[f"search {label} {q!r} (page + count)"] = timed(
                lambda flt=flt: (reader.page(RUN_ID, flt, limit=100), reader.count(RUN_ID, flt)))
            out[f"  hits for {q!r}"] = reader.count(RUN_ID, flt)
    finally:
        reader.close()
    return out


async def measure_screen(url: str, repeat: int) -> dict[str, Any]:
    from tui.app import make_app
    from tui.screens.conversations import ConversationsScreen

    opens: list[float] = []
    searches: dict[str, list[float]] = {label: [] for label in QUERIES}
    counts: dict[str, list[float]] = {label: [] for label in QUERIES}
    for attempt in range(repeat + 1):
        app = make_app(db_url=url, coder="bench", cursor_blink=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await _until(pilot, lambda: getattr(app.screen, "loaded", False))
            t0 = time.perf_counter()
            await pilot.press("enter")
            await _until(pilot, lambda: isinstance(app.screen, ConversationsScreen) and app.screen.shown_at)
            screen = app.screen
            assert isinstance(screen, ConversationsScreen)
            if attempt:
                opens.append(screen.shown_at - t0)
            for label, q in QUERIES.items():
                await pilot.press("slash")
                screen.query_one("#search").value = q
                t0 = time.perf_counter()
                await pilot.press("enter")
                await _until(pilot, lambda: screen.shown_at > t0)
                if attempt:
                    searches[label].append(screen.shown_at - t0)
                await _until(pilot, lambda: screen.count is not None)
                if attempt:
                    counts[label].append(time.perf_counter() - t0)
    out: dict[str, Any] = {"open conversations screen (to first page shown)": statistics.median(opens)}
    for label, q in QUERIES.items():
        out[f"search {label} {q!r} (Enter to page shown)"] = statistics.median(searches[label])
        out[f"  count {label} {q!r} (Enter to count shown)"] = statistics.median(counts[label])
    return out


_STARTUP_CHILD = r"""
import json, os, sys, time
t0, c0 = time.perf_counter(), time.process_time()
from tui.app import make_app
from tui.screens.runs import RunsScreen
t_import, c_import = time.perf_counter(), time.process_time()
app = make_app(db_url=sys.argv[1], coder="bench", cursor_blink=False)
t_make, c_make = time.perf_counter(), time.process_time()
marks = {}

async def watch(pilot):
    while not (isinstance(app.screen, RunsScreen) and app.screen.loaded):
        await pilot.pause(0.001)
    marks["shown"], marks["cpu"] = time.perf_counter(), time.process_time()
    app.exit()

app.run(headless=True, size=(120, 40), auto_pilot=watch)
print(json.dumps({"import": t_import - t0, "make_app": t_make - t_import, "app to runs shown": marks["shown"] - t_make,
                  "import (CPU)": c_import - c0, "make_app (CPU)": c_make - c_import,
                  "app to runs shown (CPU)": marks["cpu"] - c_make}))
"""


def measure_startup(url: str, repeat: int) -> dict[str, Any]:
    """Fresh processes, from spawn to the runs screen shown (median of ``repeat`` after a warm-up)."""
    import subprocess

    totals: list[float] = []
    parts: dict[str, list[float]] = {}
    env = {**os.environ, "TEXTUAL_ANIMATIONS": "none", "PYTHONPATH": str(REPO)}
    import resource

    cpus: list[float] = []
    for attempt in range(repeat + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _STARTUP_CHILD, url], capture_output=True, text=True,
                              env=env, cwd=REPO, check=True)
        total = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if attempt:
            totals.append(total)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items():
                parts.setdefault(k, []).append(v)
    out: dict[str, Any] = {"start-up: process spawn to runs screen shown": statistics.median(totals),
                           "  CPU time of that process (user + sys; the wall time on a quiet machine)":
                               statistics.median(cpus)}
    for k, v in parts.items():
        out[f"  of which {k}"] = statistics.median(v)
    return out


async def _until(pilot: Any, predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not reached")
        await pilot.pause(0.001)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conversations", type=int, default=100_000)
    ap.add_argument("--messages-per", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--reader-only", action="store_true")
    ap.add_argument("--startup-only", action="store_true", help="measure only the start-up (fresh processes)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    path = ensure_db(args.conversations, args.messages_per, args.rebuild)
    url = f"sqlite:///{path}"
    results: dict[str, Any] = {"db": str(path), "conversations": args.conversations,
                               "messages": args.conversations * args.messages_per,
                               }
    if not args.startup_only:
        results["reader"] = measure_reader(url, args.repeat)
    if not args.reader_only:
        results["startup"] = measure_startup(url, args.repeat)
    if not (args.reader_only or args.startup_only):
        results["screen"] = asyncio.run(measure_screen(url, args.repeat))
    targets = {"open": 1.0, "search": 0.2, "start-up": 1.0}
    for part in ("reader", "startup", "screen"):
        for name, v in results.get(part, {}).items():
            if isinstance(v, float):
                target = (targets["open"] if name.startswith("open") else targets["start-up"]
                          if name.startswith("start-up") else targets["search"] if "search" in name else None)
                verdict = "" if target is None else ("  ok" if v < target else f"  OVER {target * 1000:.0f} ms")
                print(f"{part:7s} {name:55s} {v * 1000:9.1f} ms{verdict}")
            else:
                print(f"{part:7s} {name:55s} {v:>9,}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
    main()
