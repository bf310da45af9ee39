"""Engine settings, URLs and the import cost of the package."""

from __future__ import annotations

import subprocess
import sys
import importlib
import textwrap

import pytest

from runner.store import default_url, make_engine, normalize_url, session
from runner.store.db import DEFAULT_URL


def test_sqlite_pragmas_on_every_connection(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        # Two connections open at once: both must carry the settings.
        with engine.connect() as a, engine.connect() as b:
            for connection in (a, b):
                values = {
                    name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                    for name in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")
                }
                assert values == {"journal_mode": "wal", "busy_timeout": 30000, "synchronous": 1, "foreign_keys": 1}
    finally:
        engine.dispose()


def test_write_engine_begins_immediate(sqlite_url: str) -> None:
    """A write engine takes the write lock at BEGIN; a reader's BEGIN stays deferred."""
    writer, reader = make_engine(sqlite_url, write=True), make_engine(sqlite_url)
    try:
        seen: list[str] = []
        from sqlalchemy import event

        for e in (writer, reader):
            event.listen(e, "before_cursor_execute", lambda c, cur, stmt, *a: seen.append(stmt))
        with writer.begin() as connection:
            connection.exec_driver_sql("SELECT 1")
        with reader.begin() as connection:
            connection.exec_driver_sql("SELECT 1")
        assert "BEGIN IMMEDIATE" in seen
        assert "BEGIN" in seen
    finally:
        writer.dispose()
        reader.dispose()


def test_default_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LATITUDE_DB", raising=False)
    assert default_url() == DEFAULT_URL == "sqlite:///transcripts.db"
    monkeypatch.setenv("LATITUDE_DB", "postgresql://u:p@h/db")
    assert default_url() == "postgresql+psycopg://u:p@h/db"
    monkeypatch.setenv("LATITUDE_DB", "/tmp/x.db")
    assert default_url() == "sqlite:////tmp/x.db"


def test_normalize_url() -> None:
    assert normalize_url("runs.db") == "sqlite:///runs.db"
    assert normalize_url("sqlite:///a.db") == "sqlite:///a.db"
    assert normalize_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"


def test_session_rows_survive_close(engine) -> None:
    from runner.store import RunRow

    from .builders import run_row

    with session(engine) as s:
        s.add(run_row(id="r1"))
        s.commit()
        row = s.get(RunRow, "r1")
    assert row is not None and row.protocol_name == "exit_interview"


def test_import_is_light() -> None:
    """Importing runner.store loads no SQLAlchemy yet, and the store never loads litellm, rich or textual."""
    code = textwrap.dedent(
        """
        import sys
        import runner  # the parent package is not the store's to judge
        heavy = lambda: {m for m in sys.modules if m.split('.')[0] in {'sqlalchemy', 'sqlmodel', 'alembic'}}
        before = heavy()
        import runner.store
        print(len(heavy() - before))
        from runner.store import StoreWriter, list_runs, upgrade, RunRow  # everything public
        for name in runner.store.__all__:
            getattr(runner.store, name)
        bad = sorted(m for m in sys.modules if m.split('.')[0] in {'litellm', 'rich', 'textual'})
        print(bad)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "0", "import runner.store must not import SQLAlchemy eagerly"
    assert out[1] == "[]", "the store must not import litellm, rich or textual"


def test_public_names_resolve() -> None:
    import runner.store as store

    assert sorted(store.__all__) == sorted(set(store.__all__))
    assert set(store.__all__) <= set(store._HOME) | set(vars(store)), "a public name with no home"
    for name in store.__all__:
        home = store._HOME.get(name)
        if home is not None:  # the lazy re-export is the very object its module defines
            assert getattr(store, name) is getattr(importlib.import_module(home), name), name
    with pytest.raises(AttributeError):
        store.not_a_name  # noqa: B018
