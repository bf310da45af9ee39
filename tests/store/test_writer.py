"""StoreWriter: group commits, commit-before-resolve, isolation of bad ops, the blocking API."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from runner.store import (
    ConversationRow,
    MessageRow,
    RunRow,
    StoreWriter,
    WriterClosedError,
    conversation_messages,
    get_conversation,
    session,
)

from .builders import conversation_row, message_row, new_id, run_row


def count(engine: Engine, table: str) -> int:
    with engine.connect() as c:
        return c.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


async def seed(writer: StoreWriter, conversations: int = 1) -> tuple[RunRow, list[ConversationRow]]:
    run = run_row()
    await writer.add(run)
    convs = [conversation_row(run.id, seq=i) for i in range(conversations)]
    await asyncio.gather(*(writer.add(c) for c in convs))
    return run, convs


async def test_add_returns_keys_and_sets_autoincrement_id(migrated_url: str, engine: Engine) -> None:
    async with StoreWriter(migrated_url) as writer:
        run = run_row()
        assert await writer.add(run) == run.id
        conv = conversation_row(run.id)
        assert await writer.add(conv) == conv.id
        message = message_row(conv.id, 0)
        assert message.id is None
        key = await writer.add(message)
        assert isinstance(key, int) and message.id == key
    with session(engine) as s:
        (stored,) = conversation_messages(s, conv.id)
        assert stored.id == key and stored.content == "message 0"
        assert stored.created_at.tzinfo is not None


async def test_many_concurrent_adds_group_commit_and_resolve_after_commit(
    migrated_url: str, engine: Engine
) -> None:
    """Each coroutine checks from a second connection, right after its await, that its
    row is already committed; the writer needed far fewer transactions than operations."""
    n_conv, n_msgs = 200, 5
    writer = StoreWriter(migrated_url)
    _, convs = await seed(writer, n_conv)
    batches_before, ops_before = writer.batches, writer.ops
    not_visible: list[tuple[str, int]] = []
    probe = engine.connect()

    async def conversation(conv: ConversationRow) -> None:
        for idx in range(n_msgs):
            key = await writer.add(message_row(conv.id, idx))
            found = probe.execute(text("SELECT idx FROM messages WHERE id = :id"), {"id": key}).scalar()
            probe.rollback()  # end the read transaction so the next read sees new commits
            if found != idx:
                not_visible.append((conv.id, idx))
            await writer.update(ConversationRow, conv.id, turns=idx + 1)
            turns = probe.execute(text("SELECT turns FROM conversations WHERE id = :id"), {"id": conv.id}).scalar()
            probe.rollback()
            if turns != idx + 1:
                not_visible.append((conv.id, -idx))

    # Hold the writer thread until every conversation's first add is queued: those 200 adds then
    # share one commit whatever the machine's load (a condition, not relative speed).
    release = threading.Event()
    blocker = asyncio.ensure_future(writer.call(lambda _session: release.wait(60)))
    await asyncio.sleep(0)  # the call is queued...
    while writer.backlog:  # ...and taken by the writer thread
        await asyncio.sleep(0.001)
    try:
        work = asyncio.ensure_future(asyncio.gather(*(conversation(c) for c in convs)))
        while writer.backlog < n_conv:
            assert not blocker.done(), "the writer was released before the adds queued"
            await asyncio.sleep(0.001)
        release.set()
        await blocker
        await work
    finally:
        release.set()
        probe.close()
        await writer.close()
    assert not_visible == []
    assert count(engine, "messages") == n_conv * n_msgs
    ops = writer.ops - ops_before
    batches = writer.batches - batches_before
    assert ops == n_conv * n_msgs * 2 + 1  # and the blocking call
    assert writer.largest_batch >= n_conv, "adds queued while the writer was busy share one commit"
    assert batches <= ops - n_conv + 2


async def test_ops_queued_while_busy_share_one_commit(migrated_url: str, engine: Engine) -> None:
    """Everything queued while the writer is busy goes out in one transaction (group commit)."""
    writer = StoreWriter(migrated_url)
    _, convs = await seed(writer, 1)
    release = threading.Event()

    def busy(_session: object) -> None:
        release.wait(10)  # holds the writer thread while the adds queue up

    blocker = asyncio.ensure_future(writer.call(busy))
    await asyncio.sleep(0)
    while writer.backlog:  # the writer thread has taken the blocking call
        await asyncio.sleep(0.001)
    batches_before = writer.batches
    adds = [asyncio.ensure_future(writer.add(message_row(convs[0].id, idx))) for idx in range(300)]
    while writer.backlog < 300:
        await asyncio.sleep(0.001)
    release.set()
    await blocker
    await asyncio.gather(*adds)
    await writer.close()
    assert count(engine, "messages") == 300
    assert writer.batches - batches_before <= 2, "300 queued adds should share one commit"


async def test_one_callback_per_batch_and_no_db_work_on_loop_thread(migrated_url: str) -> None:
    loop = asyncio.get_running_loop()
    writer = StoreWriter(migrated_url)
    _, convs = await seed(writer, 50)

    calls = 0
    original = loop.call_soon_threadsafe

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    threads: set[str] = set()

    def record(*_args) -> None:  # type: ignore[no-untyped-def]
        threads.add(threading.current_thread().name)

    event.listen(writer._engine, "before_cursor_execute", record)  # noqa: SLF001
    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    batches_before = writer.batches
    try:
        await asyncio.gather(*(writer.add(message_row(c.id, i)) for c in convs for i in range(10)))
    finally:
        loop.call_soon_threadsafe = original  # type: ignore[method-assign]
        await writer.close()
    assert calls <= writer.batches - batches_before < 500
    assert threads == {"store-writer"}


async def test_bad_op_fails_alone(migrated_url: str, engine: Engine) -> None:
    async with StoreWriter(migrated_url) as writer:
        _, (conv,) = await seed(writer)
        await writer.add(message_row(conv.id, 0))
        ops = [message_row(conv.id, i) for i in range(1, 40)]
        ops.insert(10, message_row(conv.id, 0))  # duplicate (conversation_id, idx)
        ops.insert(20, message_row("no-such-conv", 0))  # foreign key
        ops.insert(30, message_row(conv.id, 99, created_at=datetime(2026, 1, 1)))  # naive datetime
        results = await asyncio.gather(*(writer.add(m) for m in ops), return_exceptions=True)
        missing = writer.update(ConversationRow, "no-such-conv", turns=3)
        fine = writer.update(ConversationRow, conv.id, turns=39)
        update_results = await asyncio.gather(missing, fine, return_exceptions=True)

    failed = {i: r for i, r in enumerate(results) if isinstance(r, BaseException)}
    assert set(failed) == {10, 20, 30}
    assert isinstance(failed[10], IntegrityError)
    assert isinstance(failed[20], IntegrityError)
    assert isinstance(failed[30], StatementError | ValueError)
    assert isinstance(update_results[0], LookupError) and update_results[1] is None
    assert count(engine, "messages") == 40
    with session(engine) as s:
        assert [m.idx for m in conversation_messages(s, conv.id)] == list(range(40))
        assert get_conversation(s, conv.id).turns == 39  # type: ignore[union-attr]


async def test_invalid_values_rejected_before_queueing(migrated_url: str) -> None:
    async with StoreWriter(migrated_url) as writer:
        with pytest.raises(ValueError, match="status"):
            await writer.add(run_row(status="finished"))
        with pytest.raises(ValueError, match="role"):
            await writer.add(message_row("x", 0, role="robot"))
        with pytest.raises(ValueError, match="no column"):
            await writer.update(ConversationRow, "x", colour="red")
        with pytest.raises(ValueError, match="status"):
            await writer.update(ConversationRow, "x", status="finished")
        with pytest.raises(ValueError, match="primary key"):
            await writer.update(ConversationRow, "x", id="y")
        with pytest.raises(TypeError):
            await writer.add(object())  # type: ignore[arg-type]
        assert writer.ops == 0


async def test_updates_of_one_row_in_one_batch_merge_in_order(migrated_url: str, engine: Engine) -> None:
    ended = datetime(2026, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    async with StoreWriter(migrated_url) as writer:
        _, (conv,) = await seed(writer)
        await asyncio.gather(
            writer.update(ConversationRow, conv.id, turns=1, status="running"),
            writer.update(ConversationRow, conv.id, turns=2, tokens_in=5),
            writer.update(ConversationRow, conv.id, status="done", stop_reason="max_turns", ended_at=ended),
            writer.update(ConversationRow, conv.id, turns=3),
        )
    with session(engine) as s:
        row = get_conversation(s, conv.id)
        assert row is not None
        assert (row.turns, row.tokens_in, row.status, row.stop_reason) == (3, 5, "done", "max_turns")
        assert row.ended_at == ended and row.ended_at.tzinfo is not None


async def test_call_runs_in_writer_transaction(migrated_url: str, engine: Engine) -> None:
    async with StoreWriter(migrated_url) as writer:
        _, (conv,) = await seed(writer)

        def bump(s) -> int:  # type: ignore[no-untyped-def]
            s.execute(text("UPDATE conversations SET turns = turns + 1 WHERE id = :id"), {"id": conv.id})
            return threading.current_thread().name  # type: ignore[return-value]

        def boom(_s) -> None:  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

        results = await asyncio.gather(
            writer.call(bump), writer.call(boom), writer.call(bump), return_exceptions=True
        )
        assert results[0] == results[2] == "store-writer"
        assert isinstance(results[1], RuntimeError)
        await writer.flush()
    with session(engine) as s:
        assert get_conversation(s, conv.id).turns == 2  # type: ignore[union-attr]


async def test_close_flushes_queued_ops_then_refuses(migrated_url: str, engine: Engine) -> None:
    writer = StoreWriter(migrated_url)
    _, (conv,) = await seed(writer)
    pending = [asyncio.ensure_future(writer.add(message_row(conv.id, i))) for i in range(100)]
    await asyncio.sleep(0)  # let them queue
    await writer.close()
    assert all(p.done() and p.exception() is None for p in pending)
    assert count(engine, "messages") == 100
    assert writer.closed
    with pytest.raises(WriterClosedError):
        await writer.add(message_row(conv.id, 100))
    await writer.close()  # idempotent


async def test_cancelled_awaiter_still_writes(migrated_url: str, engine: Engine) -> None:
    async with StoreWriter(migrated_url) as writer:
        _, (conv,) = await seed(writer)
        task = asyncio.ensure_future(writer.add(message_row(conv.id, 0)))
        await asyncio.sleep(0)
        task.cancel()
        await writer.flush()
    assert count(engine, "messages") == 1


def test_blocking_api_without_event_loop(migrated_url: str, engine: Engine) -> None:
    with StoreWriter(migrated_url) as writer:
        run = run_row()
        assert writer.add_sync(run) == run.id
        conv = conversation_row(run.id)
        writer.add_sync(conv)
        message = message_row(conv.id, 0)
        key = writer.add_sync(message)
        assert message.id == key
        writer.update_sync(ConversationRow, conv.id, status="done", turns=1)
        assert writer.call_sync(lambda s: s.execute(select(func.count()).select_from(MessageRow)).scalar()) == 1
        with pytest.raises(IntegrityError):
            writer.add_sync(message_row(conv.id, 0))
        with pytest.raises(LookupError):
            writer.update_sync(ConversationRow, "nope", turns=1)
        # From other threads at once.
        threads = [
            threading.Thread(target=writer.add_sync, args=(message_row(conv.id, i),)) for i in range(1, 21)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        writer.flush_sync()
    assert writer.closed
    assert count(engine, "messages") == 21
    with session(engine) as s:
        assert get_conversation(s, conv.id).status == "done"  # type: ignore[union-attr]


async def test_throughput_with_2000_coroutines(migrated_url: str, engine: Engine) -> None:
    """The engine's load: 2,000 conversations each committing messages and updates.

    A smoke check (group commit at full speed, nothing pathological); the number is
    measured with tests/store/bench_writer.py: ~14,000-36,000 ops/s on SQLite and
    ~11,000-16,000 on PostgreSQL with insert(), on the idle 2-core dev machine.
    """
    writer = StoreWriter(migrated_url)
    _, convs = await seed(writer, 2000)

    async def conversation(conv: ConversationRow) -> None:
        for idx in range(3):
            await writer.insert(
                MessageRow, conversation_id=conv.id, idx=idx, role="assistant", speaker="model",
                step="steps[0]", content="x" * 200, tokens_out=10,
            )
            await writer.update(ConversationRow, conv.id, turns=idx + 1, tokens_out=10 * (idx + 1))

    batches_before = writer.batches
    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(conversation(c) for c in convs))
    finally:
        elapsed = time.perf_counter() - t0
        await writer.close()
    rate = 2000 * 6 / elapsed
    batches = writer.batches - batches_before
    print(f"writer throughput: {rate:.0f} ops/s with 2000 coroutines, {batches} transactions")
    assert count(engine, "messages") == 6000
    # speed belongs to bench (tests/store/bench_writer.py); here only that writes were grouped at all
    assert batches < 12000 / 2, f"{batches} transactions for 12000 ops: no group commit"


def test_writer_thread_is_distinct_and_stops(migrated_url: str) -> None:
    writer = StoreWriter(migrated_url, name="w-test")
    assert writer._thread.name == "w-test" and writer._thread.is_alive()  # noqa: SLF001
    writer.close_sync()
    assert not writer._thread.is_alive()  # noqa: SLF001


async def test_id_strings_are_accepted_as_given(migrated_url: str) -> None:
    async with StoreWriter(migrated_url) as writer:
        run = run_row(id=new_id())
        assert await writer.add(run) == run.id


async def test_insert_fast_path_applies_defaults(migrated_url: str, engine: Engine) -> None:
    async with StoreWriter(migrated_url) as writer:
        _, (conv,) = await seed(writer)
        key = await writer.insert(
            MessageRow, conversation_id=conv.id, idx=0, role="user", speaker="user", step="steps[0]", content="hi"
        )
        assert isinstance(key, int)
        run_id = await writer.insert(RunRow, **run_row().model_dump(exclude={"started_at", "status", "simulated"}))
        with pytest.raises(ValueError, match="needs"):
            await writer.insert(MessageRow, conversation_id=conv.id, idx=1)
        with pytest.raises(ValueError, match="no column"):
            await writer.insert(MessageRow, conversation_id=conv.id, idx=1, colour="red")
        with pytest.raises(ValueError, match="role"):
            await writer.insert(
                MessageRow, conversation_id=conv.id, idx=1, role="robot", speaker="x", step="s", content=""
            )
        assert writer.insert_sync is not None
    with session(engine) as s:
        (m,) = conversation_messages(s, conv.id)
        assert (m.id, m.content, m.reasoning) == (key, "hi", None)
        assert m.created_at.tzinfo is not None and m.started_at.tzinfo is not None
        run = s.get(RunRow, run_id)
        assert run is not None and (run.status, run.simulated) == ("running", False)


@pytest.mark.postgres
async def test_postgres_writer_survives_a_dropped_connection(pg_url: str, caplog) -> None:  # type: ignore[no-untyped-def]
    """The server closing the writer's connection costs a retry, not a failed write."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from runner.store import upgrade

    upgrade(pg_url)
    async with StoreWriter(pg_url) as writer:
        run = run_row()
        await writer.add(run)
        admin = create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with admin.connect() as c:
                killed = c.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
        finally:
            admin.dispose()
        assert killed >= 1
        conv = conversation_row(run.id)
        assert await writer.add(conv) == conv.id
        # And a batch after a second kill.
        admin = create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with admin.connect() as c:
                c.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
        finally:
            admin.dispose()
        keys = await asyncio.gather(*(writer.add(message_row(conv.id, i)) for i in range(50)))
        assert len(set(keys)) == 50
