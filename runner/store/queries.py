"""Reads for display and resume: synchronous functions taking a `Session`.

They never write. Rows come back as table rows (``RunRow``, ``ConversationRow`` …) or
read models (`RunSummary`); with `runner.store.session` (``expire_on_commit=False``)
they stay usable after the session is closed, e.g. when posted from a worker thread.
On SQLite (WAL) reads run concurrently with the `StoreWriter` and see the last commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from runner.store.records import RunSummary
from runner.store.tables import (
    CONVERSATION_STATUSES,
    ArtifactRow,
    BatchRow,
    ConversationRow,
    ConversationStatus,
    MessageRow,
    OfferRow,
    StopCandidateRow,
    RunRow,
)

__all__ = [
    "UNFINISHED_STATUSES",
    "cache_totals",
    "conversation_artifacts",
    "conversation_messages",
    "conversation_offers",
    "conversation_stop_candidates",
    "get_conversation",
    "get_run",
    "latest_run",
    "list_runs",
    "next_message_idx",
    "run_conversations",
    "run_summary",
    "unfinished_conversations",
]

UNFINISHED_STATUSES: tuple[ConversationStatus, ...] = ("pending", "running", "cancelled")
"""Statuses `resume` picks up: never started, cut off by a kill, or cancelled by Ctrl-C."""


def list_runs(session: Session, *, limit: int | None = None) -> list[RunSummary]:
    """Every run, newest first, with conversation counts per status and token/cost totals."""
    stmt = select(RunRow).order_by(col(RunRow.started_at).desc(), col(RunRow.id))
    if limit is not None:
        stmt = stmt.limit(limit)
    runs = list(session.exec(stmt))
    return _summaries(session, runs)


def run_summary(session: Session, run_id: str) -> RunSummary | None:
    """The `RunSummary` of one run (None if there is no such run)."""
    run = session.get(RunRow, run_id)
    return None if run is None else _summaries(session, [run])[0]


def _summaries(session: Session, runs: Sequence[RunRow]) -> list[RunSummary]:
    if not runs:
        return []
    c = ConversationRow
    stmt = (
        select(
            c.run_id,
            c.status,
            func.count(),
            func.coalesce(func.sum(c.turns), 0),
            func.coalesce(func.sum(c.tokens_in), 0),
            func.coalesce(func.sum(c.tokens_out), 0),
            func.coalesce(func.sum(c.cached_tokens), 0),
            func.coalesce(func.sum(c.cost), 0.0),
            func.coalesce(func.sum(c.cache_write_tokens), 0),
            func.sum(c.input_cost),
            func.sum(c.input_cost_uncached),
        )
        .group_by(c.run_id, c.status)
    )
    if len(runs) <= 500:
        stmt = stmt.where(col(c.run_id).in_([r.id for r in runs]))
    totals: dict[str, list[float]] = {}
    counts: dict[str, dict[str, int]] = {}
    priced: dict[str, list[float]] = {}
    for run_id, status, n, turns, t_in, t_out, cached, cost, written, in_cost, in_uncached in session.exec(stmt):
        acc = totals.setdefault(run_id, [0, 0, 0, 0, 0, 0.0, 0])
        for i, v in enumerate((n, turns, t_in, t_out, cached, cost, written)):
            acc[i] += v
        if in_cost is not None:
            p = priced.setdefault(run_id, [0.0, 0.0])
            p[0] += float(in_cost)
            p[1] += float(in_uncached or 0.0)
        counts.setdefault(run_id, {})[status] = int(n)
    out_states = ("preparing", "submitted", "validating", "in_progress", "finalizing", "cancelling")
    b = BatchRow
    bstmt = select(b.run_id, func.count()).where(col(b.state).in_(out_states)).group_by(b.run_id)
    if len(runs) <= 500:
        bstmt = bstmt.where(col(b.run_id).in_([r.id for r in runs]))
    batches_out = {run_id: int(n) for run_id, n in session.exec(bstmt)}
    out = []
    for r in runs:
        n, turns, t_in, t_out, cached, cost, written = totals.get(r.id, [0, 0, 0, 0, 0, 0.0, 0])
        in_cost, in_uncached = priced.get(r.id, (None, None))
        by_status = {s: 0 for s in CONVERSATION_STATUSES}
        by_status.update(counts.get(r.id, {}))  # type: ignore[arg-type]
        out.append(
            RunSummary(
                id=r.id,
                protocol_name=r.protocol_name,
                protocol_version=r.protocol_version,
                started_at=r.started_at,
                ended_at=r.ended_at,
                status=r.status,
                simulated=r.simulated,
                conversations=int(n),
                by_status=by_status,
                turns=int(turns),
                tokens_in=int(t_in),
                tokens_out=int(t_out),
                cached_tokens=int(cached),
                cost=float(cost),
                cache_write_tokens=int(written),
                input_cost=in_cost,
                input_cost_uncached=in_uncached,
                batches_out=batches_out.get(r.id, 0),
            )
        )
    return out


def get_run(session: Session, run_id: str) -> RunRow | None:
    """The run row (None if there is no such run)."""
    return session.get(RunRow, run_id)


def latest_run(session: Session) -> RunRow | None:
    """The most recently started run (None in an empty store)."""
    stmt = select(RunRow).order_by(col(RunRow.started_at).desc(), col(RunRow.id).desc()).limit(1)
    return session.exec(stmt).first()


def run_conversations(
    session: Session,
    run_id: str,
    *,
    statuses: Iterable[ConversationStatus] | None = None,
) -> list[ConversationRow]:
    """The run's conversations in plan order (``seq``), optionally only some statuses."""
    stmt = select(ConversationRow).where(ConversationRow.run_id == run_id)
    if statuses is not None:
        stmt = stmt.where(col(ConversationRow.status).in_(list(statuses)))
    stmt = stmt.order_by(col(ConversationRow.seq), col(ConversationRow.id))
    return list(session.exec(stmt))


def unfinished_conversations(
    session: Session, run_id: str, *, include_errors: bool = False
) -> list[ConversationRow]:
    """Conversations `resume` should continue, in plan order: pending, running
    (cut off by a kill) and cancelled; with ``include_errors``, also ``error``."""
    statuses: list[ConversationStatus] = list(UNFINISHED_STATUSES)
    if include_errors:
        statuses.append("error")
    return run_conversations(session, run_id, statuses=statuses)


def get_conversation(session: Session, conversation_id: str) -> ConversationRow | None:
    """The conversation row (None if there is no such conversation)."""
    return session.get(ConversationRow, conversation_id)


def conversation_messages(session: Session, conversation_id: str) -> list[MessageRow]:
    """The conversation's committed messages ordered by ``idx`` (the history to resume from)."""
    stmt = select(MessageRow).where(MessageRow.conversation_id == conversation_id).order_by(col(MessageRow.idx))
    return list(session.exec(stmt))


def next_message_idx(session: Session, conversation_id: str) -> int:
    """The ``idx`` the next message of the conversation gets (0 when it has none)."""
    stmt = select(func.max(MessageRow.idx)).where(MessageRow.conversation_id == conversation_id)
    last = session.exec(stmt).one()
    return 0 if last is None else int(last) + 1


def conversation_offers(session: Session, conversation_id: str) -> list[OfferRow]:
    """The conversation's offers in the order they were made."""
    stmt = (
        select(OfferRow)
        .where(OfferRow.conversation_id == conversation_id)
        .order_by(col(OfferRow.offer_message_idx), col(OfferRow.id))
    )
    return list(session.exec(stmt))


def conversation_stop_candidates(session: Session, conversation_id: str,
                                 detection: int | None = None) -> list[StopCandidateRow]:
    """The conversation's candidate stops (of one detection version, or all), in message order."""
    stmt = select(StopCandidateRow).where(StopCandidateRow.conversation_id == conversation_id)
    if detection is not None:
        stmt = stmt.where(StopCandidateRow.detection == detection)
    return list(session.exec(stmt.order_by(col(StopCandidateRow.detection), col(StopCandidateRow.message_idx),
                                           col(StopCandidateRow.id))))


def conversation_artifacts(session: Session, conversation_id: str) -> list[ArtifactRow]:
    """The conversation's artifacts in message order."""
    stmt = (
        select(ArtifactRow)
        .where(ArtifactRow.conversation_id == conversation_id)
        .order_by(col(ArtifactRow.message_idx), col(ArtifactRow.id))
    )
    return list(session.exec(stmt))


def cache_totals(session: Session, run_id: str) -> list[dict[str, object]]:
    """Per model of a run (the alias that replied: side b of a pair is its partner), over its
    model replies: replies, input tokens, cache reads, cache writes, the prompts' cost charged and
    uncached (None without prices), and the largest first-request prompt of a conversation (the
    shared prefix: system prompt and first user turn, as the vendor counted it)."""
    c, m = ConversationRow, MessageRow
    first = (
        select(m.conversation_id, func.min(m.idx).label("idx"))
        .join(c, c.id == m.conversation_id)
        .where(c.run_id == run_id, m.role == "assistant")
        .group_by(m.conversation_id)
        .subquery()
    )
    side_b = m.speaker == "b"
    stmt = (
        select(c.model_alias, c.partner_alias, c.litellm_model, c.partner_model, c.vendor, side_b,
               func.count(), func.coalesce(func.sum(m.tokens_in), 0), func.coalesce(func.sum(m.cached_tokens), 0),
               func.coalesce(func.sum(m.cache_write_tokens), 0), func.sum(m.input_cost),
               func.sum(m.input_cost_uncached),
               func.max(func.coalesce(m.tokens_in, 0)).filter(first.c.idx.is_not(None)))
        .join(c, c.id == m.conversation_id)
        .outerjoin(first, (first.c.conversation_id == m.conversation_id) & (first.c.idx == m.idx))
        .where(c.run_id == run_id, m.role == "assistant")
        .group_by(c.model_alias, c.partner_alias, c.litellm_model, c.partner_model, c.vendor, side_b)
    )
    out: dict[str, dict[str, object]] = {}
    for alias, p_alias, model, p_model, vendor, is_b, n, t_in, cached, written, cost, uncached, first_max in session.exec(stmt):
        name, model_name = (p_alias or alias, p_model or model) if is_b else (alias, model)
        row = out.setdefault(str(name), {"alias": name, "model": model_name, "vendor": vendor, "replies": 0,
                                         "tokens_in": 0, "cached_tokens": 0, "cache_write_tokens": 0,
                                         "input_cost": None, "input_cost_uncached": None, "first_prompt_max": 0})
        row["replies"] = int(row["replies"]) + int(n)  # type: ignore[call-overload]
        row["tokens_in"] = int(row["tokens_in"]) + int(t_in)  # type: ignore[call-overload]
        row["cached_tokens"] = int(row["cached_tokens"]) + int(cached)  # type: ignore[call-overload]
        row["cache_write_tokens"] = int(row["cache_write_tokens"]) + int(written)  # type: ignore[call-overload]
        if cost is not None:
            row["input_cost"] = float(row["input_cost"] or 0.0) + float(cost)  # type: ignore[arg-type]
            row["input_cost_uncached"] = float(row["input_cost_uncached"] or 0.0) + float(uncached or 0.0)  # type: ignore[arg-type]
        row["first_prompt_max"] = max(int(row["first_prompt_max"]), int(first_max or 0))  # type: ignore[call-overload]
    return list(out.values())
