"""SQLite in WAL mode: readers (the TUI, exports) and other writers run alongside the
StoreWriter without ever seeing "database is locked"."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from runner.store import (
    ConversationRow,
    MessageRow,
    RunRow,
    StoreWriter,
    conversation_messages,
    list_runs,
    make_engine,
    session,
    upgrade,
)

from .builders import conversation_row, run_row


async def test_readers_and_a_second_writer_while_the_writer_writes(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    writer = StoreWriter(sqlite_url)
    run = run_row()
    await writer.add(run)
    convs = [conversation_row(run.id, seq=i) for i in range(100)]
    await asyncio.gather(*(writer.add(c) for c in convs))

    done = threading.Event()
    errors: list[BaseException] = []
    reads = {"n": 0}
    side_writes = {"n": 0}

    def reader() -> None:
        engine = make_engine(sqlite_url)
        last_total = 0
        try:
            while not done.is_set():
                with session(engine) as s:
                    (summary,) = [r for r in list_runs(s) if r.id == run.id]
                    messages = conversation_messages(s, convs[0].id)
                    total = s.execute(text("SELECT count(*) FROM messages")).scalar_one()
                assert [m.idx for m in messages] == list(range(len(messages)))
                assert total >= last_total  # commits only ever add
                assert summary.conversations == 100
                last_total = total
                reads["n"] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    def side_writer() -> None:
        # Another writer on its own connection (e.g. the TUI saving a tag): waits on
        # the busy timeout instead of failing.
        engine = make_engine(sqlite_url, write=True)
        try:
            while not done.is_set():
                with engine.begin() as c:
                    c.execute(
                        text("UPDATE runs SET options_json = :v WHERE id = :id"),
                        {"v": str(side_writes["n"]), "id": run.id},
                    )
                side_writes["n"] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=reader) for _ in range(2)] + [threading.Thread(target=side_writer)]
    for t in threads:
        t.start()
    try:

        async def conversation(conv: ConversationRow) -> None:
            for idx in range(30):
                await writer.insert(
                    MessageRow, conversation_id=conv.id, idx=idx, role="user", speaker="user", step="s", content="x"
                )
                await writer.update(ConversationRow, conv.id, turns=idx + 1)

        await asyncio.gather(*(conversation(c) for c in convs))
    finally:
        done.set()
        await asyncio.to_thread(lambda: [t.join() for t in threads])
        await writer.close()

    assert not [e for e in errors if isinstance(e, OperationalError)], errors
    assert errors == []
    assert reads["n"] > 0 and side_writes["n"] > 0
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM messages")).scalar_one() == 3000
            assert c.execute(text("SELECT min(turns) FROM conversations")).scalar_one() == 30
    finally:
        engine.dispose()


def test_reader_in_another_process(sqlite_url: str) -> None:
    """A separate process (the TUI) polls the store while a run writes."""
    upgrade(sqlite_url)
    reader_code = textwrap.dedent(
        """
        import sys, time
        from runner.store import make_engine, session, list_runs
        engine = make_engine(sys.argv[1])
        deadline = time.monotonic() + 60
        seen = 0
        print("ready", flush=True)
        while time.monotonic() < deadline:
            with session(engine) as s:
                runs = list_runs(s)
            seen = max(seen, sum(r.conversations for r in runs))
            if seen >= 200:
                break
        print(seen)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", reader_code, sqlite_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        with StoreWriter(sqlite_url) as writer:
            run = run_row()
            writer.add_sync(run)
            for i in range(200):
                writer.add_sync(conversation_row(run.id, seq=i))
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "locked" not in err
    assert out.strip() == "200"
    assert RunRow is not None
