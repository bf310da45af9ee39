"""Stores for analysis tests, built directly through the tables (no model calls)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from runner.store.db import make_engine, upgrade
from runner.store.tables import (
    ArtifactRow,
    CaptureRow,
    CodebookRow,
    CodeRow,
    ConversationRow,
    MessageRow,
    OfferRow,
    RunRow,
    TagRow,
)

_ids = itertools.count(1)


@dataclass
class Conv:
    """A conversation to build: model, condition, messages and what happened."""

    model: str
    condition: str = "default"
    replies: list[str] = field(default_factory=lambda: ["I would like to build something."])
    stop_turn: int | None = None
    """Model turn (1-based) that carried the stop phrase; None: ended otherwise."""
    offers: list[tuple[str, str]] = field(default_factory=list)
    """(label, classification) per offer, made before the last reply."""
    captures: dict[str, int] = field(default_factory=dict)
    """capture name → model turn (1-based)."""
    artifacts: list[tuple[str, str]] = field(default_factory=list)
    litellm_model: str | None = None
    status: str = "done"
    id: str = ""


def add_run(session: Session, convs: list[Conv], *, run_id: str | None = None, protocol: str = "fixture",
            simulated: bool = True) -> str:
    run_id = run_id or f"run{next(_ids):09d}"
    session.add(RunRow(id=run_id, protocol_name=protocol, protocol_version="1", protocol_path=f"{protocol}.yaml",
                       protocol_text=f"name: {protocol}", protocol_hash="ab" * 32, plan_json="{}", models_json="{}",
                       options_json="{}", latitude_version="test", litellm_version="test", status="done",
                       simulated=simulated))
    session.flush()
    for seq, c in enumerate(convs):
        c.id = c.id or f"c{next(_ids):011d}"
        turns = len(c.replies) if c.stop_turn is None else c.stop_turn
        stop_idx = 2 * c.stop_turn - 1 if c.stop_turn else None
        session.add(ConversationRow(
            id=c.id, run_id=run_id, seq=seq, model_alias=c.model, litellm_model=c.litellm_model or f"sim/{c.model}",
            vendor="sim", simulated=True, condition=c.condition, replicate=seq, status=c.status,
            stop_reason="stop_phrase" if c.stop_turn else "completed", stop_detail="Stopping now." if c.stop_turn else None,
            stop_message_idx=stop_idx, turns=turns))
        session.flush()
        for t, reply in enumerate(c.replies[:turns]):
            session.add(MessageRow(conversation_id=c.id, idx=2 * t, role="user", speaker="user", step=f"steps[{t}]",
                                   content=f"user turn {t + 1}"))
            session.add(MessageRow(conversation_id=c.id, idx=2 * t + 1, role="assistant", speaker="model",
                                   step=f"steps[{t}]", content=reply))
        for label, outcome in c.offers:
            last = 2 * turns - 1
            session.add(OfferRow(conversation_id=c.id, step="steps[1].offer", label=label, offer_message_idx=last - 1,
                                 reply_message_idx=last, classification=outcome, method="patterns", evidence="x"))
        for name, turn in c.captures.items():
            session.add(CaptureRow(conversation_id=c.id, name=name, message_idx=2 * turn - 1))
        for name, content in c.artifacts:
            session.add(ArtifactRow(conversation_id=c.id, message_idx=1, name=name, content=content))
    session.commit()
    return run_id


def add_codebook(session: Session, name: str, codes: list[str], version: int = 1) -> CodebookRow:
    row = CodebookRow(name=name, version=version, yaml="", note="test")
    session.add(row)
    session.flush()
    for i, code in enumerate(codes):
        session.add(CodeRow(codebook_id=row.id, name=code, definition=f"{code} definition", position=i))
    session.commit()
    return row


def tag(session: Session, conv: Conv | str, code: str, coder: str, *, present: bool = True,
        codebook: CodebookRow | None = None, source: str = "human", message_idx: int | None = None,
        deleted: bool = False) -> None:
    from runner.store.tables import utcnow

    cid = conv if isinstance(conv, str) else conv.id
    session.add(TagRow(conversation_id=cid, message_idx=message_idx, code=code,
                       codebook_id=codebook.id if codebook else None, coder=coder, present=present, source=source,
                       deleted_at=utcnow() if deleted else None))
    session.commit()


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'analysis.db'}"
    upgrade(url)
    return url


@pytest.fixture
def session(store_url: str) -> Any:
    engine = make_engine(store_url)
    with Session(engine, expire_on_commit=False) as s:
        yield s
    engine.dispose()
