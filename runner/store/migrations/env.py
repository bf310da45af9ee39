"""Alembic environment for the transcript store, configured in code by `runner.store.db`.

`runner.store.db.upgrade(url)` builds the Alembic `Config` and passes the URL (or an
open connection) through ``config.attributes``; there is no alembic.ini.

All pending migrations run in one transaction:
- SQLite: opened with ``BEGIN IMMEDIATE`` (concurrent upgraders queue on the write lock),
  batch mode (``render_as_batch``) for ALTERs, and ``foreign_keys`` switched off around
  the run so that batch table rebuilds cannot cascade deletes; ``PRAGMA
  foreign_key_check`` must come back empty before the commit.
- PostgreSQL: transactional DDL, and an advisory lock so concurrent upgraders queue.

To autogenerate a new revision from tables.py against a scratch database::

    uv run python -c "from alembic import command; from runner.store.db import _alembic_config; \
command.revision(_alembic_config('sqlite:////tmp/scratch.db'), 'message', autogenerate=True)"

(upgrade the scratch database to head first, then review the generated file.)
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from runner.store import tables as _tables  # noqa: F401  (registers the tables)
from runner.store.db import make_engine
from runner.store.search import is_search_object

PG_LOCK_KEY = 0x1A717  # arbitrary, constant: "latitude migrations"

config = context.config
target_metadata = SQLModel.metadata


def _render_item(kind: str, obj: Any, _autogen_context: Any) -> str | bool:
    """Autogenerate plain SQLAlchemy types, so migrations never import sqlmodel."""
    if kind == "type" and isinstance(obj, AutoString):
        length = getattr(obj.impl, "length", None)
        return f"sa.String({length})" if length else "sa.String()"
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _include_name(name: str | None, _type: str, _parent: Any) -> bool:
    """Leave the full-text index (FTS5 tables, GIN index: migration 0003) out of autogenerate."""
    return not is_search_object(name)


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        include_name=_include_name,
        compare_type=True,
        render_item=_render_item,
        render_as_batch=True,  # harmless on PostgreSQL, required on SQLite
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=config.attributes["url"], literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Any) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Outside any transaction (the pragma is ignored inside one): talk to the driver.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        external = connection.in_transaction()
        transaction = None if external else connection.begin()
        try:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_LOCK_KEY})")
            _configure(connection=connection)
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left foreign keys broken: {broken[:5]}")
        except BaseException:
            if transaction is not None:
                transaction.rollback()
            raise
        if transaction is not None:
            transaction.commit()
    finally:
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.attributes["url"], write=True, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
