"""Run the fake provider in the foreground:

    python -m tests.fakeprovider --port 8700 --latency 0.1

The first line printed on stdout is the base URL (``http://127.0.0.1:PORT``).
Stop with Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from .core import Fault, Latency, Rule, State
from .server import raise_fd_limit, start_site


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.fakeprovider", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    p.add_argument("--latency", type=float, default=0.0, help="seconds before each response / stream headers")
    p.add_argument("--ttft", type=float, default=0.0, help="streaming: extra seconds before the first event")
    p.add_argument("--chunk-delay", type=float, default=0.0, help="streaming: seconds between content deltas")
    p.add_argument("--chunks", type=int, default=4, help="streaming: number of text chunks (default 4)")
    p.add_argument("--backlog", type=int, default=4096)
    p.add_argument("--hang-cap", type=float, default=60.0, help="upper bound for hang/stall faults")
    p.add_argument("--max-log", type=int, default=100_000, help="request log size (oldest dropped)")
    p.add_argument("--no-auth", action="store_true", help="do not require an API key header")
    p.add_argument("--no-prefix-cache", action="store_true", help="OpenAI: always report cached_tokens=0")
    p.add_argument("--config", help='JSON file {"rules": [...], "faults": [...]} applied at start')
    return p.parse_args(argv)


async def amain(args: argparse.Namespace) -> None:
    state = State(
        latency=Latency(latency_s=args.latency, ttft_s=args.ttft, chunk_delay_s=args.chunk_delay, n_chunks=args.chunks),
        require_auth=not args.no_auth,
        max_log=args.max_log,
        hang_cap_s=args.hang_cap,
        openai_prefix_cache=not args.no_prefix_cache,
    )
    if args.config:
        with open(args.config) as fh:
            cfg = json.load(fh)
        for r in cfg.get("rules", []):
            state.add_rule(Rule.from_dict(r))
        for f in cfg.get("faults", []):
            state.inject(Fault.from_dict(f))
    runner, port = await start_site(state, args.host, args.port, args.backlog)
    print(f"http://{args.host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover
            pass
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_fd_limit()
    try:  # use uvloop only if it happens to be installed
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        asyncio.run(amain(args))
    else:
        uvloop.run(amain(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
