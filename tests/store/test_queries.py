"""Reads: runs list aggregates, a run's conversations, a conversation's transcript, resume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from runner.store import (
    UNFINISHED_STATUSES,
    StoreWriter,
    conversation_artifacts,
    conversation_messages,
    conversation_offers,
    get_conversation,
    get_run,
    latest_run,
    list_runs,
    next_message_idx,
    run_conversations,
    run_summary,
    session,
    unfinished_conversations,
)

from .builders import artifact_row, conversation_row, message_row, offer_row, run_row

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# (status, tokens_in, tokens_out, cached, cost, turns) per conversation of the busy run, seq order.
BUSY = [
    ("done", 100, 50, 10, 0.25, 3),
    ("pending", 0, 0, 0, 0.0, 0),
    ("done", 200, 70, 0, 0.5, 4),
    ("error", 30, 0, 0, 0.01, 1),
    ("running", 40, 20, 5, 0.1, 2),
    ("cancelled", 10, 5, 0, 0.02, 1),
    ("done", 1, 2, 3, 0.125, 1),
    ("pending", 0, 0, 0, 0.0, 0),
]


@pytest.fixture
def store(migrated_url: str) -> dict[str, object]:
    """Two runs: 'busy' (8 conversations in mixed states, a transcript) and an empty newer one."""
    with StoreWriter(migrated_url) as w:
        busy = run_row(id="busy", started_at=T0, status="interrupted")
        empty = run_row(id="empty", started_at=T0 + timedelta(hours=1), protocol_name="other")
        w.add_sync(busy)
        w.add_sync(empty)
        convs = []
        # Insert out of seq order: reads must sort.
        for seq in [3, 0, 7, 1, 6, 2, 5, 4]:
            status, t_in, t_out, cached, cost, turns = BUSY[seq]
            conv = conversation_row(
                "busy", seq=seq, id=f"c{seq}", status=status, tokens_in=t_in, tokens_out=t_out,
                cached_tokens=cached, cost=cost, turns=turns,
            )
            w.add_sync(conv)
            convs.append(conv)
        for idx in [2, 0, 3, 1]:
            w.add_sync(message_row("c0", idx))
        w.add_sync(offer_row("c0", 2, label="second"))
        w.add_sync(offer_row("c0", 0, label="first", classification="accept"))
        w.add_sync(artifact_row("c0", 3, name="late"))
        w.add_sync(artifact_row("c0", 1, name="early"))
    return {"url": migrated_url}


def test_list_runs_counts_and_totals(store: dict[str, object], engine: Engine) -> None:
    with session(engine) as s:
        runs = list_runs(s)
    assert [r.id for r in runs] == ["empty", "busy"]  # newest first
    empty, busy = runs
    assert busy.conversations == 8
    assert busy.by_status == {"pending": 2, "running": 1, "done": 3, "error": 1, "cancelled": 1}
    assert busy.unfinished == 4
    assert busy.tokens_in == sum(b[1] for b in BUSY)
    assert busy.tokens_out == sum(b[2] for b in BUSY)
    assert busy.cached_tokens == sum(b[3] for b in BUSY)
    assert busy.turns == sum(b[5] for b in BUSY)
    assert busy.cost == pytest.approx(sum(b[4] for b in BUSY))
    assert busy.status == "interrupted" and busy.started_at == T0
    assert busy.started_at.tzinfo is not None
    assert empty.conversations == 0 and empty.cost == 0.0 and empty.tokens_in == 0
    assert empty.by_status == dict.fromkeys(["pending", "running", "done", "error", "cancelled"], 0)
    with session(engine) as s:
        assert [r.id for r in list_runs(s, limit=1)] == ["empty"]
        assert run_summary(s, "busy") == busy
        assert run_summary(s, "nope") is None


def test_run_and_conversation_lookups(store: dict[str, object], engine: Engine) -> None:
    with session(engine) as s:
        assert get_run(s, "busy").protocol_name == "exit_interview"  # type: ignore[union-attr]
        assert get_run(s, "nope") is None
        assert latest_run(s).id == "empty"  # type: ignore[union-attr]
        assert [c.seq for c in run_conversations(s, "busy")] == list(range(8))
        assert [c.id for c in run_conversations(s, "busy", statuses=["done"])] == ["c0", "c2", "c6"]
        assert run_conversations(s, "empty") == []
        conv = get_conversation(s, "c4")
    # Rows stay usable once the session is closed.
    assert conv is not None and (conv.status, conv.tokens_out) == ("running", 20)


def test_unfinished_conversations_for_resume(store: dict[str, object], engine: Engine) -> None:
    assert set(UNFINISHED_STATUSES) == {"pending", "running", "cancelled"}
    with session(engine) as s:
        assert [c.id for c in unfinished_conversations(s, "busy")] == ["c1", "c4", "c5", "c7"]
        with_errors = unfinished_conversations(s, "busy", include_errors=True)
        assert [c.id for c in with_errors] == ["c1", "c3", "c4", "c5", "c7"]
        assert unfinished_conversations(s, "empty") == []


def test_transcript_reads(store: dict[str, object], engine: Engine) -> None:
    with session(engine) as s:
        messages = conversation_messages(s, "c0")
        offers = conversation_offers(s, "c0")
        artifacts = conversation_artifacts(s, "c0")
        assert next_message_idx(s, "c0") == 4
        assert next_message_idx(s, "c1") == 0
        assert conversation_messages(s, "c1") == []
    assert [m.idx for m in messages] == [0, 1, 2, 3]
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert [o.label for o in offers] == ["first", "second"]
    assert offers[0].classification == "accept"
    assert [a.name for a in artifacts] == ["early", "late"]
    assert all(m.created_at.tzinfo is not None for m in messages)
