"""`runner.store.open` hands a database to Alembic only when it is not at the head revision:
the head is read from the migration files (`code_head`) and the database's revision with the
driver (`stored_revision`), so a command opening an up-to-date store never imports Alembic."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from runner.store import db


def test_code_head_is_alembics_head() -> None:
    """The head read from the files is the one Alembic computes (a new migration keeps them equal)."""
    assert db.code_head() is not None
    assert db.code_head() == db.head_revision()


def test_stored_revision_of_missing_and_empty_databases(tmp_path) -> None:
    assert db.stored_revision(f"sqlite:///{tmp_path / 'none.db'}") is None
    assert not (tmp_path / "none.db").exists(), "reading the revision must not create the file"
    assert db.stored_revision("sqlite://") is None
    import sqlite3

    sqlite3.connect(tmp_path / "empty.db").close()
    assert db.stored_revision(f"sqlite:///{tmp_path / 'empty.db'}") is None


def test_open_migrates_new_and_old_databases(db_url: str) -> None:
    head = db.head_revision()
    db.open(db_url).dispose()
    assert db.current_revision(db_url) == head
    assert db.stored_revision(db_url) == head
    db.downgrade(db_url, "0006")  # also forgets that this process migrated it
    assert db.stored_revision(db_url) == "0006"
    db.open(db_url).dispose()
    assert db.current_revision(db_url) == head


def test_open_at_head_does_not_import_alembic(db_url: str) -> None:
    db.upgrade(db_url)
    code = textwrap.dedent(
        f"""
        import sys
        from runner.store.db import open
        open({db_url!r}).dispose()
        print(sorted({{m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    code_old = code.replace("open(", "import runner.store.db as d; d.downgrade(" + repr(db_url) + ", '0006'); open(", 1)
    out = subprocess.run([sys.executable, "-c", code_old], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['alembic', 'mako']", "a database behind the head is migrated by Alembic"
    assert db.current_revision(db_url) == db.head_revision()
