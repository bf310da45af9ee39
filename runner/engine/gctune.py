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
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["THRESHOLD", "tuned_gc"]

THRESHOLD = (50_000, 20, 100)
"""`gc.set_threshold` during a run (CPython's default is 700, 10, 10)."""


@contextmanager
def tuned_gc(threshold: tuple[int, int, int] = THRESHOLD) -> Iterator[None]:
    """Collect once, freeze what is alive, raise the thresholds; undo both on exit."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*threshold)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
