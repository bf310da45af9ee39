"""Garbage-collector settings while a run drives its conversations.

CPython's cyclic collector runs a young collection every 700 net allocations and, every
100 of those, a full one that walks every tracked object. During a run almost nothing
allocated is cyclic garbage (replies, rows and events are freed by reference counting),
yet each full collection walks everything imported and every conversation in flight: at
10,000 conversations × 3 turns with 2,000 in flight that was 25.8 s of 62 s
(`bench/native.py --scale`). So for the run's duration the objects alive at its start
(imports, the plan, its targets) are moved out of the collector's reach (`gc.freeze`)
and the young generation is collected every `THRESHOLD[0]` net allocations. Cycles are
still collected, less often; the previous settings come back when the run ends.

Around the run, `latitude run` (and rerun) pauses the collector while it starts
(`paused_gc`: imports, the protocol, the plan and the store allocate ~150,000 long-lived
objects and almost no garbage, yet the collections they triggered walked them for ~0.15 s),
and, once the session has closed everything it opened, `latitude run`, resume, rerun and
fork skip the interpreter's final collections at exit (`skip_collection_at_exit`: ~0.3 s of
CPU on every object imported, for memory the operating system frees anyway).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["THRESHOLD", "paused_gc", "skip_collection_at_exit", "tuned_gc"]

THRESHOLD = (50_000, 20, 100)
"""`gc.set_threshold` during a run (CPython's default is 700, 10, 10)."""


@contextmanager
def tuned_gc(threshold: tuple[int, int, int] = THRESHOLD) -> Iterator[None]:
    """Collect once, freeze what is alive, raise the thresholds, and have the collector on; undo it
    all on exit. When the collector is paused on entry (`paused_gc`: the command's start-up), the
    collection is skipped: the start-up left a few thousand objects of garbage among ~150,000
    live ones, and one full collection to find them would walk them all (~80 ms); they are frozen
    with the rest instead."""
    before = gc.get_threshold()
    paused = not gc.isenabled()
    if not paused:
        gc.collect()
    gc.freeze()
    gc.set_threshold(*threshold)
    gc.enable()
    try:
        yield
    finally:
        if paused:
            gc.disable()
        gc.set_threshold(*before)
        gc.unfreeze()


@contextmanager
def paused_gc() -> Iterator[None]:
    """No automatic collection inside the block (a command's start-up, and its teardown after the
    run: `tuned_gc` turns the collector on for the run itself); its state is restored on exit,
    also on error."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_SKIPPING = False


def skip_collection_at_exit() -> None:
    """At interpreter exit, put every object still alive out of the collector's reach
    (`gc.freeze`, run by `atexit` before the interpreter finalizes), so finalizing does not
    walk everything imported in its collections: the memory goes back to the operating system
    with the process. Objects are still freed by reference counting as modules are cleared;
    only reference cycles are left to the operating system, so call this only once whatever
    must be closed explicitly (store writer, database engines, HTTP sessions) has been.
    Registered once per process; an in-process caller (a test) feels it only at its own exit."""
    global _SKIPPING
    if not _SKIPPING:
        import atexit

        atexit.register(gc.freeze)
        _SKIPPING = True
