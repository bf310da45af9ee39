"""Store fixtures: a database URL per backend, fresh for every test.

``db_url`` runs a test on SQLite (a file in tmp_path) and on PostgreSQL (a new
database created for the test inside the server named by ``LATITUDE_TEST_PG_URL``,
dropped afterwards). Without that variable the PostgreSQL case is skipped locally
and FAILS under CI (``CI`` set): a CI without PostgreSQL must be red.
Set it with ``source .ci/postgres.sh``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from runner.store import make_engine, upgrade

PG_ENV = "LATITUDE_TEST_PG_URL"


def pg_base_url() -> str:
    """The server URL from the environment, or skip (locally) / fail (CI)."""
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set under CI: .ci/run must `source .ci/postgres.sh`", pytrace=False)
        pytest.skip(f"PostgreSQL store tests need {PG_ENV} (run `source .ci/postgres.sh` as root)")
    return url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    base = make_url(pg_base_url())
    name = f"latitude_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(admin, name)
        admin.dispose()


def _drop_database(admin, name: str) -> None:  # type: ignore[no-untyped-def]
    """Drop a test database. `WITH (FORCE)` would also try to terminate an autovacuum worker that
    happens to be in it, which a non-superuser may not (InsufficientPrivilege): so end only our own
    role's sessions and let a plain DROP cancel autovacuum itself, as PostgreSQL does. A session
    just terminated may take a moment to exit: retry while the server says the database is in use."""
    from sqlalchemy.exc import OperationalError

    for attempt in range(20):
        with admin.connect() as connection:
            connection.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %(name)s"
                " AND usename = current_user AND pid <> pg_backend_pid()", {"name": name})
            try:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
                return
            except OperationalError:  # "is being accessed by other users" (PostgreSQL waited 5 s already)
                if attempt == 19:
                    raise


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database (not migrated) on each backend."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def migrated_url(db_url: str) -> str:
    """``db_url`` migrated to head."""
    upgrade(db_url)
    return db_url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    """A reader engine on the migrated database."""
    e = make_engine(migrated_url)
    yield e
    e.dispose()
