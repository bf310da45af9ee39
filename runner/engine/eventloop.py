"""The event loop a run is driven on: uvloop where it is installed, else asyncio's own.

At W1's shape (50 conversations whose replies arrive almost together) every turn's client-side
work queues behind the others' on the one loop thread, so the loop's own cost per callback,
socket read and write is part of every turn's wait. uvloop (libuv, in C) does that work in a
fraction of asyncio's time; nothing the engine stores or awaits changes with it.

``LATITUDE_EVENT_LOOP=asyncio`` keeps asyncio's loop (to compare, or to rule the loop out);
where uvloop has no build (Windows, PyPy) asyncio's loop is used without asking.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["LoopKind", "loop_factory", "loop_kind", "run"]

T = TypeVar("T")

LoopKind = Literal["uvloop", "asyncio"]
"""Which event loop implementation drives a run."""

ENV = "LATITUDE_EVENT_LOOP"
"""Environment variable choosing the loop: ``uvloop`` (the default where installed) or ``asyncio``."""


def loop_kind() -> LoopKind:
    """The loop `run` will use: ``asyncio`` when asked for (`ENV`) or when uvloop is missing."""
    wanted = os.environ.get(ENV, "").strip().lower()
    if wanted not in ("", "uvloop", "asyncio"):
        raise ValueError(f"{ENV}: expected 'uvloop' or 'asyncio', got {wanted!r}")
    if wanted == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:  # no build for this platform: asyncio's loop does the same work, slower
        return "asyncio"
    return "uvloop"


def loop_factory(kind: LoopKind | None = None) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A new-loop factory for `asyncio.Runner` (None: asyncio's default loop)."""
    if (kind or loop_kind()) == "asyncio":
        return None
    import uvloop

    return uvloop.new_event_loop  # type: ignore[no-any-return]


def run(main: Coroutine[Any, Any, T], kind: LoopKind | None = None) -> T:
    """`asyncio.run(main)` on the run's loop (`loop_kind`): same semantics (a new loop, async
    generators and the default executor shut down at the end, Ctrl-C cancels `main`)."""
    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(main)
