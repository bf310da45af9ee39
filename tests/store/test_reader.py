"""`StoreReader`, the TUI's reads: keyset pages, filters, neighbours in a filter, transcripts, the review queue."""

from __future__ import annotations

import pytest

from runner.store.reader import ConversationFilter, StoreReader
from tests.data.tui_fixtures import tui_store


@pytest.fixture
def fx(db_url: str):
    return tui_store(db_url)


@pytest.fixture
def reader(fx):
    r = StoreReader(fx.url)
    yield r
    r.close()


def ids(page) -> list[str]:
    return [r.id for r in page.rows]


def test_runs_with_counts(reader: StoreReader, fx) -> None:
    live, done = reader.runs()
    assert (live.id, live.status, live.by_status["running"], live.by_status["pending"]) == (fx.live_run_id,
                                                                                            "running", 2, 1)
    assert (done.conversations, done.by_status["done"], done.by_status["error"]) == (14, 13, 1)


def test_keyset_pages(reader: StoreReader, fx) -> None:
    first = reader.page(fx.run_id, limit=5)
    assert ids(first) == fx.conversations[:5] and first.next_key == (4, fx.conversations[4])
    second = reader.page(fx.run_id, after=first.next_key, limit=5)
    assert ids(second) == fx.conversations[5:10]
    last = reader.page(fx.run_id, after=(9, fx.conversations[9]), limit=5)
    assert ids(last) == fx.conversations[10:] and last.next_key is None
    row = first.rows[0]
    assert (row.model, row.vendor, row.offers, row.tags) == ("gpt-4o", "openai", {"accept": 1},
                                                             ("curiosity", "visualiser"))
    assert reader.page(fx.run_id, limit=100).rows[12].model == "gpt-4o ↔ claude-sonnet"


@pytest.mark.parametrize(("flt", "expected"), [
    (ConversationFilter(model="claude-sonnet"), [4, 5, 6, 7, 12, 13]),
    (ConversationFilter(vendor="sim"), [8, 9, 10, 11]),
    (ConversationFilter(condition="cold", replicate=1), [2, 3, 6, 7, 10, 11][1::2]),
    (ConversationFilter(stop_reason="error"), [10]),
    (ConversationFilter(stop_reason="stop_phrase"), [1, 5, 9]),
    (ConversationFilter(status="error"), [10]),
    (ConversationFilter(offer_outcome="decline"), [3, 4, 9, 10]),
    (ConversationFilter(tag="curiosity"), [0, 1, 4]),
    (ConversationFilter(kind="experimenter"), [13]),
    (ConversationFilter(model="gpt-4o", search="tides"), [0, 12]),
])
def test_filters(reader: StoreReader, fx, flt: ConversationFilter, expected: list[int]) -> None:
    assert ids(reader.page(fx.run_id, flt)) == [fx.conversations[i] for i in expected]
    assert reader.count(fx.run_id, flt) == len(expected)


def test_neighbours_and_position_in_a_filter(reader: StoreReader, fx) -> None:
    c = fx.conversations
    flt = ConversationFilter(model="claude-sonnet")
    assert reader.neighbour(fx.run_id, flt, c[4], 1) == c[5]
    assert reader.neighbour(fx.run_id, flt, c[7], 1) == c[12]
    assert reader.neighbour(fx.run_id, flt, c[13], 1) is None
    assert reader.neighbour(fx.run_id, flt, c[4], -1) is None
    assert reader.neighbour(fx.run_id, ConversationFilter(), c[4], -1) == c[3]
    assert reader.position(fx.run_id, flt, c[12]) == 4


def test_facets(reader: StoreReader, fx) -> None:
    f = reader.facets(fx.run_id)
    assert f.model == ["claude-sonnet", "gpt-4o", "sim-maker"]
    assert f.replicate == [0, 1] and f.offer_outcome == ["accept", "decline", "unclear"]
    assert f.tag == ["boredom", "curiosity", "humour", "visualiser"]
    assert "error:timeout" in f.stop_reason and f.kind == ["experimenter", "pair", "single"]


def test_conversation_record(reader: StoreReader, fx) -> None:
    rec = reader.conversation(fx.conversations[0])
    assert [m.idx for m in rec.messages] == [0, 1, 2, 3, 4]
    assert [o.classification for o in rec.offers] == ["accept"]
    assert [a.name for a in rec.artifacts] == ["story.md"] and [c.name for c in rec.captures] == ["first_choice"]
    assert {(t.coder, t.code) for t in rec.tags} >= {("ana", "curiosity"), ("ben", "curiosity")}
    assert rec.run.id == fx.run_id and reader.conversation("nope") is None


def test_counterpart(reader: StoreReader, fx) -> None:
    c = fx.conversations
    assert reader.counterpart(c[0], "model") == c[4]
    assert reader.counterpart(c[4], "model") == c[8]
    assert reader.counterpart(c[8], "model") == c[0]
    assert reader.counterpart(c[0], "model", -1) == c[8]
    assert reader.counterpart(c[0], "replicate") == c[1]
    assert reader.counterpart(fx.experimenter, "model") is None


def test_review_queue_disagreement_first(reader: StoreReader, fx) -> None:
    items = reader.suggestions("pending")
    assert [i.suggestion.kind for i in items] == ["judge", "judge", "theme"]
    first = items[0]
    assert first.suggestion.conversation_id == fx.conversations[1] and first.disagreement == 3
    assert first.coders_for == ("ben",) and first.message is not None and first.message.idx == 2
    assert items[1].disagreement == 0 and items[2].conversation is None


def test_codebook_reads(reader: StoreReader, fx) -> None:
    book = reader.latest_codebook()
    assert book is not None and book.name == "themes" and reader.codebook_names() == ["themes"]
    assert [c.name for c in reader.codes(book.id)][:2] == ["curiosity", "boredom"]
    assert reader.tag_counts()["curiosity"] == 7
    assert "ana" in reader.coders() and "judge:openai/gpt-4o@themesv1" in reader.coders()
