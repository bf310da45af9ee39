"""Full-text search over message text: the query language, the index kept current by the
database (SQLite FTS5 triggers; PostgreSQL GIN expression index), on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import Session

from runner.store import make_engine, search
from runner.store.reader import ConversationFilter, StoreReader
from runner.store.search import SearchQuery, Term, parse
from runner.store.tables import ConversationRow, MessageRow, RunRow

RUN = "searchrun001"
TEXTS = {
    "c1": ["Would you like a break?", "Yes, I'd love to write a story about a lighthouse."],
    "c2": ["Would you like a break?", "No, I'm declining: I'd rather keep coding."],
    "c3": ["Tell me about the sea.", "The tide comes in; the Lighthouse keeper waits. Café crème."],
    "c4": ["Anything?", "[bold]markup[/bold] and \x1b[31m escapes \" quotes' NEAR(x y) AND OR NOT *"],
}


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
                    s.add(MessageRow(conversation_id=cid, idx=idx, role="user" if idx == 0 else "assistant",
                                     speaker="user" if idx == 0 else "model", step="s", content=content,
                                     reasoning="I am thinking about penguins." if cid == "c2" and idx else None))
            s.commit()
    finally:
        engine.dispose()


def _seed_at_old_revision(url: str) -> None:
    """`_seed`'s rows into a store at an old revision: only the columns that revision has (the row
    classes carry every column of the newest one)."""
    from sqlalchemy import MetaData, Table, insert

    engine = make_engine(url, write=True)
    try:
        meta = MetaData()
        tables = {t: Table(t, meta, autoload_with=engine) for t in ("runs", "conversations", "messages")}
        have = {t: set(tables[t].columns.keys()) for t in tables}
        rows: list[tuple[str, dict]] = [("runs", RunRow(
            id=RUN, protocol_name="p", protocol_version="1", protocol_path="p.yaml", protocol_text="",
            protocol_hash="", plan_json="{}", models_json="{}", options_json="{}", latitude_version="t",
            litellm_version="t").model_dump())]
        for seq, (cid, msgs) in enumerate(TEXTS.items()):
            rows.append(("conversations", ConversationRow(id=cid, run_id=RUN, seq=seq, model_alias="m",
                                                          litellm_model="sim/m", vendor="sim", condition="c",
                                                          replicate=seq).model_dump()))
            for idx, content in enumerate(msgs):
                rows.append(("messages", MessageRow(
                    conversation_id=cid, idx=idx, role="user" if idx == 0 else "assistant",
                    speaker="user" if idx == 0 else "model", step="s", content=content,
                    reasoning="I am thinking about penguins." if cid == "c2" and idx else None).model_dump()))
        with engine.begin() as c:
            for name, values in rows:
                kept = {k: v for k, v in values.items() if k in have[name] and not (k == "id" and v is None)}
                c.execute(insert(tables[name]).values(**kept))  # type: ignore[arg-type]
    finally:
        engine.dispose()


@pytest.fixture
def reader(migrated_url: str):
    _seed(migrated_url)
    r = StoreReader(migrated_url)
    yield r
    r.close()


def hits(reader: StoreReader, query: str) -> list[str]:
    return [r.id for r in reader.page(RUN, ConversationFilter(search=query)).rows]


# ----------------------------------------------------------------------------- the query language


def test_parse() -> None:
    assert parse("") is None and parse("   ") is None and parse('"" * -') is None
    q = parse('story "take a break" declin* OR stop -pause')
    assert q == SearchQuery(((
        (Term("story"), Term("take a break"), Term("declin", prefix=True)), ()),
        ((Term("stop"),), (Term("pause"),)),
    ))
    assert q.fts5() == '(("story" AND "take a break" AND "declin" *)) OR (("stop") NOT "pause")'
    assert parse('say "hi"there').fts5() == '(("say" AND "hi" AND "there"))'
    assert parse('a"b').fts5() == '(("a\"\"b"))'  # quotes inside a word are doubled, never syntax
    with pytest.raises(search.SearchError, match="only excludes"):
        parse("-only")  # nothing to include: refused, never silently dropped


def test_highlighter() -> None:
    q = parse('tide "lighthouse keeper" declin*')
    found = [m.group(0) for m in q.highlighter().finditer("The TIDE; a Lighthouse  keeper declined, tidewater")]
    assert found == ["TIDE", "Lighthouse  keeper", "declined"]


# ----------------------------------------------------------------------------- both backends


def test_words_phrases_prefix_or_not(reader: StoreReader) -> None:
    assert hits(reader, "lighthouse") == ["c1", "c3"]
    assert hits(reader, "LIGHTHOUSE keeper") == ["c3"]
    assert hits(reader, '"lighthouse keeper"') == ["c3"]
    assert hits(reader, '"keeper lighthouse"') == []
    assert hits(reader, "declin*") == ["c2"]
    assert hits(reader, "story OR tide") == ["c1", "c3"]
    assert hits(reader, "lighthouse -story") == ["c3"]
    assert hits(reader, "break") == ["c1", "c2"]  # matches in the prompt count too
    assert hits(reader, "penguins") == ["c2"]  # reasoning text is searched
    assert reader.count(RUN, ConversationFilter(search="break")) == 2


def test_query_syntax_in_the_box_is_text(reader: StoreReader) -> None:
    for q in ['"unbalanced', "NEAR(x y)", "AND OR NOT", "*", "col:umn", "'", '"', "\\", "(", "^x", "a-b", "é"]:
        reader.page(RUN, ConversationFilter(search=q))  # never an error
    assert hits(reader, "NEAR(x y)") == ["c4"]
    assert hits(reader, "[bold]markup") == ["c4"]


def test_search_combines_with_filters_and_paging(reader: StoreReader) -> None:
    assert [r.id for r in reader.page(RUN, ConversationFilter(search="break", replicate=1)).rows] == ["c2"]
    first = reader.page(RUN, ConversationFilter(search="break OR lighthouse"), limit=2)
    assert [r.id for r in first.rows] == ["c1", "c2"] and first.next_key == (1, "c2")
    rest = reader.page(RUN, ConversationFilter(search="break OR lighthouse"), after=first.next_key, limit=2)
    assert [r.id for r in rest.rows] == ["c3"] and rest.next_key is None


def test_index_follows_inserts_updates_and_deletes(reader: StoreReader, migrated_url: str) -> None:
    engine = make_engine(migrated_url, write=True)
    try:
        with Session(engine) as s:
            s.add(MessageRow(conversation_id="c4", idx=2, role="user", speaker="user", step="s",
                             content="a zeppelin arrives"))
            s.commit()
        assert hits(reader, "zeppelin") == ["c4"]
        with engine.begin() as c:
            c.execute(text("UPDATE messages SET content = 'a balloon arrives' WHERE conversation_id = 'c4' "
                           "AND idx = 2"))
        assert hits(reader, "zeppelin") == [] and hits(reader, "balloon") == ["c4"]
        with engine.begin() as c:
            c.execute(text("DELETE FROM conversations WHERE id = 'c3'"))  # cascades to its messages
        assert hits(reader, "lighthouse") == ["c1"]
    finally:
        engine.dispose()


def test_case_folds_everywhere_accents_on_sqlite(reader: StoreReader) -> None:
    assert hits(reader, "CAFÉ crème") == ["c3"]
    assert hits(reader, "cafe creme") == (["c3"] if reader.dialect == "sqlite" else [])


# ----------------------------------------------------------------------------- per backend


def test_sqlite_index_objects_and_plan(sqlite_url: str) -> None:
    from runner.store import upgrade

    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as c:
            names = {r[0] for r in c.exec_driver_sql("SELECT name FROM sqlite_master")}
            assert {"messages_fts", "messages_fts_ai", "messages_fts_ad", "messages_fts_au",
                    "messages_fts_conversation"} <= names
            assert all(search.is_search_object(n) for n in names if n.startswith("messages_fts"))
            q = search.term_hits("sqlite", parse("story").words()[0])
            compiled = q.compile(dialect=engine.dialect)
            plan = " ".join(str(r[-1]) for r in c.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled),
                                                                  tuple(compiled.params[k] for k in compiled.positiontup or ())))
            assert "VIRTUAL TABLE INDEX" in plan and "messages_fts_conversation" in plan
    finally:
        engine.dispose()


def test_existing_messages_are_indexed_by_the_migration(sqlite_url: str) -> None:
    from runner.store import upgrade

    upgrade(sqlite_url, "0002")
    _seed_at_old_revision(sqlite_url)
    upgrade(sqlite_url)
    r = StoreReader(sqlite_url)
    try:
        assert hits(r, "lighthouse") == ["c1", "c3"]
    finally:
        r.close()


@pytest.mark.postgres
def test_postgres_uses_the_gin_index(pg_url: str) -> None:
    from runner.store import upgrade

    upgrade(pg_url)
    _seed(pg_url)
    engine = make_engine(pg_url)
    try:
        with engine.connect() as c:
            assert c.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE indexname = 'ix_messages_fts'").scalar()
            c.exec_driver_sql("SET enable_seqscan = off")
            stmt = search.term_hits("postgresql", parse('"lighthouse keeper"').words()[0])
            compiled = stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
            plan = "\n".join(r[0] for r in c.exec_driver_sql("EXPLAIN " + str(compiled)))
            assert "ix_messages_fts" in plan
    finally:
        engine.dispose()
