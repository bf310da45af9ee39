"""Echo: how much of a reply reflects the words of the prompts before it (a check on leading).

The field notes warn that "answers that reflect the prompt's own words back and elaborate on
them look like insight". This module measures that, cheaply and transparently:

- A text's **content tokens** are its lower-cased word tokens (Unicode letters and digits,
  apostrophes kept inside words) that are not English stop words (scikit-learn's list) and are
  at least two characters long.
- A reply's **echo at n** is the share of its content n-grams (over the sequence of content
  tokens) that also occur among the content n-grams of the prompts it answered (every earlier
  user/experimenter/system turn of the conversation). Counted over occurrences, so a phrase the
  reply repeats five times counts five times.
- **echo** (the headline) is the bigram share: unigrams are shared by any two texts on one
  topic, while a shared bigram is a reused phrase. The unigram share is kept beside it.

A reply with fewer than n content tokens has no n-grams; its echo at n is undefined (None),
never 0, so it does not pull a mean down. Bands (`band()`) cut the headline at fixed, stated
points so a tally `--by echo-band` means the same thing in every run.

Pure functions; nothing here touches the store.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["BANDS", "EchoBand", "EchoScore", "band", "content_tokens", "echo", "ngrams", "overlap"]

EchoBand = Literal["low", "mid", "high", "none"]
"""A reply's echo band: ``low`` (< 0.10 of its content bigrams are the prompts'), ``mid``
(0.10 to < 0.30), ``high`` (≥ 0.30), ``none`` (too short to have a bigram)."""

BANDS: tuple[tuple[EchoBand, float], ...] = (("low", 0.10), ("mid", 0.30), ("high", float("inf")))
"""Upper bounds (exclusive) of each band on the headline echo."""

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)


@functools.cache
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | {"don't", "i'm", "it's", "i'd", "i've", "i'll", "you're"}


def content_tokens(text: str) -> list[str]:
    """Lower-cased content words of ``text`` in order (stop words and 1-character tokens removed)."""
    stops = _stop_words()
    out: list[str] = []
    for m in _WORD.finditer(text.lower()):
        tok = m.group(0).replace("’", "'")
        if len(tok) >= 2 and tok not in stops:
            out.append(tok)
    return out


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """Every run of ``n`` consecutive tokens, in order (occurrences, not a set)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def overlap(reply: str, prompts: Iterable[str], n: int) -> tuple[int, int]:
    """(reply n-gram occurrences found in the prompts, reply n-gram occurrences)."""
    seen: set[tuple[str, ...]] = set()
    for p in prompts:
        seen.update(ngrams(content_tokens(p), n))
    grams = ngrams(content_tokens(reply), n)
    return sum(1 for g in grams if g in seen), len(grams)


@dataclass(frozen=True, slots=True)
class EchoScore:
    """How much of one reply echoes its prompts."""

    echo: float | None
    """Share of the reply's content bigrams that occur in the prompts (None: no bigram)."""
    echo_words: float | None
    """Share of the reply's content words that occur in the prompts (None: no content word)."""
    shared_bigrams: int
    """Reply bigram occurrences found in the prompts (the numerator of ``echo``)."""
    bigrams: int
    """Reply bigram occurrences (the denominator of ``echo``)."""
    band: EchoBand
    """The band of ``echo`` (see `BANDS`)."""


def band(value: float | None) -> EchoBand:
    """The band a headline echo falls in; ``none`` when it is undefined."""
    if value is None:
        return "none"
    for name, upper in BANDS:
        if value < upper:
            return name
    return "high"  # pragma: no cover - the last bound is infinite


def echo(reply: str, prompts: Iterable[str]) -> EchoScore:
    """Score one reply against the prompts it answered."""
    prompts = list(prompts)
    hit2, n2 = overlap(reply, prompts, 2)
    hit1, n1 = overlap(reply, prompts, 1)
    value = hit2 / n2 if n2 else None
    return EchoScore(echo=value, echo_words=hit1 / n1 if n1 else None, shared_bigrams=hit2, bigrams=n2,
                     band=band(value))
