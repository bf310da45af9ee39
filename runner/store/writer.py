"""`StoreWriter`: every write of a run goes through one thread doing group commits.

The engine awaits each write; the event-loop thread never touches the database.
An operation is snapshotted on the caller's thread (cheap: a dict of column values),
queued, and applied by the writer thread together with everything else that queued up
meanwhile, in one transaction. Only after that transaction commits are the callers'
futures resolved (one ``call_soon_threadsafe`` per batch and event loop), so
``await writer.add(row)`` returning means the row is durable and visible to every
other connection.

Within a batch, inserts are grouped per table (parents first, in `TABLES` order) and
sent as one multi-row statement per group (PostgreSQL: keys drawn from the sequence in
one round trip, then one pipelined executemany; inserts whose keys nobody wants, such as
the engine's messages, as one executemany without RETURNING); updates of the same row are merged
(later values win) and sent as one executemany per set of columns. If the batch fails, it is rolled back and replayed op by op in
submission order, each inside a savepoint, so one bad op fails only its own future.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

from pydantic_core import PydanticUndefined
from sqlalchemy import bindparam, insert, text, update
from sqlalchemy.engine import URL, Engine
from sqlmodel import Session, SQLModel

from runner.store.db import make_engine
from runner.store.tables import TABLES

__all__ = ["StoreWriter", "WriterClosedError"]

log = logging.getLogger("runner.store.writer")

T = TypeVar("T")

_ADD, _UPDATE, _CALL, _STOP = "add", "update", "call", "stop"
_MISSING = object()


class WriterClosedError(RuntimeError):
    """Raised by a write submitted after `StoreWriter.close` (or whose writer died)."""


class _TableInfo:
    """What the writer needs to know about one table class, computed once."""

    __slots__ = (
        "table", "pk", "pk_autoincrement", "columns", "literals", "order", "insert_returning", "insert_plain",
        "defaults", "factories", "required",
    )

    def __init__(self, cls: type[SQLModel], order: int) -> None:
        table = cls.__table__  # type: ignore[attr-defined]
        self.table = table
        (pk_col,) = table.primary_key.columns
        self.pk: str = pk_col.key
        self.pk_autoincrement: bool = table.autoincrement_column is pk_col
        self.columns: frozenset[str] = frozenset(c.key for c in table.columns)
        self.literals: dict[str, frozenset[Any]] = {}
        hints = typing.get_type_hints(cls)
        for name in self.columns:
            allowed = _literal_values(hints.get(name))
            if allowed is not None:
                self.literals[name] = allowed
        self.defaults: dict[str, Any] = {}
        self.factories: dict[str, Callable[[], Any]] = {}
        required = set()
        for name, field in cls.model_fields.items():
            if name not in self.columns:
                continue
            if field.default_factory is not None:
                self.factories[name] = field.default_factory  # type: ignore[assignment]
            elif field.default is PydanticUndefined:
                required.add(name)
            else:
                self.defaults[name] = field.default
        self.required = frozenset(required)
        self.order = order
        self.insert_plain = insert(table)
        self.insert_returning = insert(table).returning(pk_col, sort_by_parameter_order=True)

    def check(self, values: dict[str, Any]) -> None:
        for name, allowed in self.literals.items():
            value = values.get(name, _MISSING)
            if value is not _MISSING and value not in allowed:
                raise ValueError(f"{self.table.name}.{name}: {value!r} is not one of {sorted(map(repr, allowed))}")


def _literal_values(hint: Any) -> frozenset[Any] | None:
    if hint is None:
        return None
    origin = typing.get_origin(hint)
    if origin is Literal:
        return frozenset(typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        found: set[Any] = set()
        for arg in typing.get_args(hint):
            if arg is type(None):
                found.add(None)
            else:
                inner = _literal_values(arg)
                if inner is None:
                    return None
                found |= inner
        return frozenset(found)
    return None


_INFO: dict[type, _TableInfo] = {cls: _TableInfo(cls, i) for i, cls in enumerate(TABLES)}


def _info(cls: type) -> _TableInfo:
    info = _INFO.get(cls)
    if info is None:
        if not (isinstance(cls, type) and issubclass(cls, SQLModel) and hasattr(cls, "__table__")):
            raise TypeError(f"{cls!r} is not a table class of runner.store.tables")
        info = _INFO[cls] = _TableInfo(cls, len(_INFO))
    return info


class _Op:
    """One queued write. ``future`` is an asyncio future (with ``loop``) or a
    concurrent.futures future (``loop`` None) for the blocking API."""

    __slots__ = ("kind", "info", "values", "row", "pk", "fn", "future", "loop", "result", "error", "keys", "group")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.keys = True
        """An insert whose primary key is wanted back (False: executemany without RETURNING)."""
        self.group: list[_Op] | None = None
        """On the last op of a `write_all`, all its ops: that op's future resolves for them all."""
        self.info: _TableInfo | None = None
        self.values: dict[str, Any] = {}
        self.row: Any = None
        self.pk: Any = None
        self.fn: Callable[[Session], Any] | None = None
        self.future: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.result: Any = None
        self.error: BaseException | None = None


def _disconnected(exc: BaseException) -> bool:
    """True when SQLAlchemy saw the database connection die under ``exc``."""
    return bool(getattr(exc, "connection_invalidated", False))


def _resolve_in_loop(ops: list[_Op]) -> None:
    """Runs on the event loop thread: hand results to the awaiting coroutines."""
    for op in ops:
        _finish_row(op)
        future = op.future
        if future is None or future.cancelled():  # None: a `write_all` op resolved with its group's last
            continue
        group = op.group
        if group is not None:
            error = next((o.error for o in group if o.error is not None), None)
            if error is None:
                future.set_result([o.result for o in group])
            else:
                future.set_exception(error)
        elif op.error is None:
            future.set_result(op.result)
        else:
            future.set_exception(op.error)


def _finish_row(op: _Op) -> None:
    # Give the caller's row object the primary key the database assigned.
    if op.kind == _ADD and op.error is None and op.row is not None:
        info = op.info
        assert info is not None
        if getattr(op.row, info.pk, None) is None:
            setattr(op.row, info.pk, op.result)


class StoreWriter:
    """The one writer of a store: a thread with its own session doing group commits.

    ``StoreWriter(url)`` starts the thread (the database must already be migrated:
    call `runner.store.upgrade` first). Async API, for the engine's event loop:
    `add`, `insert`, `write_all`, `update`, `call`, `flush`, `close` (also ``async with``). Blocking API,
    for code without a running loop (or another thread): `add_sync`, `insert_sync`,
    `update_sync`, `call_sync`, `flush_sync`, `close_sync` (also ``with``). Every call returns only
    after the transaction holding it committed; a failed write raises its own error
    (e.g. ``sqlalchemy.exc.IntegrityError``) and does not affect the others.

    Cancelling a coroutine that awaits a write does not withdraw the write.
    """

    def __init__(
        self,
        url: str | URL | Engine | None = None,
        *,
        max_batch: int = 1000,
        name: str = "store-writer",
    ) -> None:
        if isinstance(url, Engine):
            self._engine = url
            self._owns_engine = False
        else:
            # No pre-ping: a connection found dead fails the batch, which is then
            # replayed op by op on a fresh connection (see _process).
            self._engine = make_engine(url, write=True, pool_pre_ping=False)
            self._owns_engine = True
        self.max_batch = max_batch
        """Most operations applied in one transaction (the rest wait for the next)."""
        self.batches = 0
        """Transactions committed or attempted so far (for monitoring and tests)."""
        self.ops = 0
        """Operations processed so far."""
        self.largest_batch = 0
        """Most operations seen in one transaction so far."""
        self._pg_sequences: dict[str, Any] = {}
        self._queue: queue.SimpleQueue[_Op | list[_Op]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ building ops

    @staticmethod
    def _add_op(row: SQLModel) -> _Op:
        info = _info(type(row))
        state = row.__dict__
        values = {key: state[key] for key in info.columns if key in state}
        if info.pk_autoincrement and values.get(info.pk) is None:
            values.pop(info.pk, None)
        info.check(values)
        op = _Op(_ADD)
        op.info, op.values, op.row = info, values, row
        return op

    @staticmethod
    def _insert_op(row_class: type[SQLModel], fields: dict[str, Any]) -> _Op:
        info = _info(row_class)
        unknown = fields.keys() - info.columns
        if unknown:
            raise ValueError(f"{info.table.name} has no column(s) {sorted(unknown)}")
        values = dict(info.defaults)
        for name, factory in info.factories.items():
            if name not in fields:
                values[name] = factory()
        values.update(fields)
        missing = info.required - values.keys()
        if missing:
            raise ValueError(f"{info.table.name} needs {sorted(missing)}")
        if info.pk_autoincrement and values.get(info.pk) is None:
            values.pop(info.pk, None)
        info.check(values)
        op = _Op(_ADD)
        op.info, op.values = info, values
        return op

    @staticmethod
    def _update_op(row_class: type[SQLModel], row_id: Any, fields: dict[str, Any]) -> _Op:
        info = _info(row_class)
        if not fields:
            raise ValueError("update() needs at least one field")
        unknown = set(fields) - info.columns
        if unknown:
            raise ValueError(f"{info.table.name} has no column(s) {sorted(unknown)}")
        if info.pk in fields:
            raise ValueError(f"update() cannot change the primary key {info.table.name}.{info.pk}")
        info.check(fields)
        op = _Op(_UPDATE)
        op.info, op.values, op.pk = info, dict(fields), row_id
        return op

    @staticmethod
    def _call_op(fn: Callable[[Session], Any] | None) -> _Op:
        op = _Op(_CALL)
        op.fn = fn
        return op

    def _put(self, op: _Op) -> None:
        with self._lock:
            if self._closed:
                raise WriterClosedError("StoreWriter is closed")
            self._queue.put(op)

    async def _submit(self, op: _Op) -> Any:
        loop = asyncio.get_running_loop()
        op.loop = loop
        op.future = loop.create_future()
        self._put(op)
        return await op.future

    def _submit_sync(self, op: _Op, timeout: float | None) -> Any:
        if threading.current_thread() is self._thread:
            raise RuntimeError("the blocking StoreWriter API cannot be used from inside call()")
        op.future = concurrent.futures.Future()
        self._put(op)
        return op.future.result(timeout)

    # ------------------------------------------------------------------ async API

    async def add(self, row: SQLModel) -> Any:
        """Insert ``row`` (any table row); returns its primary key once committed.

        The row's values are taken when this is called; an autoincrement id is also
        set on ``row`` itself. The writer does not keep ``row``. Always an INSERT: to
        change a stored row use `update`.
        """
        return await self._submit(self._add_op(row))

    async def insert(self, row_class: type[SQLModel], /, **fields: Any) -> Any:
        """Insert a ``row_class`` row from ``fields`` without building the row object.

        Same as ``add(row_class(**fields))`` (defaults and default factories apply,
        returns the primary key) but ~50 µs cheaper per row on the calling thread:
        SQLModel table objects are slow to construct. Use it on hot paths (messages).
        Raises ``ValueError`` at once for unknown or missing fields.
        """
        return await self._submit(self._insert_op(row_class, fields))

    async def write_all(self, inserts: Iterable[tuple[type[SQLModel], dict[str, Any]]] = (),
                        rows: Iterable[SQLModel] = (), *, keys: bool = True) -> list[Any]:
        """`insert` each ``(row_class, fields)`` of ``inserts``, then `add` each of ``rows``, queued
        together (so they share a transaction: a batch always takes a `write_all` whole) and
        awaited as one; returns their primary keys in that order. The same as gathering `insert`
        and `add` calls, with one future for them all. Raises the first failed write's error (the
        others still land, as with ``gather``); unknown or missing fields raise before anything is
        queued.

        ``keys=False``: the keys of ``inserts`` are not wanted (None in their place), so they go in
        as one executemany per table and column set without ``RETURNING`` (on SQLite a
        ``RETURNING`` insert that keeps parameter order is one statement per row). The rows
        stored are the same. ``rows`` still get their keys."""
        ops = [self._insert_op(cls, fields) for cls, fields in inserts]
        if not keys:
            for op in ops:
                op.keys = False
        ops += [self._add_op(r) for r in rows]
        if not ops:
            return []
        loop = asyncio.get_running_loop()
        last = ops[-1]
        for op in ops:
            op.loop = loop
        last.future = loop.create_future()
        last.group = ops
        with self._lock:
            if self._closed:
                raise WriterClosedError("StoreWriter is closed")
            self._queue.put(ops if len(ops) > 1 else last)  # one wake-up of the writer thread, not one per op
        return await last.future  # type: ignore[no-any-return]

    async def update(self, row_class: type[SQLModel], row_id: Any, /, **fields: Any) -> None:
        """Set ``fields`` on the ``row_class`` row whose primary key is ``row_id``.

        Raises ``LookupError`` when there is no such row, ``ValueError`` (at once, before
        queueing) for unknown columns or values outside a ``Literal`` set.
        """
        await self._submit(self._update_op(row_class, row_id, fields))

    async def call(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` on the writer thread inside the next transaction.

        For writes the other methods do not cover (bulk deletes, increments). ``fn``
        runs in submission order relative to the other ops, inside a savepoint (its
        exception fails only its own call), must not block for long and must not use
        the blocking API of this writer. Its return value is returned once committed;
        ORM objects it returns are detached. If another op of the same batch fails,
        the batch is replayed and ``fn`` runs again: keep its effects inside ``session``.
        """
        return await self._submit(self._call_op(fn))  # type: ignore[no-any-return]

    async def flush(self) -> None:
        """Return once everything submitted before has been committed."""
        await self._submit(self._call_op(None))

    async def close(self) -> None:
        """Commit everything queued, stop the thread and release the database."""
        op = self._stop_op()
        if op is not None:
            loop = asyncio.get_running_loop()
            op.loop = loop
            op.future = loop.create_future()
            self._queue.put(op)
            try:
                await op.future
            except WriterClosedError:  # the thread died first; nothing left to flush
                pass
        self._thread.join()

    async def __aenter__(self) -> StoreWriter:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ blocking API

    def add_sync(self, row: SQLModel, *, timeout: float | None = None) -> Any:
        """Blocking `add`, for code without a running event loop (or on another thread)."""
        return self._submit_sync(self._add_op(row), timeout)

    def insert_sync(self, row_class: type[SQLModel], /, **fields: Any) -> Any:
        """Blocking `insert`."""
        return self._submit_sync(self._insert_op(row_class, fields), None)

    def update_sync(self, row_class: type[SQLModel], row_id: Any, /, **fields: Any) -> None:
        """Blocking `update`."""
        self._submit_sync(self._update_op(row_class, row_id, fields), None)

    def call_sync(self, fn: Callable[[Session], T], *, timeout: float | None = None) -> T:
        """Blocking `call`."""
        return self._submit_sync(self._call_op(fn), timeout)  # type: ignore[no-any-return]

    def flush_sync(self, *, timeout: float | None = None) -> None:
        """Blocking `flush`."""
        self._submit_sync(self._call_op(None), timeout)

    def close_sync(self, *, timeout: float | None = None) -> None:
        """Blocking `close`."""
        op = self._stop_op()
        if op is not None:
            op.future = concurrent.futures.Future()
            self._queue.put(op)
            try:
                op.future.result(timeout)
            except WriterClosedError:  # the thread died first; nothing left to flush
                pass
        self._thread.join(timeout)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close_sync()

    @property
    def closed(self) -> bool:
        """True once `close` has been called."""
        return self._closed

    @property
    def backlog(self) -> int:
        """Operations queued and not yet taken by the writer thread (approximate)."""
        return self._queue.qsize()

    def _stop_op(self) -> _Op | None:
        with self._lock:
            if self._closed:
                return None
            self._closed = True
        return _Op(_STOP)

    # ------------------------------------------------------------------ writer thread

    def _run(self) -> None:
        session = Session(self._engine, expire_on_commit=False, autoflush=False)
        stop: _Op | None = None
        try:
            while stop is None:
                first = self._queue.get()
                batch = list(first) if isinstance(first, list) else [first]
                while len(batch) < self.max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(item, list):  # the ops of one `write_all`
                        batch.extend(item)
                    else:
                        batch.append(item)
                work: list[_Op] = []
                for op in batch:
                    if op.kind == _STOP:
                        stop = op  # nothing is queued after STOP (see _put/_stop_op)
                    else:
                        work.append(op)
                if work:
                    self._process(session, work)
        except BaseException as exc:  # pragma: no cover - a bug or interpreter shutdown
            log.exception("store writer thread died")
            with self._lock:
                self._closed = True
            self._fail_pending(WriterClosedError(f"store writer thread died: {exc!r}"))
        finally:
            session.close()
            if self._owns_engine:
                self._engine.dispose()
            if stop is not None:
                self._resolve([stop])

    def _fail_pending(self, error: BaseException) -> None:
        pending = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            for op in item if isinstance(item, list) else [item]:
                op.error = error
                pending.append(op)
        self._resolve(pending)

    def _process(self, session: Session, ops: list[_Op]) -> None:
        self.batches += 1
        self.ops += len(ops)
        self.largest_batch = max(self.largest_batch, len(ops))
        try:
            try:
                self._apply(session, ops, isolate_calls=len(ops) > 1)
            except Exception as exc:
                session.rollback()
                if len(ops) > 1 or _disconnected(exc):
                    # Nothing was committed: replay op by op (on a fresh connection if
                    # the old one died) so only the bad op fails.
                    log.debug("batch of %d failed (%r); replaying op by op", len(ops), exc)
                    self._replay(session, ops)
                else:
                    ops[0].error, ops[0].result = exc, None
            else:
                try:
                    session.commit()
                except Exception as exc:
                    # The outcome of a failed COMMIT is unknown: never replay it.
                    session.rollback()
                    for op in ops:
                        op.error, op.result = exc, None
        finally:
            session.expunge_all()
        self._resolve(ops)

    def _replay(self, session: Session, ops: list[_Op]) -> None:
        for op in ops:
            op.error = op.result = None
        try:
            for op in ops:
                try:
                    with session.begin_nested():
                        self._apply(session, [op], isolate_calls=False)
                except Exception as exc:
                    op.error, op.result = exc, None
                    if _disconnected(exc):  # the database is gone: don't try each op
                        session.rollback()
                        for rest in ops:
                            if rest.error is None or rest is op:
                                rest.error, rest.result = exc, None
                        return
            session.commit()
        except Exception as exc:  # the commit itself failed: nothing is durable
            session.rollback()
            for op in ops:
                if op.error is None:
                    op.error, op.result = exc, None

    def _resolve(self, ops: Iterable[_Op]) -> None:
        per_loop: dict[asyncio.AbstractEventLoop, list[_Op]] = {}
        for op in ops:
            if op.loop is None:
                _finish_row(op)
                if op.error is None:
                    op.future.set_result(op.result)
                else:
                    op.future.set_exception(op.error)
            else:
                per_loop.setdefault(op.loop, []).append(op)
        for loop, loop_ops in per_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve_in_loop, loop_ops)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

    def _apply(self, session: Session, ops: list[_Op], *, isolate_calls: bool) -> None:
        """Apply ``ops`` in the current transaction (raises on the first failure).

        With ``isolate_calls``, each `call` function runs in a savepoint and its
        exception is recorded on its op instead of failing the batch.
        """
        segment: list[_Op] = []
        for op in ops:
            if op.kind == _CALL:
                self._apply_segment(session, segment)
                segment = []
                if op.fn is None:
                    continue
                if not isolate_calls:
                    op.result = op.fn(session)
                    session.flush()
                    continue
                try:
                    with session.begin_nested():
                        op.result = op.fn(session)
                        session.flush()
                except Exception as exc:
                    if _disconnected(exc):
                        raise
                    op.error, op.result = exc, None
            else:
                segment.append(op)
        self._apply_segment(session, segment)

    def _pg_nextvals(self, connection: Any, info: _TableInfo) -> Any:
        """``SELECT nextval(<pk sequence>) FROM generate_series(1, :n)`` for ``info``'s table."""
        stmt = self._pg_sequences.get(info.table.name)
        if stmt is None:
            sequence = connection.execute(
                text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": info.table.name, "column": info.pk},
            ).scalar_one()
            stmt = text("SELECT nextval(CAST(:sequence AS regclass)) FROM generate_series(1, :n)").bindparams(
                sequence=sequence
            )
            self._pg_sequences[info.table.name] = stmt
        return stmt

    def _apply_segment(self, session: Session, ops: list[_Op]) -> None:
        if not ops:
            return
        connection = session.connection()
        inserts: dict[tuple[int, frozenset[str], bool], list[_Op]] = {}
        updates: dict[tuple[int, Any], tuple[_TableInfo, dict[str, Any], list[_Op]]] = {}
        for op in ops:
            info = op.info
            assert info is not None
            if op.kind == _ADD:
                inserts.setdefault((info.order, frozenset(op.values), op.keys), []).append(op)
            else:
                merged = updates.get((info.order, op.pk))
                if merged is None:
                    updates[(info.order, op.pk)] = (info, dict(op.values), [op])
                else:
                    merged[1].update(op.values)
                    merged[2].append(op)

        # Inserts, parents before children; one statement per (table, column set).
        for key in sorted(inserts, key=lambda k: k[0]):
            group = inserts[key]
            info = group[0].info
            assert info is not None
            if info.pk in key[1]:
                params = [op.values for op in group]
                connection.execute(info.insert_plain, params if len(params) > 1 else params[0])
                for op in group:
                    op.result = op.values[info.pk]
            elif not key[2]:  # keys not wanted: one executemany, no RETURNING
                params = [op.values for op in group]
                connection.execute(info.insert_plain, params if len(params) > 1 else params[0])
            elif len(group) > 1 and connection.dialect.name == "postgresql":
                # Take the keys from the sequence in one round trip, then one pipelined
                # executemany of a small cached statement. (A multi-row INSERT … RETURNING
                # would be re-parsed by psycopg for every batch: ~0.2 ms per row.)
                pks = connection.execute(self._pg_nextvals(connection, info), {"n": len(group)}).scalars().all()
                params = []
                for op, pk in zip(group, pks, strict=True):
                    op.result = pk
                    params.append({**op.values, info.pk: pk})
                connection.execute(info.insert_plain, params)
            else:
                params = [op.values for op in group]
                result = connection.execute(info.insert_returning, params if len(params) > 1 else params[0])
                pks = result.scalars().all()
                if len(pks) != len(group):  # pragma: no cover - driver contract
                    raise RuntimeError(f"insert into {info.table.name} returned {len(pks)} keys for {len(group)} rows")
                for op, pk in zip(group, pks, strict=True):
                    op.result = pk

        # Updates after every insert; one row updated once, one executemany per column set.
        by_columns: dict[tuple[int, frozenset[str]], list[tuple[Any, dict[str, Any], list[_Op]]]] = {}
        for (order, pk), (_, values, row_ops) in updates.items():
            by_columns.setdefault((order, frozenset(values)), []).append((pk, values, row_ops))
        dialect = connection.dialect
        for (_order, columns), rows in by_columns.items():
            info = rows[0][2][0].info
            assert info is not None
            table = info.table
            stmt = (
                update(table)
                .where(table.c[info.pk] == bindparam("_pk", type_=table.c[info.pk].type))
                .values({name: bindparam(f"v_{name}", type_=table.c[name].type) for name in columns})
            )
            params = [{"_pk": pk, **{f"v_{k}": v for k, v in values.items()}} for pk, values, _ in rows]
            if len(params) == 1:
                result = connection.execute(stmt, params[0])
                checked = dialect.supports_sane_rowcount
            else:
                result = connection.execute(stmt, params)
                checked = dialect.supports_sane_multi_rowcount
            if checked and result.rowcount != len(params):
                if len(params) == 1:
                    raise LookupError(f"no {table.name} row with {info.pk}={rows[0][0]!r}")
                raise LookupError(f"{len(params) - result.rowcount} of {len(params)} {table.name} rows not found")
