"""Search tells the truth: every operator (words, phrases, prefix, OR, exclusion) counted against an
independent reference (Python over the raw messages, read with the plain DB-API driver), on SQLite
FTS5 and on PostgreSQL, with conversation-level semantics: a conversation matches when its
messages *together* satisfy the query."""

from __future__ import annotations

import random
import re

import pytest
from sqlalchemy import text
from sqlmodel import Session

from runner.store import make_engine
from runner.store.reader import ConversationFilter, StoreReader
from runner.store.search import SearchError, parse
from runner.store.tables import ConversationRow, MessageRow, RunRow

RUN = "countrun0001"
VOCAB = ["flock", "boids", "murmur", "starling", "sky", "wind", "declines", "declined", "decimal", "tide", "keeper",
         "lighthouse", "story"]
PHRASES = ["flock of boids", "the lighthouse keeper", "keeper lighthouse"]

# The issue's case, verbatim: one conversation says "flock" in one turn and "boids" in another.
FIXED = {
    "boids-split": ["Tell me about a flock.", "A flock moves together.", "Reynolds modelled this with boids."],
    "flock-only": ["Tell me about a flock.", "The flock turned in the wind."],
    "boids-only": ["Simulate boids.", "Each boid follows three rules."],
}


def corpus() -> dict[str, list[str]]:
    rng = random.Random(14)
    out = dict(FIXED)
    for i in range(40):
        msgs = []
        for _ in range(rng.randint(1, 4)):
            words = rng.sample(VOCAB, rng.randint(0, 4))
            if rng.random() < 0.25:
                words.append(rng.choice(PHRASES))
            rng.shuffle(words)
            msgs.append((" ".join(words) or "nothing here") + rng.choice([".", "!", "?", ""]))
        out[f"r{i:02d}"] = msgs
    return out


TEXTS = corpus()


def _seed(url: str) -> None:
    engine = make_engine(url, write=True)
    try:
        with Session(engine) as s:
            s.add(RunRow(id=RUN, protocol_name="p", protocol_version="1", protocol_path="p.yaml", protocol_text="",
                         protocol_hash="", plan_json="{}", models_json="{}", options_json="{}",
                         latitude_version="t", litellm_version="t"))
            s.flush()
            for seq, (cid, msgs) in enumerate(TEXTS.items()):
                s.add(ConversationRow(id=cid, run_id=RUN, seq=seq, model_alias="m", litellm_model="sim/m",
                                      vendor="sim", condition="c", replicate=seq))
                s.flush()
                for idx, content in enumerate(msgs):
                    s.add(MessageRow(conversation_id=cid, idx=idx, role="user" if idx % 2 == 0 else "assistant",
                                     speaker="user" if idx % 2 == 0 else "model", step="s", content=content))
            s.commit()
    finally:
        engine.dispose()


def raw_messages(url: str) -> dict[str, list[str]]:
    """The stored messages, read with the plain driver (sqlite3 / psycopg), not through the app's code."""
    out: dict[str, list[str]] = {}
    if url.startswith("sqlite"):
        import sqlite3

        con = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            rows = con.execute("SELECT conversation_id, content FROM messages ORDER BY conversation_id, idx").fetchall()
        finally:
            con.close()
    else:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as con:
            rows = con.execute("SELECT conversation_id, content FROM messages ORDER BY conversation_id, idx").fetchall()
    for cid, content in rows:
        out.setdefault(cid, []).append(content or "")
    return out


def tokens(s: str) -> list[str]:
    return re.findall(r"[^\W_]+", s.lower())


def holds(message: str, phrase: str, prefix: bool) -> bool:
    toks, want = tokens(message), tokens(phrase)
    for i in range(len(toks) - len(want) + 1):
        window = toks[i:i + len(want)]
        if window[:-1] == want[:-1] and (window[-1].startswith(want[-1]) if prefix else window[-1] == want[-1]):
            return True
    return False


def reference(messages: dict[str, list[str]], groups: list[tuple[list[tuple[str, bool]], list[tuple[str, bool]]]]
              ) -> set[str]:
    """Conversation-level semantics, spelled out: for some group, every included term is in some message
    and no excluded term is in any message."""
    out = set()
    for cid, msgs in messages.items():
        def anywhere(term: tuple[str, bool]) -> bool:
            return any(holds(m, term[0], term[1]) for m in msgs)  # noqa: B023
        if any(all(anywhere(t) for t in inc) and not any(anywhere(t) for t in exc) for inc, exc in groups):
            out.add(cid)
    return out


W = False  # a whole word
P = True  # a prefix
CASES: list[tuple[str, list[tuple[list[tuple[str, bool]], list[tuple[str, bool]]]]]] = [
    ("flock", [([("flock", W)], [])]),
    ("flock boids", [([("flock", W), ("boids", W)], [])]),
    ("flock -boids", [([("flock", W)], [("boids", W)])]),
    ('"flock of boids"', [([("flock of boids", W)], [])]),
    ('"lighthouse keeper" -"keeper lighthouse"', [([("lighthouse keeper", W)], [("keeper lighthouse", W)])]),
    ("declin*", [([("declin", P)], [])]),
    ("dec*", [([("dec", P)], [])]),
    ("flock OR murmur", [([("flock", W)], []), ([("murmur", W)], [])]),
    ("flock -boids OR tide -sky", [([("flock", W)], [("boids", W)]), ([("tide", W)], [("sky", W)])]),
    ("STARLING wind -declin*", [([("starling", W), ("wind", W)], [("declin", P)])]),
    ("story keeper -flock -murmur", [([("story", W), ("keeper", W)], [("flock", W), ("murmur", W)])]),
]


@pytest.fixture
def reader(migrated_url: str):
    _seed(migrated_url)
    r = StoreReader(migrated_url)
    yield r
    r.close()


@pytest.mark.parametrize(("query", "groups"), CASES, ids=[c[0] for c in CASES])
def test_counts_match_an_independent_reference(reader: StoreReader, migrated_url: str, query: str,
                                               groups: list) -> None:
    expected = reference(raw_messages(migrated_url), groups)
    flt = ConversationFilter(search=query)
    got = {r.id for r in reader.page(RUN, flt, limit=1000).rows}
    assert got == expected
    assert reader.count(RUN, flt) == len(expected)


def test_the_issue_case(reader: StoreReader) -> None:
    """``flock -boids`` never returns a conversation that mentions boids anywhere; ``flock boids``
    finds the one that says them in different turns."""
    ids = {r.id for r in reader.page(RUN, ConversationFilter(search="flock -boids"), limit=1000).rows}
    assert "flock-only" in ids and "boids-split" not in ids and "boids-only" not in ids
    both = {r.id for r in reader.page(RUN, ConversationFilter(search="flock boids"), limit=1000).rows}
    assert "boids-split" in both and "flock-only" not in both


def test_the_reference_is_not_trivial(migrated_url: str, reader: StoreReader) -> None:
    """Each case separates the corpus (some conversations in, some out), so agreeing means something."""
    messages = raw_messages(migrated_url)
    for query, groups in CASES:
        n = len(reference(messages, groups))
        assert 0 < n < len(messages), query


@pytest.mark.parametrize("query", ["-boids", "-boids -flock", '-"flock of boids"', "flock OR -boids", "-dec*"])
def test_exclusions_only_are_refused_in_words(reader: StoreReader, query: str) -> None:
    with pytest.raises(SearchError) as info:
        parse(query)
    message = str(info.value)
    assert "only excludes" in message and "add a word to look for" in message
    with pytest.raises(SearchError):
        reader.count(RUN, ConversationFilter(search=query))


def test_snippets_show_a_hit_of_each_conversation(reader: StoreReader, migrated_url: str) -> None:
    page = reader.page(RUN, ConversationFilter(search="boids OR murmur"), limit=1000)
    assert page.rows
    query = parse("boids OR murmur")
    assert query is not None
    pattern = query.highlighter()
    for row in page.rows:
        assert row.snippet and pattern.search(row.snippet), (row.id, row.snippet)
    split = next(r for r in page.rows if r.id == "boids-split")
    assert "boids" in split.snippet  # the turn that holds the word, not the first turn
    assert reader.page(RUN, ConversationFilter(), limit=5).rows[0].snippet is None


def test_snippets_are_plain_text(reader: StoreReader, migrated_url: str) -> None:
    engine = make_engine(migrated_url, write=True)
    try:
        with engine.begin() as c:
            c.execute(text("UPDATE messages SET content = :t WHERE conversation_id = 'boids-only' AND idx = 0"),
                      {"t": "[bold]boids[/bold] \x1b[31m <b>"})
    finally:
        engine.dispose()
    row = next(r for r in reader.page(RUN, ConversationFilter(search="boids"), limit=1000).rows
               if r.id == "boids-only")
    assert row.snippet is not None and "boids[/bold]" in row.snippet  # markup stays text, never a marker
