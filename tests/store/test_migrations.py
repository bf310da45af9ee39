"""Migrations are the only way the schema is made: they must build exactly tables.py,
upgrade older databases in place keeping their data, and be safe to run repeatedly."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, inspect, text
from sqlmodel import SQLModel

from runner.store import (
    conversation_messages,
    current_revision,
    downgrade,
    head_revision,
    list_runs,
    make_engine,
    session,
    upgrade,
)
from runner.store.db import _alembic_config
from runner.store.search import is_search_object

TABLE_NAMES = {"runs", "conversations", "messages", "offers", "artifacts"}


def schema_diff(url: str, metadata: MetaData = SQLModel.metadata) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            # The full-text index (migration 0003) lives outside the SQLModel metadata.
            opts = {"compare_type": True, "include_name": lambda name, *_: not is_search_object(name)}
            context = MigrationContext.configure(connection, opts=opts)
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def revisions() -> list[str]:
    """Every revision, oldest first."""
    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_single_linear_history() -> None:
    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    assert revisions()[0] == "0001"
    assert revisions()[-1] == head_revision()


def test_upgrade_from_empty_matches_tables(db_url: str) -> None:
    assert current_revision(db_url) is None
    upgrade(db_url)
    assert current_revision(db_url) == head_revision()
    assert schema_diff(db_url) == []
    engine = make_engine(db_url)
    try:
        assert TABLE_NAMES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_schema_check_catches_drift(migrated_url: str) -> None:
    """The comparison above is not vacuous: a column missing from the migrations shows up."""
    drifted = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["runs"].append_column(Column("extra", Integer, nullable=True))
    diff = schema_diff(migrated_url, drifted)
    assert any(d[0] == "add_column" and d[3].name == "extra" for d in diff)


def test_upgrade_is_idempotent(migrated_url: str) -> None:
    upgrade(migrated_url)
    upgrade(migrated_url)
    assert current_revision(migrated_url) == head_revision()
    assert schema_diff(migrated_url) == []


def test_downgrade_to_base_and_back(migrated_url: str) -> None:
    downgrade(migrated_url, "base")
    assert current_revision(migrated_url) is None
    engine = make_engine(migrated_url)
    try:
        assert not TABLE_NAMES & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    upgrade(migrated_url)
    assert schema_diff(migrated_url) == []


def _seed_0001(url: str) -> None:
    """Data written as revision 0001 knew it, with plain SQL (no model code)."""
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    engine = make_engine(url)
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO runs (id, protocol_name, protocol_version, protocol_path, protocol_text,"
                    " protocol_hash, plan_json, models_json, options_json, latitude_version, litellm_version,"
                    " started_at, status, simulated) VALUES ('oldrun', 'p', '1', 'p.yaml', 'x', 'h', '[]', '{}',"
                    " '{}', '0.0.1', '1.0', :now, 'done', :t)"
                ),
                {"now": now, "t": True},
            )
            c.execute(
                text(
                    "INSERT INTO conversations (id, run_id, seq, model_alias, litellm_model, vendor, simulated,"
                    " condition, replicate, params_json, kind, status, turns, tokens_in, tokens_out,"
                    " cached_tokens, cost, started_at) VALUES ('oldconv', 'oldrun', 0, 'm', 'sim/echo', 'sim',"
                    " :t, 'c', 0, '{}', 'single', 'done', 1, 10, 20, 0, 0.5, :now)"
                ),
                {"now": now, "t": True},
            )
            for idx, role in enumerate(["user", "assistant"]):
                c.execute(
                    text(
                        "INSERT INTO messages (conversation_id, idx, role, speaker, step, content, started_at,"
                        " created_at) VALUES ('oldconv', :idx, :role, :role, 'steps[0]', :content, :now, :now)"
                    ),
                    {"idx": idx, "role": role, "content": f"old {idx}", "now": now},
                )
    finally:
        engine.dispose()


def test_older_database_upgrades_in_place_keeping_data(db_url: str) -> None:
    """A database left at the first revision (with data) upgrades to head, one step at a time."""
    history = revisions()
    upgrade(db_url, history[0])
    assert current_revision(db_url) == history[0]
    _seed_0001(db_url)
    for revision in history[1:]:
        upgrade(db_url, revision)
        assert current_revision(db_url) == revision
    upgrade(db_url)  # what every command does before using the store
    assert current_revision(db_url) == head_revision()
    assert schema_diff(db_url) == []

    engine = make_engine(db_url)
    try:
        with session(engine) as s:
            (run,) = list_runs(s)
            assert (run.id, run.conversations, run.tokens_out, run.cost) == ("oldrun", 1, 20, 0.5)
            assert run.started_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
            assert [m.content for m in conversation_messages(s, "oldconv")] == ["old 0", "old 1"]
    finally:
        engine.dispose()


def test_concurrent_upgrades_threads(db_url: str) -> None:
    """Threads of one process may call upgrade() at once (they take turns)."""
    errors: list[BaseException] = []

    def go() -> None:
        try:
            upgrade(db_url)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert current_revision(db_url) == head_revision()


def test_concurrent_upgrades_processes(db_url: str) -> None:
    """Several processes (a run and the TUI, say) may upgrade the same new database at once."""
    code = "import sys; from runner.store import upgrade; upgrade(sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, db_url], stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    failures = [p.stderr.read() for p in procs if p.wait(timeout=120) != 0]  # type: ignore[union-attr]
    for p in procs:
        p.stderr.close()  # type: ignore[union-attr]
    assert failures == []
    assert current_revision(db_url) == head_revision()
    assert schema_diff(db_url) == []


def test_sqlite_foreign_keys_back_on_after_migration(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


def test_table_classes_follow_house_style() -> None:
    """Table classes end in Row, table names are plural, TABLES lists parents first."""
    from runner.store import TABLES

    seen: set[str] = set()
    for cls in TABLES:
        table = cls.__table__  # type: ignore[attr-defined]
        assert cls.__name__.endswith("Row"), cls
        assert table.name.endswith("s"), table.name
        parents = {fk.column.table.name for fk in table.foreign_keys} - {table.name}
        assert parents <= seen, f"{table.name} is listed before its parent(s) {parents - seen}"
        seen.add(table.name)
    assert seen == set(SQLModel.metadata.tables)
