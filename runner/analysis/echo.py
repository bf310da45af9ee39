"""Echo: how much of a reply reflects the words of the prompts before it (a check on leading).

The field notes warn that "answers that reflect the prompt's own words back and elaborate on
them look like insight". This module measures that, cheaply and transparently:

- A text's **content tokens** are its lower-cased word tokens (Unicode letters and digits with
  their combining marks, in NFC, apostrophes kept inside words) that are not English stop words
  (scikit-learn's list) and are at least two characters long; Chinese and Japanese, written
  without spaces, are read one character a token (see `content_tokens`).
- A reply is its text as sent back (not its reasoning, not its tool calls' arguments).
- A reply's **echo at n** is the share of its content n-grams (over the sequence of content
  tokens) that also occur among the content n-grams of the prompts it answered. Counted over
  occurrences, so a phrase the reply repeats five times counts five times.
- **The prompts of a reply** are every earlier message of its conversation that the model read
  and did not write: the system prompt, scripted user turns (offers, check-ins and choice
  questions included), an experimenter model's turns, and in a pair run the partner's replies
  (and the opener, for the side it was shown to: the side that spoke first, as the engine sends
  it); a pair's check-in (question and answer) only for the side it is private to. Not counted: the model's own earlier replies (repeating itself is not being led) and tool
  results (latitude writes them from the model's own call, e.g. ``saved notes.md``). An n-gram
  never spans two messages.
- **echo** (the headline) is the bigram share: unigrams are shared by any two texts on one
  topic, while a shared bigram is a reused phrase. The unigram share is kept beside it.

A reply with fewer than n content tokens has no n-grams; its echo at n is undefined (None),
never 0, so it does not pull a mean down. Bands (`band()`) cut the headline at fixed, stated
points so a tally `--by echo-band` means the same thing in every run.

Stored with every model reply (`MessageRow.echo`, `echo_unigram`, `echo_bigrams`): the engine
scores each reply as it is written (`EchoHistory`: each message is tokenised once; about 0.3 ms
of CPU for an 800-token reply on a loaded 2-core machine), imports score what they bring in,
and `latitude echo RUN` backfills runs stored before the measure existed (`score_messages`).

Pure functions; nothing here touches the store, and nothing imports scikit-learn.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..kinds import EchoBand

__all__ = ["BANDS", "EchoBand", "EchoHistory", "EchoScore", "band", "content_tokens", "echo", "ngrams", "overlap",
           "echo_columns", "score_messages", "visible"]


BANDS: tuple[tuple[EchoBand, float], ...] = (("low", 0.10), ("mid", 0.30), ("high", float("inf")))
"""Upper bounds (exclusive) of each band on the headline echo."""

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*", re.UNICODE)


_SKLEARN_STOP_WORDS = frozenset("""
a about above across after afterwards again against all almost alone along already also although
always am among amongst amoungst amount an and another any anyhow anyone anything anyway anywhere
are around as at back be became because become becomes becoming been before beforehand behind being
below beside besides between beyond bill both bottom but by call can cannot cant co con could
couldnt cry de describe detail do done down due during each eg eight either eleven else elsewhere
empty enough etc even ever every everyone everything everywhere except few fifteen fifty fill find
fire first five for former formerly forty found four from front full further get give go had has
hasnt have he hence her here hereafter hereby herein hereupon hers herself him himself his how
however hundred i ie if in inc indeed interest into is it its itself keep last latter latterly least
less ltd made many may me meanwhile might mill mine more moreover most mostly move much must my
myself name namely neither never nevertheless next nine no nobody none noone nor not nothing now
nowhere of off often on once one only onto or other others otherwise our ours ourselves out over own
part per perhaps please put rather re same see seem seemed seeming seems serious several she should
show side since sincere six sixty so some somehow someone something sometime sometimes somewhere
still such system take ten than that the their them themselves then thence there thereafter thereby
therefore therein thereupon these they thick thin third this those though three through throughout
thru thus to together too top toward towards twelve twenty two un under until up upon us very via
was we well were what whatever when whence whenever where whereafter whereas whereby wherein
whereupon wherever whether which while whither who whoever whole whom whose why will with within
without would yet you your yours yourself yourselves
""".split())
"""scikit-learn 1.9's ``ENGLISH_STOP_WORDS`` (318 words, BSD-3), copied so that scoring a reply never imports
scikit-learn (seconds of CPU in the engine); `tests/analysis/test_echo_stored.py` checks it still equals the library's."""

_STOP_WORDS = _SKLEARN_STOP_WORDS | {"don't", "i'm", "it's", "i'd", "i've", "i'll", "you're"}


def _stop_words() -> frozenset[str]:
    return _STOP_WORDS


_CJK = ("\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
        "\U00020000-\U0003134f")
"""Han, Hiragana and Katakana: written without spaces between words, so each character is a token."""

_CJK_CHAR = re.compile(f"[{_CJK}]")
_CJK_SPLIT = re.compile(f"[{_CJK}]|[^{_CJK}]+")


@functools.lru_cache(maxsize=1)
def _word_unicode() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """`_WORD` with combining marks inside words (Devanagari and Tamil vowel signs and viramas, Arabic
    harakat, Hebrew points...), and a pattern finding a mark or a Chinese or Japanese character (text
    with neither is read by `_WORD`): built on the first text that is not ASCII (about 80 ms, once)."""
    import unicodedata

    ranges: list[str] = []
    start = None
    for cp in [*range(0x300, 0x20000), *range(0xE0100, 0xE01F0), 0x110000]:
        mark = cp < 0x110000 and unicodedata.category(chr(cp))[0] == "M"
        if mark and start is None:
            start = cp
        elif not mark and start is not None:
            ranges.append(f"{chr(start)}-{chr(cp - 1)}" if cp - 1 > start else chr(start))
            start = None
    marks = "".join(ranges)
    char = f"(?:[^\\W_]|[{marks}])"
    bmp = "".join(r for r in ranges if r[0] <= "\uffff")
    # the finder's class stays in the BMP (a bitmap: one test a character); any astral character goes the slow way
    return (re.compile(f"{char}+(?:'{char}+)*", re.UNICODE),
            re.compile(f"[{bmp}{_CJK[:_CJK.index(chr(0x20000))]}\U00010000-\U0010ffff]"))


def content_tokens(text: str) -> list[str]:
    """Lower-cased content words of ``text`` in order (stop words and 1-character tokens removed).

    Text that is not ASCII is put in Unicode NFC first (a decomposed ``é`` is the same word as a
    composed one), combining marks stay inside their word, and Chinese and Japanese characters are
    each one token (kept at one character: they are words or parts of words). Thai, Lao, Khmer and
    Burmese are not segmented: a run between spaces is one token."""
    lowered = text.lower()
    if not lowered.isascii():
        if "’" in lowered:
            lowered = lowered.replace("’", "'")
        word, special = _word_unicode()
        if special.search(lowered) is not None:
            return _tokens_marked(lowered, word)
    return [tok for tok in _WORD.findall(lowered) if len(tok) >= 2 and tok not in _STOP_WORDS]


def _tokens_marked(lowered: str, word: re.Pattern[str]) -> list[str]:
    """`content_tokens` of a text with combining marks or Chinese or Japanese characters."""
    import unicodedata

    lowered = unicodedata.normalize("NFC", lowered)
    out: list[str] = []
    for tok in word.findall(lowered):
        if _CJK_CHAR.search(tok) is None:
            if len(tok) >= 2 and tok not in _STOP_WORDS:
                out.append(tok)
            continue
        for part in _CJK_SPLIT.findall(tok):
            if _CJK_CHAR.fullmatch(part) or (len(part) >= 2 and part not in _STOP_WORDS):
                out.append(part)
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


def _score(tokens: Sequence[str], words: set[str], pairs: set[tuple[str, str]]) -> EchoScore:
    grams = list(zip(tokens, tokens[1:]))
    hit2 = sum(1 for g in grams if g in pairs)
    hit1 = sum(1 for t in tokens if t in words)
    value = hit2 / len(grams) if grams else None
    return EchoScore(echo=value, echo_words=hit1 / len(tokens) if tokens else None, shared_bigrams=hit2,
                     bigrams=len(grams), band=band(value))


PAIR_SIDES = ("a", "b")
"""Speakers of the two models of a pair run."""


ASIDE_STEP = "stop.check_in:"
"""Step prefix of a pair's private check-in messages (``stop.check_in:a``), as the engine writes them."""


def aside_of(step: str | None) -> str | None:
    """The side a message belongs to privately (a pair's check-in, from its step), else None."""
    return step[len(ASIDE_STEP):] if step and step.startswith(ASIDE_STEP) else None


def visible(role: str, speaker: str, reader: str, first: str, aside: str | None = None) -> bool:
    """Does a message (``role``, ``speaker``) count as a prompt of a reply by ``reader``?

    ``first`` is the speaker of the conversation's first model reply: in a pair, scripted user
    turns (the opener) are shown to that side only (as `Conversation.view` sends them).
    ``aside`` is the side a pair's check-in is private to (question or answer): only that side
    reads it.
    """
    if role == "tool":
        return False
    if aside is not None:
        return aside == reader and role != "assistant"
    if role == "assistant":
        return speaker != reader
    if reader in PAIR_SIDES and role == "user" and speaker == "user":
        return reader == first
    return True


class EchoHistory:
    """A conversation's messages so far, for scoring each model reply against its prompts.

    `add` every message in order; `score` a reply before adding it. Each message is tokenised
    once, and each reader's prompt n-grams grow as the conversation does, so scoring a
    conversation costs one pass over its text (not one per reply).
    """

    __slots__ = ("_first", "_messages", "_readers")

    def __init__(self) -> None:
        self._messages: list[tuple[str, str, list[str], str | None]] = []
        self._first: str | None = None
        self._readers: dict[str, tuple[list[int], set[str], set[tuple[str, str]]]] = {}

    def add(self, role: str, speaker: str, content: str, tokens: list[str] | None = None,
            aside: str | None = None) -> None:
        """Append one message (any role) to the history; ``aside``: the side a pair's check-in is private to."""
        if role == "assistant" and self._first is None and aside is None:
            self._first = speaker
        self._messages.append((role, speaker, [] if role == "tool" else
                               (tokens if tokens is not None else content_tokens(content)), aside))

    def score(self, speaker: str, content: str) -> EchoScore:
        """Score a reply by ``speaker`` against every message added so far that it read."""
        return self._score_tokens(speaker, content_tokens(content))

    def _score_tokens(self, speaker: str, tokens: list[str]) -> EchoScore:
        state = self._readers.get(speaker)
        if state is None:
            state = self._readers[speaker] = ([0], set(), set())
        done, words, pairs = state
        first = self._first if self._first is not None else speaker
        for role, who, toks, aside in self._messages[done[0]:]:
            if visible(role, who, speaker, first, aside):
                words.update(toks)
                pairs.update(zip(toks, toks[1:]))
        done[0] = len(self._messages)
        return _score(tokens, words, pairs)

    def reply(self, speaker: str, content: str, aside: str | None = None) -> EchoScore:
        """Score a reply, then add it to the history (what the engine does with each reply)."""
        tokens = content_tokens(content)
        scored = self._score_tokens(speaker, tokens)
        self.add("assistant", speaker, content, tokens, aside)
        return scored


def score_messages(messages: Iterable[tuple[str, ...]]) -> list[EchoScore | None]:
    """Score every model reply of one conversation, given (role, speaker, content) or (role, speaker,
    content, step) in order (the step says which of a pair's check-ins are private to a side).

    Returns one entry per message: its `EchoScore` for an assistant message, None for the others.
    """
    history = EchoHistory()
    out: list[EchoScore | None] = []
    for role, speaker, content, *rest in messages:
        aside = aside_of(rest[0]) if rest else None
        if role == "assistant":
            out.append(history.reply(speaker, content, aside))
        else:
            history.add(role, speaker, content, aside=aside)
            out.append(None)
    return out


def echo_columns(scored: EchoScore | None) -> dict[str, float | int | None]:
    """The `MessageRow` columns of a score (``echo``, ``echo_unigram``, ``echo_bigrams``); all None for None."""
    if scored is None:
        return {"echo": None, "echo_unigram": None, "echo_bigrams": None}
    return {"echo": scored.echo, "echo_unigram": scored.echo_words, "echo_bigrams": scored.bigrams}
