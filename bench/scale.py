"""Scale: 10,000 conversations x 3 turns, 1 s server latency, 2,000 in flight.

    uv run python bench/scale.py [--quick] [--full] [--unlimited-connections] [--wait-quiet S]

Ideal limit: 10,000/2,000 x 3 x 1 s = 15 s. Targets: the engine's peak RSS < 1 GiB, its wall
<= 1.3x the limit (19.5 s).

Through litellm the full shape cannot fit in ~5 minutes on 2 cores (30,000 calls x ~9 ms of
CPU is ~270 s for bare litellm alone), so by default:

  bare aiohttp              full shape (30,000 calls): the fake provider holds 2,000
                            connections and the limit is reachable without litellm;
  bare litellm              2,000 conversations x 3 turns, 2,000 in flight (6,000 calls),
                            wall extrapolated x5 to the full shape (CPU-bound: wall scales
                            with calls), labelled as such;
  engine + fake provider    the same scaled shape through `latitude`'s engine (in-process,
                            as `latitude run` drives it), extrapolated the same way; its
                            peak RSS is measured with the full 2,000 in flight;
  engine + sim/maker        the full shape through the engine with the simulator as a direct
                            provider (no litellm, no HTTP) answering after `latency: 1.0`
                            seconds, as the fake server does: the engine's own cost at scale.

--full runs bare litellm and the engine at the full shape too (about 6-7 minutes each).
--quick divides every shape by 10 (in flight 200; ideal still 15 s).
--unlimited-connections sets AIOHTTP_CONNECTOR_LIMIT and AIOHTTP_CONNECTOR_LIMIT_PER_HOST to
100000 for the litellm clients (litellm's aiohttp transport allows 500 connections per host
by default; beware that 0 does not lift the cap: litellm then omits the limit and aiohttp's
default of 100 applies).
--what-if adds the engine with the collector tuned (gc.freeze + a higher gen-0 threshold).
--only picks clients (aiohttp, litellm, engine, sim). Results go to bench/results/scale.json
(scale-quick.json, scale-full.json for those modes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    BENCH,
    QUIET,
    REPO,
    Child,
    FakeServer,
    base_env,
    raise_fd_limit,
    save,
    table,
    worker,
    write_models_file,
)

PROTOCOL = BENCH / "protocols" / "three-turns.yaml"
GIB_MIB = 1024.0


def row(name: str, ch: Child, ideal: float, full_calls: int, shape: tuple[int, int, int], note: str = "") -> dict[str, Any]:
    r = ch.report
    n, turns, conc = shape
    done = r.get("completions", 0)
    calls = n * turns
    scale = full_calls / calls
    return {
        "client": name,
        "conversations": n, "turns": turns, "in_flight": conc,
        "completions": done, "errors": r.get("errors", 0),
        "wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
        "cpu_per_completion_ms": 1000 * r["cpu_s"] / max(1, done),
        "wall_full_shape_s": r["wall_s"] * scale,
        "wall_full_shape_extrapolated": scale != 1.0,
        "wall_full_over_ideal": r["wall_s"] * scale / ideal,
        "cpu_floor_full_shape_s": r["cpu_s"] / max(1, done) * full_calls,
        "peak_rss_mib": ch.maxrss_mib,
        "rss_after_imports_mib": r.get("rss_before_mib"),
        "gc_s": r.get("gc_s"),
        "server_cpu_s": ch.server_cpu_s,
        "peak_connections": ch.peak_connections,
        "connections_seen": ch.connections_seen,
        "foreign_cpu_s": ch.foreign_cpu_s,
        "note": note,
        "raw": r,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="every shape / 10 (ideal limit still 15 s)")
    ap.add_argument("--full", action="store_true", help="bare litellm and the engine at the full shape too (slow)")
    ap.add_argument("--unlimited-connections", action="store_true",
                    help="lift litellm's aiohttp connection caps (1,000 total / 500 per host by default)")
    ap.add_argument("--what-if", action="store_true",
                    help="also run the engine (scaled shape) with gc.freeze() + gc.set_threshold(10000, 20, 100) "
                         "after warm-up (not what latitude does today)")
    ap.add_argument("--only", default="aiohttp,litellm,engine,sim",
                    help="comma-separated clients to run: aiohttp, litellm, engine, sim (default: all)")
    ap.add_argument("--wait-quiet", type=float, default=60.0,
                    help="before each run, wait up to this many seconds for other processes to go quiet (0: never)")
    args = ap.parse_args()
    QUIET["max_wait_s"] = args.wait_quiet
    raise_fd_limit()
    only = {c.strip() for c in args.only.split(",") if c.strip()}

    div = 10 if args.quick else 1
    full = (10_000 // div, 3, 2_000 // div)
    latency = 1.0
    ideal = full[0] / full[2] * full[1] * latency
    full_calls = full[0] * full[1]
    scaled = full if args.full else (2_000 // div, 3, 2_000 // div)
    sim_shape = full
    # 0 does not mean unlimited: litellm then leaves the limit out and aiohttp's default (100) applies
    env = base_env(**({"AIOHTTP_CONNECTOR_LIMIT": "100000", "AIOHTTP_CONNECTOR_LIMIT_PER_HOST": "100000"}
                      if args.unlimited_connections else {}))

    def shape_args(s: tuple[int, int, int]) -> list[str]:
        return ["--conversations", str(s[0]), "--turns", str(s[1]), "--concurrency", str(s[2])]

    print(f"scale: {full[0]:,} conversations x {full[1]} turns, {latency:.0f} s latency, {full[2]:,} in flight; "
          f"ideal {ideal:.0f} s", flush=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="latitude-bench-") as td, FakeServer(latency) as server:
        tmp = Path(td)
        models = write_models_file(tmp / "models.yaml", server.openai_base)
        sim_models = tmp / "sim-models.yaml"
        sim_models.write_text(f"models:\n  bench: {{model: sim/maker, extra: {{latency: {latency}}}}}\n")

        if "aiohttp" in only:
            ch = worker("aiohttp", "--base", server.openai_base, *shape_args(full), server=server,
                        sample_connections=True)
            rows.append(row("bare aiohttp", ch, ideal, full_calls, full))
            print(f"  bare aiohttp: {ch.report['wall_s']:.1f} s wall, {ch.report['cpu_s']:.1f} s CPU, "
                  f"{ch.peak_connections} connections at the server", flush=True)

        if "litellm" in only:
            ch = worker("litellm", "--base", server.openai_base, *shape_args(scaled), server=server, env=env,
                        sample_connections=True)
            rows.append(row("bare litellm", ch, ideal, full_calls, scaled))
            print(f"  bare litellm: {ch.report['wall_s']:.1f} s wall, {ch.report['cpu_s']:.1f} s CPU, "
                  f"{ch.peak_connections} connections at the server", flush=True)

        if "engine" in only:
            db = tmp / "engine.db"
            ch = worker("engine", "--protocol", str(PROTOCOL), "--models", str(models), "--db", f"sqlite:///{db}",
                        *shape_args(scaled), server=server, env=env, sample_connections=True)
            rows.append(row("engine + fake provider", ch, ideal, full_calls, scaled))
            print(f"  engine + fake provider: {ch.report['wall_s']:.1f} s wall, {ch.report['cpu_s']:.1f} s CPU, "
                  f"peak RSS {ch.maxrss_mib:.0f} MiB, {ch.peak_connections} connections at the server", flush=True)

        if args.what_if:
            db = tmp / "engine-gc.db"
            ch = worker("engine", "--protocol", str(PROTOCOL), "--models", str(models), "--db", f"sqlite:///{db}",
                        "--gc-freeze", "--gc-threshold", "10000", *shape_args(scaled), server=server, env=env,
                        sample_connections=True)
            rows.append(row("what-if: engine + gc tuned", ch, ideal, full_calls, scaled,
                            note="gc.freeze() + gc.set_threshold(10000, 20, 100) after warm-up"))
            print(f"  what-if engine + gc tuned: {ch.report['wall_s']:.1f} s wall, {ch.report['cpu_s']:.1f} s CPU, "
                  f"peak RSS {ch.maxrss_mib:.0f} MiB", flush=True)

        if "sim" in only:
            db = tmp / "sim.db"
            ch = worker("engine", "--protocol", str(PROTOCOL), "--models", str(sim_models), "--db", f"sqlite:///{db}",
                        *shape_args(sim_shape), env=env)
            rows.append(row("engine + sim/maker", ch, ideal, full_calls, sim_shape,
                            note=f"direct provider, latency {latency} s, no HTTP"))
            print(f"  engine + sim/maker: {ch.report['wall_s']:.1f} s wall, {ch.report['cpu_s']:.1f} s CPU, "
                  f"peak RSS {ch.maxrss_mib:.0f} MiB", flush=True)
        server_rss = server.rss_peak_mib()

    eng = next((r for r in rows if r["client"] == "engine + fake provider"), None)
    lit = next((r for r in rows if r["client"] == "bare litellm"), None)
    targets = {"engine_peak_rss_lt_1GiB": eng["peak_rss_mib"] < GIB_MIB,
               "engine_wall_le_1.3x_ideal": eng["wall_full_over_ideal"] <= 1.3} if eng else {}
    print()
    print(table([[r["client"], f"{r['conversations']:,}x{r['turns']}/{r['in_flight']:,}", r["completions"], r["errors"],
                  r["wall_s"], r["cpu_s"], r["cpu_per_completion_ms"], r["gc_s"],
                  f"{r['wall_full_shape_s']:.0f}{' (extrap.)' if r['wall_full_shape_extrapolated'] else ''}",
                  r["wall_full_over_ideal"], r["peak_rss_mib"],
                  f"{r['peak_connections']}/{r['connections_seen']}" if r["peak_connections"] is not None else None,
                  r["server_cpu_s"],
                  r["foreign_cpu_s"]] for r in rows],
                ["client", "shape", "done", "err", "wall s", "CPU s", "CPU/compl ms", "GC s", "full-shape wall s",
                 "x ideal", "peak RSS MiB", "conns peak/seen", "server CPU s", "foreign CPU s"]))
    print(f"\nideal {ideal:.0f} s; fake server peak RSS {server_rss:.0f} MiB")
    if eng:
        print(f"engine peak RSS {eng['peak_rss_mib']:.0f} MiB with {eng['in_flight']:,} in flight of "
              f"{eng['conversations']:,} conversations (target < 1 GiB: "
              f"{'met' if targets['engine_peak_rss_lt_1GiB'] else 'NOT met'})")
        print(f"engine full-shape wall {eng['wall_full_shape_s']:.0f} s"
              f"{' (extrapolated)' if eng['wall_full_shape_extrapolated'] else ''} = {eng['wall_full_over_ideal']:.1f}x "
              f"the limit (target <= 1.3x: {'met' if targets['engine_wall_le_1.3x_ideal'] else 'NOT met'})")
    if lit:
        print(f"CPU floor of the full shape through bare litellm: {lit['cpu_floor_full_shape_s']:.0f} s")
    name = "scale" + ("-quick" if args.quick else "") + ("-full" if args.full else "")
    path = save(name, {
        "shape": {"conversations": full[0], "turns": full[1], "in_flight": full[2], "latency_s": latency,
                  "ideal_wall_s": ideal, "quick": args.quick, "full": args.full,
                  "unlimited_connections": args.unlimited_connections, "clients": sorted(only)},
        "rows": rows, "targets_met": targets, "fake_server_peak_rss_mib": server_rss,
    })
    print(f"\nwrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
