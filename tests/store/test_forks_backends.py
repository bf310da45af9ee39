"""Forks on both backends: the copied prefix (bulk-inserted) reads back identical to the parent's,
and the fork run finishes, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, select

from runner.store.db import make_engine
from runner.store.tables import ConversationRow, MessageRow, OfferRow

PROTOCOL = """\
name: forked
description: An offer, then two turns (fork tests on each backend).
steps:
  - offer: Would you like a break?
    label: pause
  - say: "And now?"
  - say: "Last one?"
"""


def test_fork_copies_read_back_identical(db_url: str, cli, tmp_path: Path) -> None:
    path = tmp_path / "forked.yaml"
    path.write_text(PROTOCOL)
    run = cli("run", path, "-m", "sim-maker", db=db_url)
    assert run.exit_code == 0, run
    engine = make_engine(db_url)
    try:
        with Session(engine) as s:
            (parent,) = s.exec(select(ConversationRow).where(ConversationRow.run_id == run.run_id)).all()
        fork = cli("fork", parent.id, "--at", "3", "-n", "3", "--db", db_url, db=None)
        assert fork.exit_code == 0, fork
        with Session(engine) as s:
            forks = s.exec(select(ConversationRow).where(ConversationRow.run_id == fork.run_id)
                           .order_by(ConversationRow.fork_seq)).all()
            assert [(c.parent_id, c.fork_at, c.fork_seq, c.status) for c in forks] == [
                (parent.id, 3, k, "done") for k in range(3)]

            def msgs(cid: str) -> list[MessageRow]:
                return list(s.exec(select(MessageRow).where(MessageRow.conversation_id == cid).order_by(MessageRow.idx)))

            def same(m: MessageRow) -> tuple:
                return (m.idx, m.role, m.speaker, m.step, m.content, m.request_json, m.tokens_in, m.cost, m.started_at,
                        m.created_at)

            mine = msgs(parent.id)
            offers = s.exec(select(OfferRow).where(OfferRow.conversation_id == parent.id)).all()
            for c in forks:
                theirs = msgs(c.id)
                assert [same(m) for m in theirs[:3]] == [same(m) for m in mine[:3]]
                assert len(theirs) == len(mine) and theirs[3].id not in {m.id for m in mine}
                copied = s.exec(select(OfferRow).where(OfferRow.conversation_id == c.id)).all()
                assert [(o.label, o.classification, o.reply_message_idx) for o in copied] == [
                    (o.label, o.classification, o.reply_message_idx) for o in offers]
    finally:
        engine.dispose()
