"""The native transport against its targets, side by side in one session.

    uv run python bench/native.py [--quick] [--no-litellm] [--no-cli] [--scale] [--compare-gc] [--compare-loop] [--repeat N]
                                  [--wait-quiet S]

One fake provider process (its CPU reported apart, never counted as the client's); each
client in a fresh interpreter (bench/_worker.py):

  W1 (200 conversations x 6 turns, 100 ms latency, 50 in flight; ideal 2.4 s), streamed:
    bare aiohttp loop            the floor
    bare native transport        `runner.providers.native.chat` in the same loop (no engine)
    engine, native transport     target: wall <= 1.3x ideal, CPU per completion <= 2 ms
                                 (--compare-gc: also with CPython's GC defaults)
    engine, litellm transport    today's path, for the ratio (skip with --no-litellm)
    `latitude run`, all native   the whole process (what a user waits for): wall <= 1.5x
                                 ideal; and whether litellm was imported (it must not be); into
                                 a new store (Alembic creates it) and into one already migrated;
                                 start-up (process start -> first request, from the fake
                                 server's log) and teardown (last reply -> process end)
  streaming: 200-word replies in 4 and 200 chunks (50 x 6, 25 in flight), engine native
    and bare aiohttp: the slope is the CPU per chunk (target <= 0.05 ms)
  --scale: 10,000 x 3 turns, 1 s latency, 2,000 in flight, engine native: wall <= 1.3x 15 s,
    peak RSS < 1 GiB; the bare aiohttp loop at the same shape first (the floor), and the
    engine's wall and CPU over it
  --compare-loop: also the engine on asyncio's own loop and bare aiohttp on uvloop (the
    engine runs on uvloop where installed: runner.engine.eventloop)

The machine is shared: every row carries foreign CPU (what the rest of the machine used
meanwhile) and the load average is recorded; prefer the CPU ratios. Results go to
bench/results/native.json (native-quick.json with --quick).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    BENCH,
    BYTECODE,
    PYTHON,
    QUIET,
    REPO,
    FakeServer,
    base_env,
    raise_fd_limit,
    run_child,
    save,
    table,
    warm_bytecode,
    worker,
    write_models_file,
)

SIX = BENCH / "protocols" / "six-turns.yaml"
THREE = BENCH / "protocols" / "three-turns.yaml"

CLI_WRAPPER = (
    "import sys\n"
    "from runner.cli import app\n"
    "try:\n"
    "    app()\n"
    "finally:\n"
    "    print('LITELLM_IMPORTED=' + str('litellm' in sys.modules), file=sys.stderr)\n"
)
"""`latitude` as its console script runs it, reporting at exit whether litellm was imported."""


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def row(label: str, ch: Any, ideal: float | None) -> dict[str, Any]:
    r = ch.report
    n = r.get("completions", 0)
    return {"client": label, "completions": n, "errors": r.get("errors", 0), "wall_s": r["wall_s"],
            "x_ideal": r["wall_s"] / ideal if ideal else None, "cpu_s": r["cpu_s"],
            "cpu_per_completion_ms": 1000 * r["cpu_s"] / max(1, n), "gc_s": r.get("gc_s"),
            "server_cpu_s": ch.server_cpu_s, "rss_peak_mib": ch.maxrss_mib, "foreign_cpu_s": ch.foreign_cpu_s,
            "litellm_imported": r.get("litellm_imported"), "peak_connections": ch.peak_connections,
            "event_loop": r.get("event_loop"), "thread_cpu_s": r.get("thread_cpu_s"),
            "load": load()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="W1 scaled to 50 x 6, 25 in flight")
    ap.add_argument("--no-litellm", action="store_true", help="skip the litellm rows")
    ap.add_argument("--no-cli", action="store_true", help="skip the `latitude run` subprocess")
    ap.add_argument("--no-streaming", action="store_true", help="skip the per-chunk rows")
    ap.add_argument("--scale", action="store_true", help="also 10,000 x 3 turns, 1 s latency, 2,000 in flight")
    ap.add_argument("--compare-gc", action="store_true",
                    help="also run the engine rows with CPython's GC defaults (`latitude run` freezes and raises "
                         "the thresholds: runner.engine.gctune)")
    ap.add_argument("--compare-loop", action="store_true",
                    help="also the engine rows on asyncio's own loop, and bare aiohttp on uvloop")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each W1 row this many times and keep the least-CPU run (a shared machine)")
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="let every child compile what it imports from source when the environment sets "
                         "PYTHONDONTWRITEBYTECODE (by default they keep a bytecode cache, as an installed latitude has)")
    ap.add_argument("--wait-quiet", type=float, default=0.0,
                    help="before each run, wait up to this many seconds for other processes to go quiet")
    args = ap.parse_args()
    QUIET["max_wait_s"] = args.wait_quiet
    BYTECODE["cache"] = not args.no_bytecode_cache
    raise_fd_limit()
    warm_bytecode("runner.cli", "runner.cli.run", "runner.engine.runs", "runner.display", "runner.providers.native",
                  "runner.store.writer", "aiohttp", "rich.live", "tests.fakeprovider", "httpx", "openai",
                  then="import tempfile, runner.store.db as d\nwith tempfile.TemporaryDirectory() as t:\n"
                       "    d.upgrade(f'sqlite:///{t}/warm.db')")
    n, turns, conc = (50, 6, 25) if args.quick else (200, 6, 50)
    ideal = n / conc * turns * 0.1
    shape = ["--conversations", str(n), "--turns", str(turns), "--concurrency", str(conc)]
    rows: list[dict[str, Any]] = []
    out: dict[str, Any] = {"shape": {"conversations": n, "turns": turns, "in_flight": conc, "latency_s": 0.1,
                                     "ideal_wall_s": ideal}, "load_start": load(),
                           "bytecode_cache": BYTECODE["cache"]}
    print(f"native: W1 {n} x {turns}, 100 ms, {conc} in flight; ideal {ideal:.2f} s ({load()})", flush=True)
    with tempfile.TemporaryDirectory(prefix="latitude-bench-") as td:
        tmp = Path(td)
        with FakeServer(0.1, max_log=100_000) as server:  # the whole log: when `latitude run` sent its first request
            native_models = write_models_file(tmp / "native.yaml", server.openai_base, transport="native")
            lite_models = write_models_file(tmp / "litellm.yaml", server.openai_base, transport="litellm")
            clients: list[tuple[str, str, list[str]]] = [
                ("bare aiohttp", "aiohttp", ["--base", server.openai_base]),
                ("bare native transport", "native", ["--base", server.openai_base]),
                ("engine, native", "engine", ["--native", "--protocol", str(SIX), "--models", str(native_models),
                                              "--db", f"sqlite:///{tmp}/native.db"]),
            ]
            if args.compare_loop:
                clients.insert(1, ("bare aiohttp, uvloop", "aiohttp", ["--base", server.openai_base, "--loop", "uvloop"]))
                clients.append(("engine, native, asyncio loop", "engine",
                                ["--native", "--loop", "asyncio", "--protocol", str(SIX), "--models",
                                 str(native_models), "--db", f"sqlite:///{tmp}/native-asyncio.db"]))
            if args.compare_gc:
                clients.append(("engine, native, CPython GC defaults", "engine",
                                ["--native", "--gc-default", "--protocol", str(SIX), "--models", str(native_models),
                                 "--db", f"sqlite:///{tmp}/native-gc.db"]))
            if not args.no_litellm:
                clients.append(("engine, litellm", "engine", ["--protocol", str(SIX), "--models", str(lite_models),
                                                              "--db", f"sqlite:///{tmp}/litellm.db"]))
            for label, mode, extra in clients:
                runs = [worker(mode, *extra, *shape, server=server) for _ in range(max(1, args.repeat))]
                ch = min(runs, key=lambda c: c.report["cpu_s"])
                rows.append(row(label, ch, ideal))
                print(f"  {label}: {rows[-1]['wall_s']:.2f} s wall ({rows[-1]['x_ideal']:.2f}x), "
                      f"{rows[-1]['cpu_per_completion_ms']:.2f} ms CPU/completion, errors {rows[-1]['errors']}", flush=True)
            if not args.no_cli:
                import sqlite3
                import subprocess

                for label, migrated in (("latitude run, all native, new store (whole process)", False),
                                        ("latitude run, all native, existing store (whole process)", True)):
                    tries = []
                    for attempt in range(max(1, args.repeat)):
                        db = tmp / f"cli-{int(migrated)}-{attempt}.db"
                        if migrated:  # a store at the head revision: `open` does not import Alembic
                            subprocess.run([PYTHON, "-c", f"from runner.store.db import upgrade; upgrade('sqlite:///{db}')"],
                                           check=True, cwd=REPO, env=base_env())
                        argv = [PYTHON, "-c", CLI_WRAPPER, "run", str(SIX), "--models", str(native_models), "--db",
                                f"sqlite:///{db}", "--concurrency", str(conc), "--replicates", str(n)]
                        seen = server.requests_seen()
                        ch = run_child(argv, server=server, env=base_env(COLUMNS="120"), parse_json=False)
                        times = server.request_times(seen)
                        # start-up: process start -> first request; teardown: last reply (its request + the
                        # server's latency) -> process end
                        ch.report = {"first_request_s": times[0] - ch.started_at if times else None,
                                     "exit_after_last_reply_s": (ch.started_at + ch.wall_s - times[-1] - server.latency_s
                                                                 if times else None)}
                        if ch.rc != 0 or "LITELLM_IMPORTED=" not in ch.stderr_tail:
                            raise RuntimeError(f"latitude run failed (rc {ch.rc}):\n{ch.stdout_tail}\n{ch.stderr_tail}")
                        con = sqlite3.connect(db)
                        (done,) = con.execute("select count(*) from messages where role = 'assistant'").fetchone()
                        con.close()
                        tries.append((ch, done))
                    ch, done = min(tries, key=lambda t: t[0].cpu_s)
                    imported = "LITELLM_IMPORTED=True" in ch.stderr_tail
                    rows.append({"client": label, "completions": done, "errors": None,
                                 "wall_s": ch.wall_s, "x_ideal": ch.wall_s / ideal, "cpu_s": ch.cpu_s,
                                 "cpu_per_completion_ms": None, "gc_s": None, "server_cpu_s": ch.server_cpu_s,
                                 "rss_peak_mib": ch.maxrss_mib, "foreign_cpu_s": ch.foreign_cpu_s,
                                 "litellm_imported": imported, "load": load(), **ch.report})
                    print(f"  {label}: {ch.wall_s:.2f} s wall ({ch.wall_s / ideal:.2f}x), {ch.cpu_s:.2f} s CPU "
                          f"(whole process), first request at {ch.report['first_request_s']:.2f} s, exit "
                          f"{ch.report['exit_after_last_reply_s']:.2f} s after the last reply, litellm imported: {imported}",
                          flush=True)

        if not args.no_streaming:
            sshape = ["--conversations", "50", "--turns", "6", "--concurrency", "25"]
            per: dict[str, dict[int, float]] = {}
            for chunks in (4, 200):
                with FakeServer(0.1, chunks=chunks, reply_words=200) as server:
                    models = write_models_file(tmp / f"s{chunks}.yaml", server.openai_base, transport="native")
                    for label, mode, extra in (
                        ("bare aiohttp", "aiohttp", ["--base", server.openai_base]),
                        ("bare native transport", "native", ["--base", server.openai_base]),
                        ("engine, native", "engine", ["--native", "--protocol", str(SIX), "--models", str(models),
                                                      "--db", f"sqlite:///{tmp}/s{chunks}.db"]),
                    ):
                        ch = worker(mode, *extra, *sshape, server=server)
                        r = row(f"{label}, 200 words in {chunks} chunks", ch, None)
                        rows.append(r)
                        per.setdefault(label, {})[chunks] = r["cpu_per_completion_ms"]
                        print(f"  {r['client']}: {r['cpu_per_completion_ms']:.2f} ms CPU/completion", flush=True)
            out["cpu_per_chunk_ms"] = {k: (v[200] - v[4]) / 196 for k, v in per.items()}
            for k, v in out["cpu_per_chunk_ms"].items():
                print(f"  CPU per chunk, {k}: {v * 1000:.1f} µs", flush=True)

        if args.scale:
            with FakeServer(1.0) as server:
                models = write_models_file(tmp / "scale.yaml", server.openai_base, transport="native")
                floor = worker("aiohttp", "--base", server.openai_base, "--conversations", "10000", "--turns", "3",
                               "--concurrency", "2000", server=server, sample_connections=True, timeout=1800)
                rows.append(row("bare aiohttp, scale 10,000 x 3, 1 s, 2,000 in flight (the floor)", floor, 15.0))
                print(f"  scale, bare aiohttp: {floor.report['wall_s']:.1f} s wall ({floor.report['wall_s'] / 15:.2f}x 15 s), "
                      f"{rows[-1]['cpu_per_completion_ms']:.2f} ms CPU/completion", flush=True)
                ch = worker("engine", "--native", "--protocol", str(THREE), "--models", str(models),
                            "--db", f"sqlite:///{tmp}/scale.db", "--conversations", "10000", "--turns", "3",
                            "--concurrency", "2000", server=server, sample_connections=True, timeout=1800)
                rows.append(row("engine, native, scale 10,000 x 3, 1 s, 2,000 in flight", ch, 15.0))
                print(f"  scale: {ch.report['wall_s']:.1f} s wall ({ch.report['wall_s'] / 15:.2f}x 15 s), "
                      f"{rows[-1]['cpu_per_completion_ms']:.2f} ms CPU/completion, GC {ch.report.get('gc_s', 0):.1f} s, "
                      f"peak RSS {ch.maxrss_mib:.0f} MiB, peak connections {ch.peak_connections}", flush=True)
                out["scale_engine_over_floor"] = {"wall": ch.report["wall_s"] / floor.report["wall_s"],
                                                  "cpu": ch.report["cpu_s"] / floor.report["cpu_s"]}
                print(f"  scale, engine / bare aiohttp: wall {out['scale_engine_over_floor']['wall']:.2f}x, "
                      f"CPU {out['scale_engine_over_floor']['cpu']:.2f}x", flush=True)
                if args.compare_gc:
                    ch = worker("engine", "--native", "--gc-default", "--protocol", str(THREE), "--models", str(models),
                                "--db", f"sqlite:///{tmp}/scale-gc.db", "--conversations", "10000", "--turns", "3",
                                "--concurrency", "2000", server=server, sample_connections=True, timeout=1800)
                    rows.append(row("engine, native, scale, CPython GC defaults", ch, 15.0))
                    print(f"  scale, GC defaults: {ch.report['wall_s']:.1f} s wall, "
                          f"{rows[-1]['cpu_per_completion_ms']:.2f} ms CPU/completion, GC {ch.report.get('gc_s', 0):.1f} s, "
                          f"peak RSS {ch.maxrss_mib:.0f} MiB", flush=True)

    print()
    print(table([[r["client"], r["completions"], r["wall_s"], r["x_ideal"], r["cpu_s"], r["cpu_per_completion_ms"],
                  r["gc_s"], r["server_cpu_s"], r["rss_peak_mib"], r["foreign_cpu_s"], r["litellm_imported"]]
                 for r in rows],
                ["client", "done", "wall s", "x ideal", "CPU s", "CPU/compl ms", "GC s", "server CPU s", "peak RSS MiB",
                 "foreign CPU s", "litellm imported"]))
    by = {r["client"]: r for r in rows}
    if "engine, litellm" in by:
        out["litellm_over_native_cpu_per_completion"] = (by["engine, litellm"]["cpu_per_completion_ms"]
                                                         / by["engine, native"]["cpu_per_completion_ms"])
        print(f"\nengine CPU per completion, litellm / native: {out['litellm_over_native_cpu_per_completion']:.1f}x")
    out["rows"] = rows
    out["load_end"] = load()
    path = save("native-quick" if args.quick else "native", out)
    print(f"wrote {path.relative_to(REPO)} ({load()})")


if __name__ == "__main__":
    main()
