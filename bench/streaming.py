"""Streaming: what each streamed chunk costs, through litellm and without it.

    uv run python bench/streaming.py [--words 200] [--wait-quiet S]

The fake provider's default reply is a few words (so 4 chunks at most), which hides a cost
real vendors expose: they stream a reply a token or a few at a time, so a 200-token reply is
~200 chunks. Here every reply is `--words` words, streamed as 4, 50 or `--words` chunks
(100 ms latency, 50 conversations x 6 turns, 25 in flight), measured with:

  bare aiohttp                      parse every SSE line with json.loads
  bare litellm, stream=True         litellm.acompletion(stream=True), iterate the chunks
  bare litellm, stream=False        the same reply in one JSON body (no per-chunk work)
  engine                            latitude's engine (always streams: it records TTFT)

CPU per completion of the workload only, as in throughput.py; the slope between chunk
counts is the CPU per chunk. Results go to bench/results/streaming.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import QUIET, REPO, FakeServer, raise_fd_limit, save, table, worker, write_models_file  # noqa: E402

PROTOCOL = Path(__file__).resolve().parent / "protocols" / "six-turns.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--words", type=int, default=200, help="words per reply (default 200)")
    ap.add_argument("--wait-quiet", type=float, default=60.0,
                    help="before each run, wait up to this many seconds for other processes to go quiet (0: never)")
    args = ap.parse_args()
    QUIET["max_wait_s"] = args.wait_quiet
    raise_fd_limit()
    shape = ["--conversations", "50", "--turns", "6", "--concurrency", "25"]
    chunk_counts = [4, 50, args.words]
    rows: list[dict[str, Any]] = []
    print(f"streaming: {args.words}-word replies in {', '.join(map(str, chunk_counts))} chunks; "
          "50 conversations x 6 turns, 25 in flight, 100 ms latency", flush=True)
    with tempfile.TemporaryDirectory(prefix="latitude-bench-") as td:
        for chunks in chunk_counts:
            with FakeServer(0.1, chunks=chunks, reply_words=args.words) as server:
                models = write_models_file(Path(td) / "models.yaml", server.openai_base)
                clients: list[tuple[str, str, list[str]]] = [
                    ("bare aiohttp", "aiohttp", ["--base", server.openai_base]),
                    ("bare litellm, stream=True", "litellm", ["--base", server.openai_base]),
                    ("engine (streams)", "engine", ["--protocol", str(PROTOCOL), "--models", str(models),
                                                    "--db", f"sqlite:///{td}/e{chunks}.db"]),
                ]
                if chunks == chunk_counts[0]:
                    clients.insert(2, ("bare litellm, stream=False", "litellm-nostream", ["--base", server.openai_base]))
                for label, mode, extra in clients:
                    ch = worker(mode, *extra, *shape, server=server)
                    r = ch.report
                    rows.append({"client": label, "chunks": chunks if mode != "litellm-nostream" else 1,
                                 "completions": r["completions"], "errors": r.get("errors", 0),
                                 "wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
                                 "cpu_per_completion_ms": r["cpu_per_completion_ms"], "gc_s": r.get("gc_s"),
                                 "server_cpu_s": ch.server_cpu_s, "foreign_cpu_s": ch.foreign_cpu_s})
                    print(f"  {chunks:>4} chunks  {label}: {r['cpu_per_completion_ms']:.2f} ms CPU per completion",
                          flush=True)

    def per(label: str) -> dict[int, float]:
        return {r["chunks"]: r["cpu_per_completion_ms"] for r in rows if r["client"] == label}

    slopes = {}
    for label in ("bare aiohttp", "bare litellm, stream=True", "engine (streams)"):
        p = per(label)
        lo, hi = min(p), max(p)
        slopes[label] = (p[hi] - p[lo]) / (hi - lo) if hi > lo else None
    print()
    print(table([[r["client"], r["chunks"], r["completions"], r["wall_s"], r["cpu_s"], r["cpu_per_completion_ms"],
                  r["gc_s"], r["server_cpu_s"], r["foreign_cpu_s"]] for r in rows],
                ["client", "chunks", "done", "wall s", "CPU s", "CPU/compl ms", "GC s", "server CPU s",
                 "foreign CPU s"]))
    print("\nCPU per streamed chunk (slope between the fewest and most chunks):")
    for label, v in slopes.items():
        print(f"  {label}: {v * 1000:.0f} µs per chunk" if v is not None else f"  {label}: n/a")
    path = save("streaming", {"words": args.words, "chunk_counts": chunk_counts, "rows": rows,
                              "cpu_per_chunk_ms": slopes})
    print(f"\nwrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
