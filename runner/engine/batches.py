"""The batch transport's ledger in the store (`runner.providers.batch.Ledger`), and the
collector of a run or a judge pass.

Every write goes through the run's `StoreWriter` and is awaited: a batch row and its request
ids are committed before the vendor is asked, its vendor id as soon as it answers.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable

from ..protocol.models_file import ModelAlias
from ..providers.batch import BatchInfo, BatchTransport, Place, StoredRequest, WaveEvent
from ..providers.batch_wire import BatchStatus
from .events import BatchEnded, BatchPolled, BatchSubmitted, Emit

__all__ = ["StoreLedger", "collector", "uses_batches"]

POLL_ENV = "LATITUDE_BATCH_POLL_S"
"""Seconds between two polls of a batch that is out (default 10)."""
IDLE_ENV = "LATITUDE_BATCH_IDLE_S"
"""Seconds without a new request after which a partial wave goes out when no caller is counted (default 2)."""
STALL_ENV = "LATITUDE_BATCH_STALL_S"
"""The same while the run counts its conversations (default 120): a safety net; a wave goes out
when every conversation waits on one."""


def uses_batches(models: Iterable[ModelAlias | None]) -> bool:
    """Whether any of `models` is on the batch transport."""
    return any(m is not None and m.transport == "batch" for m in models)


class StoreLedger:
    """`Ledger` on a `StoreWriter`: batches and batch_requests rows of one run (or judge pass)."""

    def __init__(self, writer: Any, run_id: str | None):
        self.writer = writer
        self.run_id = run_id
        self.stored: dict[str, StoredRequest] = {}

    async def load(self) -> "StoreLedger":
        """Read the requests of earlier sessions of this run (resume)."""
        from sqlmodel import select

        from ..store.tables import BatchRequestRow, BatchRow

        run_id = self.run_id

        def read(session: Any) -> list[Any]:
            q = (select(BatchRequestRow.custom_id, BatchRequestRow.batch_id, BatchRow.vendor_id,
                        BatchRequestRow.state, BatchRequestRow.error_kind)
                 .join(BatchRow, BatchRow.id == BatchRequestRow.batch_id)
                 .where(BatchRequestRow.run_id == run_id).order_by(BatchRequestRow.id))
            return list(session.exec(q).all())

        if run_id is not None:
            for cid, batch_id, vendor_id, state, kind in await self.writer.call(read):
                if state == "resent" and cid in self.stored:
                    continue
                self.stored[cid] = StoredRequest(batch_id, vendor_id, state, kind)
        return self

    async def prepared(self, batch: BatchInfo, requests: list[tuple[str, Place]]) -> None:
        from sqlalchemy import insert

        from ..store.tables import BatchRequestRow, BatchRow, utcnow

        now = utcnow()
        row = BatchRow(id=batch.id, run_id=self.run_id, alias=batch.alias, vendor=batch.vendor, model=batch.model,
                       requests=batch.requests, bytes=batch.bytes, price_note=batch.price_note, created_at=now)
        values = [{"custom_id": cid, "batch_id": batch.id, "run_id": self.run_id, "owner": p.owner,
                   "purpose": p.purpose, "attempt": p.attempt, "state": "submitted", "created_at": now}
                  for cid, p in requests]

        def write(session: Any) -> None:
            session.add(row)
            session.flush()
            session.execute(insert(BatchRequestRow.__table__), values)  # type: ignore[attr-defined]

        await self.writer.call(write)

    async def submitted(self, batch_id: str, vendor_id: str) -> None:
        from ..store.tables import BatchRow, utcnow

        await self.writer.update(BatchRow, batch_id, vendor_id=vendor_id, state="submitted", submitted_at=utcnow())

    async def polled(self, batch_id: str, status: BatchStatus) -> None:
        from ..store.records import BatchStatusRecord
        from ..store.tables import BatchRow, utcnow

        fields: dict[str, Any] = {"state": status.state, "succeeded": status.succeeded, "errored": status.errored,
                                  "expired": status.expired, "cancelled": status.cancelled,
                                  "status_json": BatchStatusRecord.model_validate(
                                      json.loads(json.dumps(status.raw, default=str))).dump()}
        if status.final:
            fields["ended_at"] = utcnow()
        await self.writer.update(BatchRow, batch_id, **fields)

    async def read(self, batch_id: str, outcomes: list[tuple[str, str, str | None]]) -> None:
        from sqlalchemy import bindparam, update

        from ..store.tables import BatchRequestRow, BatchRow, utcnow

        now = utcnow()
        table = BatchRequestRow.__table__  # type: ignore[attr-defined]
        stmt = (update(table).where(table.c.batch_id == bindparam("b_batch"))
                .where(table.c.custom_id == bindparam("b_cid"))
                .values(state=bindparam("b_state"), error_kind=bindparam("b_kind"), ended_at=now))
        params = [{"b_batch": batch_id, "b_cid": cid, "b_state": state, "b_kind": kind} for cid, state, kind in outcomes]

        def write(session: Any) -> None:
            if params:
                session.connection().execute(stmt, params)
            session.exec(update(BatchRow).where(BatchRow.id == batch_id).values(read_at=now))  # type: ignore[call-overload]

        await self.writer.call(write)
        for cid, state, kind in outcomes:
            known = self.stored.get(cid)
            if known is not None:
                known.state, known.error_kind = state, kind

    async def abandoned(self, batch_id: str) -> None:
        from sqlalchemy import update

        from ..store.tables import BatchRequestRow, BatchRow

        def write(session: Any) -> None:
            session.exec(update(BatchRow).where(BatchRow.id == batch_id).values(state="abandoned"))  # type: ignore[call-overload]
            session.exec(update(BatchRequestRow).where(BatchRequestRow.batch_id == batch_id)  # type: ignore[call-overload]
                         .values(state="resent"))

        await self.writer.call(write)
        for known in self.stored.values():
            if known.batch_id == batch_id:
                known.state = "resent"


def reporter(emit: Emit) -> Any:
    """The collector's `WaveEvent`s as the engine's `Batch*` events."""

    def report(e: WaveEvent) -> None:
        if e.kind == "submitted":
            emit(BatchSubmitted(e.batch_id, e.alias, e.vendor, e.requests))
        elif e.kind == "polled":
            emit(BatchPolled(e.batch_id, e.alias, e.state, e.requests, e.succeeded, e.failed))
        else:
            emit(BatchEnded(e.batch_id, e.alias, e.state, e.requests, e.succeeded, e.failed, e.live_cost, e.cost))

    return report


async def collector(writer: Any, run_id: str | None, emit: Emit, *, api_for: Any = None) -> BatchTransport:
    """The wave collector of a run (or, with `run_id` None, of a judge pass), its ledger loaded."""
    ledger = await StoreLedger(writer, run_id).load()
    kwargs: dict[str, Any] = {}
    if api_for is not None:
        kwargs["api_for"] = api_for
    return BatchTransport(ledger, run_id=run_id or "", report=reporter(emit),
                          poll_interval=float(os.environ.get(POLL_ENV, "10")),
                          idle_s=float(os.environ.get(IDLE_ENV, "2")),
                          stall_s=float(os.environ.get(STALL_ENV, "120")), **kwargs)
