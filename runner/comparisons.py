"""Pairwise comparisons of a `preferences` protocol: which pairs, in which order, with which labels.

Pure and seeded: every draw comes from ``random.Random`` seeded with the protocol's
`preferences.seed`, the replicate and the round, so the same plan (and `latitude rerun`)
always yields the same comparisons. Adaptive rounds after the first are chosen by
`next_round_pairs` from the fit of the rounds so far (the engine calls it between rounds).
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .protocol import schema

SAMPLE_SEED_STRIDE = 10_000
"""A comparison's sampling seed is the replicate's seed plus this times (sample - 1): samples of
the same pair and order are independent draws, still reproducible."""


@dataclass(frozen=True)
class Comparison:
    """One comparison as shown to the model: two options, their order and labels."""

    a_id: str
    """Option shown first."""
    b_id: str
    """Option shown second."""
    label_a: str
    """Label shown with the first option (e.g. `A`)."""
    label_b: str
    """Label shown with the second option."""
    sample: int = 1
    """Which sample of this pair and order (from 1)."""
    round: int = 1
    """Adaptive round (from 1); 1 for non-adaptive elicitations."""

    @property
    def pair(self) -> tuple[str, str]:
        """The unordered pair, as a sorted tuple of ids."""
        return (self.a_id, self.b_id) if self.a_id < self.b_id else (self.b_id, self.a_id)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Comparison:
        return cls(**{k: data[k] for k in ("a_id", "b_id", "label_a", "label_b", "sample", "round") if k in data})


def all_pairs(options: Sequence[schema.Option]) -> list[tuple[str, str]]:
    """Every unordered pair, in the options' order."""
    return [(x.id, y.id) for x, y in itertools.combinations(options, 2)]


def _rng(prefs: schema.Preferences, replicate: int, round_: int, what: str) -> random.Random:
    return random.Random(f"latitude-prefs|{prefs.seed}|{replicate}|{round_}|{what}")


def expand(prefs: schema.Preferences, pairs: Iterable[tuple[str, str]], replicate: int, round_: int = 1) -> list[Comparison]:
    """Pairs → comparisons: orders (both, or one drawn), `samples` each, labels drawn when there are several."""
    rng = _rng(prefs, replicate, round_, "orders-labels")
    out: list[Comparison] = []
    for x, y in pairs:
        if prefs.orders == "both":
            orders = [(x, y), (y, x)]
        else:
            orders = [(x, y) if rng.random() < 0.5 else (y, x)]
        for first, second in orders:
            for k in range(1, prefs.samples + 1):
                la, lb = prefs.labels[rng.randrange(len(prefs.labels))] if len(prefs.labels) > 1 else prefs.labels[0]
                out.append(Comparison(first, second, la, lb, sample=k, round=round_))
    return out


def first_round(prefs: schema.Preferences, replicate: int) -> list[Comparison]:
    """The comparisons planned before anything runs (for adaptive elicitations, round 1 only)."""
    pairs = all_pairs(prefs.option_list)
    if isinstance(prefs.pairs, schema.SamplePairs):
        pairs = _rng(prefs, replicate, 1, "pairs").sample(pairs, prefs.pairs.sample)
    elif isinstance(prefs.pairs, schema.AdaptivePairs):
        pairs = _rng(prefs, replicate, 1, "pairs").sample(pairs, prefs.pairs.adaptive.per_round)
    return expand(prefs, pairs, replicate, 1)


def rounds(prefs: schema.Preferences) -> int:
    """How many rounds the elicitation has (1 unless adaptive)."""
    return prefs.pairs.adaptive.rounds if isinstance(prefs.pairs, schema.AdaptivePairs) else 1


def comparisons_per_round(prefs: schema.Preferences) -> int:
    """Comparisons in one round of one model × condition × replicate."""
    n = len(prefs.option_list)
    if isinstance(prefs.pairs, schema.SamplePairs):
        pairs = prefs.pairs.sample
    elif isinstance(prefs.pairs, schema.AdaptivePairs):
        pairs = prefs.pairs.adaptive.per_round
    else:
        pairs = n * (n - 1) // 2
    return pairs * (2 if prefs.orders == "both" else 1) * prefs.samples


def next_round_pairs(prefs: schema.Preferences, replicate: int, round_: int, utilities: dict[str, float],
                     counts: Counter[tuple[str, str]]) -> list[tuple[str, str]]:
    """Active selection (Mazeika et al. 2025): the `per_round` pairs whose current utilities are closest
    and that have been compared least, ties broken by a seeded draw.

    `utilities` is the fit of the rounds so far (missing options count as 0); `counts` the comparisons
    of each sorted pair so far. Deterministic in its inputs and the seed."""
    assert isinstance(prefs.pairs, schema.AdaptivePairs)
    rng = _rng(prefs, replicate, round_, "pairs")
    candidates = all_pairs(prefs.option_list)
    jitter = {p: rng.random() for p in candidates}

    def score(p: tuple[str, str]) -> tuple[float, float]:
        key = tuple(sorted(p))
        gap = abs(utilities.get(p[0], 0.0) - utilities.get(p[1], 0.0))
        # rounded: float noise of the fit never decides between pairs; the seeded jitter breaks true ties
        n = counts.get(key, 0)  # type: ignore[arg-type]
        return (round(gap + math.log1p(n), 6), jitter[p])

    return sorted(candidates, key=score)[: prefs.pairs.adaptive.per_round]


def comparison_seed(replicate_seed: int | None, comparison: Comparison) -> int | None:
    """The sampling seed of one comparison's conversation (see `SAMPLE_SEED_STRIDE`)."""
    if replicate_seed is None:
        return None
    return replicate_seed + SAMPLE_SEED_STRIDE * (comparison.sample - 1)


def variables(prefs: schema.Preferences | None, comparison: Comparison | None,
              a_id: str | None = None, b_id: str | None = None) -> dict[str, Any]:
    """Template variables of a comparison: `a`, `b` (texts), `label_a`, `label_b`, `a_id`, `b_id`."""
    if comparison is None and a_id is None:
        return {}
    options = {o.id: o for o in (prefs.option_list if prefs else [])}
    first = a_id or (comparison.a_id if comparison else "")
    second = b_id or (comparison.b_id if comparison else "")
    la, lb = (comparison.label_a, comparison.label_b) if comparison else (prefs.labels[0] if prefs else ("A", "B"))
    return {
        "a": options[first].text if first in options else first,
        "b": options[second].text if second in options else second,
        "label_a": la, "label_b": lb, "a_id": first, "b_id": second,
    }


__all__ = [
    "Comparison",
    "SAMPLE_SEED_STRIDE",
    "all_pairs",
    "comparison_seed",
    "comparisons_per_round",
    "expand",
    "first_round",
    "next_round_pairs",
    "rounds",
    "variables",
]
