"""`StoreWriter.write_all`: several inserts and row adds queued together and awaited as one (the
engine's per-turn write), with the same results and failures as gathering `insert` and `add`."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from runner.store import MessageRow, StoreWriter, WriterClosedError, conversation_messages, session
from runner.store.tables import CaptureRow

from .builders import conversation_row, run_row


def _fields(conversation_id: str, idx: int) -> dict:
    return {"conversation_id": conversation_id, "idx": idx, "role": "user", "speaker": "user",
            "step": f"steps[{idx}]", "content": f"message {idx}"}


async def test_inserts_then_rows_committed_in_one_batch(migrated_url: str, engine: Engine) -> None:
    async with StoreWriter(migrated_url) as writer:
        run = run_row()
        await writer.add(run)
        conv = conversation_row(run.id)
        await writer.add(conv)
        before = writer.batches
        capture = CaptureRow(conversation_id=conv.id, name="first", message_idx=0)
        keys = await writer.write_all([(MessageRow, _fields(conv.id, 0)), (MessageRow, _fields(conv.id, 1))], [capture])
        assert writer.batches == before + 1
        assert len(keys) == 3 and all(isinstance(k, int) for k in keys)
        assert capture.id == keys[2]
        assert await writer.write_all() == []
    with session(engine) as s:
        stored = conversation_messages(s, conv.id)
        assert [(m.id, m.idx, m.content) for m in stored] == [(keys[0], 0, "message 0"), (keys[1], 1, "message 1")]
        assert all(m.created_at.tzinfo is not None for m in stored)


async def test_a_failed_write_raises_and_the_others_land(migrated_url: str, engine: Engine) -> None:
    async with StoreWriter(migrated_url) as writer:
        run = run_row()
        await writer.add(run)
        conv = conversation_row(run.id)
        await writer.add(conv)
        with pytest.raises(IntegrityError):
            await writer.write_all([(MessageRow, _fields(conv.id, 0)), (MessageRow, _fields("no-such", 0)),
                                    (MessageRow, _fields(conv.id, 1))])
        with pytest.raises(ValueError, match="needs"):
            await writer.write_all([(MessageRow, {"conversation_id": conv.id, "idx": 5})])
    with session(engine) as s:
        assert [m.idx for m in conversation_messages(s, conv.id)] == [0, 1]


async def test_refused_after_close(migrated_url: str) -> None:
    writer = StoreWriter(migrated_url)
    await writer.close()
    with pytest.raises(WriterClosedError):
        await writer.write_all([(MessageRow, _fields("x", 0))])


async def test_without_keys_the_same_rows_land_in_order(migrated_url: str, engine: Engine) -> None:
    async with StoreWriter(migrated_url) as writer:
        run = run_row()
        await writer.add(run)
        conv = conversation_row(run.id)
        await writer.add(conv)
        with_keys = await writer.write_all([(MessageRow, _fields(conv.id, 0)), (MessageRow, _fields(conv.id, 1))])
        capture = CaptureRow(conversation_id=conv.id, name="third", message_idx=2)
        before = writer.batches
        keys = await writer.write_all([(MessageRow, _fields(conv.id, 2)), (MessageRow, _fields(conv.id, 3))],
                                      [capture], keys=False)
        assert writer.batches == before + 1
        assert keys[:2] == [None, None] and isinstance(keys[2], int) and capture.id == keys[2]
        assert await writer.write_all([(MessageRow, _fields(conv.id, 4))], keys=False) == [None]
        with pytest.raises(IntegrityError):  # one bad row fails the call; the others land
            await writer.write_all([(MessageRow, _fields(conv.id, 5)), (MessageRow, _fields("no-such", 0))],
                                   keys=False)
    with session(engine) as s:
        stored = conversation_messages(s, conv.id)
        assert [m.idx for m in stored] == [0, 1, 2, 3, 4, 5]
        ids = [m.id for m in stored]
        assert ids[:2] == with_keys and ids == sorted(ids)  # ids in submission order, as with keys
        assert all(m.created_at.tzinfo is not None for m in stored)
