"""Engines, sessions and migrations for the transcript store.

SQLite (a file) and PostgreSQL (``postgresql+psycopg://…``) run the same code.

SQLite connections are tuned on every connect: WAL journal (readers never block the
writer, the writer never blocks readers), ``busy_timeout=30000`` (a second writer waits
instead of failing), ``synchronous=NORMAL`` (durable at checkpoints, fast commits) and
``foreign_keys=ON``. The driver's own transaction handling is switched off and every
transaction is opened with an explicit ``BEGIN``; engines made with ``write=True`` use
``BEGIN IMMEDIATE``, so a writer takes the write lock up front and waits for it under
the busy timeout, instead of failing with "database is locked" when a read transaction
has to be upgraded to a write.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url

if TYPE_CHECKING:
    from sqlmodel import Session

__all__ = [
    "DEFAULT_URL",
    "MIGRATIONS_DIR",
    "code_head",
    "current_revision",
    "default_url",
    "downgrade",
    "head_revision",
    "make_engine",
    "normalize_url",
    "open",
    "session",
    "stored_revision",
    "upgrade",
]

DEFAULT_URL = "sqlite:///transcripts.db"
"""Database used when ``LATITUDE_DB`` is not set: ``transcripts.db`` in the working directory."""

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
"""The Alembic script directory (``env.py``, ``versions/``)."""

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
"""Set on every new SQLite connection."""

_BEGIN_OPTION = "latitude_sqlite_begin"

_ALEMBIC_LOCK = threading.Lock()
"""Alembic keeps its running context in module globals: one migration per process at a time."""


def default_url() -> str:
    """``LATITUDE_DB`` from the environment, else ``sqlite:///transcripts.db``."""
    return normalize_url(os.environ.get("LATITUDE_DB") or DEFAULT_URL)


def normalize_url(url: str | URL) -> str:
    """Make a database URL usable by `make_engine`.

    A bare path (no ``://``) means a SQLite file; ``postgresql://`` and
    ``postgres://`` select the psycopg 3 driver (the one installed).
    """
    text = url.render_as_string(hide_password=False) if isinstance(url, URL) else str(url)
    if "://" not in text:
        return f"sqlite:///{text}"
    for prefix in ("postgresql://", "postgres://"):
        if text.startswith(prefix):
            return "postgresql+psycopg://" + text[len(prefix) :]
    return text


def make_engine(url: str | URL | None = None, *, write: bool = False, **kwargs: Any) -> Engine:
    """A SQLAlchemy engine for ``url`` (default: `default_url`).

    ``write=True`` makes every SQLite transaction start with ``BEGIN IMMEDIATE``
    (used by `StoreWriter` and by anything else that writes). Extra keyword
    arguments go to `sqlalchemy.create_engine`.
    """
    parsed = make_url(normalize_url(url if url is not None else default_url()))
    if parsed.get_backend_name() == "sqlite":
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", 30)
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
        _install_sqlite_listeners(engine)
        if write:
            engine = engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def _install_sqlite_listeners(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module: it would otherwise
        # BEGIN lazily (DEFERRED) and commit silently before DDL.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())


@contextmanager
def opened(url: str | URL | None = None) -> Iterator[Session]:
    """A session on the store at ``url`` (migrated once, `open`), for one piece of work; the engine is
    disposed when the block ends. Rows stay readable after it (``expire_on_commit`` off)."""
    engine = open(url)
    try:
        with session(engine) as s:
            yield s
    finally:
        engine.dispose()


@contextmanager
def session(engine: Engine, **kwargs: Any) -> Iterator[Session]:
    """A `sqlmodel.Session` on ``engine``; rows stay readable after it closes.

    ``expire_on_commit`` defaults to False so rows returned by queries can be used
    after the block (e.g. posted from a worker thread to the UI).
    """
    from sqlmodel import Session

    kwargs.setdefault("expire_on_commit", False)
    with Session(engine, **kwargs) as s:
        yield s


def _alembic_config(url: str | URL | None = None, connection: Any = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # The URL goes through attributes, not the ini options: configparser would
    # choke on the '%' of percent-encoded passwords.
    config.attributes["url"] = normalize_url(url if url is not None else default_url())
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(url: str | URL | None = None, revision: str = "head") -> None:
    """Migrate the database at ``url`` (default: `default_url`) to ``revision``.

    Creates the schema in an empty database and upgrades an older one in place;
    a no-op when it is already there. Safe to call before every use, also from
    several processes at once (SQLite: the migration holds the write lock;
    PostgreSQL: an advisory lock serialises concurrent upgrades; threads of one
    process take turns on a lock, since Alembic's context is process-global).
    """
    from alembic import command

    with _ALEMBIC_LOCK:
        command.upgrade(_alembic_config(url), revision)


_MIGRATED: set[str] = set()
"""URLs this process has migrated already (`open` migrates each once)."""

_REVISION_LINE = re.compile(r"^(revision|down_revision)\b[^=\n]*=\s*(.+)$", re.MULTILINE)


def code_head() -> str | None:
    """The head revision of the migrations shipped with this code, read from the files in
    ``versions/`` without importing Alembic (~0.5 s): the one revision no other names as its
    ``down_revision``. None when that is not one revision (several heads, a file it cannot
    read): `open` then leaves the decision to Alembic. A test holds it equal to `head_revision`."""
    revisions: set[str] = set()
    parents: set[str] = set()
    try:
        for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
            found = dict(m.groups() for m in _REVISION_LINE.finditer(path.read_text()))
            ids = re.findall(r"[\"']([^\"']+)[\"']", found.get("revision", ""))
            if len(ids) != 1:
                return None
            revisions.add(ids[0])
            parents.update(re.findall(r"[\"']([^\"']+)[\"']", found.get("down_revision", "")))
    except OSError:
        return None
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def stored_revision(url: str) -> str | None:
    """The revision in the database's ``alembic_version`` table, read with the driver alone
    (SQLite: a read-only connection, which never waits for a writer; PostgreSQL: one query).
    None when it cannot be read (no file yet, no table, an in-memory database)."""
    parsed = make_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            import sqlite3

            path = parsed.database
            if not path or path == ":memory:" or path.startswith("file:") or parsed.query or not Path(path).exists():
                return None
            connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=30)
            try:
                rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
            finally:
                connection.close()
        else:
            from sqlalchemy.pool import NullPool

            engine = make_engine(url, poolclass=NullPool)
            try:
                with engine.connect() as connection:
                    rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").fetchall()
            finally:
                engine.dispose()
    except Exception:
        return None
    return rows[0][0] if len(rows) == 1 else None


def open(url: str | URL | None = None, *, write: bool = False, **kwargs: Any) -> Engine:  # noqa: A001
    """The one way into the store: migrate the database at ``url`` (default: `default_url`) to
    the head revision, once per process and URL, and return an engine on it (`make_engine`).

    A database already at the head revision (`stored_revision` == `code_head`) is not handed
    to Alembic at all: importing it costs ~0.5 s of a command's start. Every command and the
    TUI open the store through here; `upgrade` stays for migration tests and tools that move
    between revisions."""
    text = normalize_url(url if url is not None else default_url())
    if text not in _MIGRATED:
        head = code_head()
        if head is None or stored_revision(text) != head:
            upgrade(text)
        _MIGRATED.add(text)
    return make_engine(text, write=write, **kwargs)


def downgrade(url: str | URL | None, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``base`` drops everything)."""
    from alembic import command

    with _ALEMBIC_LOCK:
        command.downgrade(_alembic_config(url), revision)
        _MIGRATED.discard(normalize_url(url if url is not None else default_url()))


def head_revision() -> str:
    """The newest migration revision shipped with this code."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(url: str | URL | None = None) -> str | None:
    """The revision the database at ``url`` is at (None: not migrated yet)."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
