"""Reviewed marks: a coder says "I read this conversation" (with no tag, every code is absent).

A person's units are the conversations they tagged or marked reviewed. A conversation
nobody marked or tagged is *uncoded*, never counted as absent.

These operations do not commit: the caller's session commits, so a mark and its undo entry
land together. Withdrawing a mark (unmark, undo) sets ``deleted_at``; marks are never
hard-deleted. Undo works like the tags': per (database, coder), newest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session, col, select

from ..store.tables import ReviewedRow, utcnow

__all__ = ["ReviewedAction", "ReviewedDecision", "clear_history", "is_reviewed", "mark", "reviewed_by",
           "toggle", "undo", "unmark"]

ReviewedAction = Literal["mark", "unmark"]
"""What a coder did to a reviewed mark, for undo."""


@dataclass(frozen=True, slots=True)
class ReviewedDecision:
    """One undoable reviewed-mark decision."""

    action: ReviewedAction
    """Marked or unmarked."""
    mark_id: int
    """The `ReviewedRow` concerned."""
    conversation_id: str
    """The conversation."""


_history: dict[tuple[str, str], list[ReviewedDecision]] = {}
"""Per (database url, coder): this session's reviewed decisions, newest last."""


def _key(session: Session, coder: str) -> tuple[str, str]:
    return (str(getattr(session.get_bind(), "url", "")), coder)


def _live(session: Session, conversation_id: str, coder: str) -> ReviewedRow | None:
    return session.exec(select(ReviewedRow).where(ReviewedRow.conversation_id == conversation_id)
                        .where(ReviewedRow.coder == coder).where(col(ReviewedRow.deleted_at).is_(None))
                        .order_by(col(ReviewedRow.id))).first()


def is_reviewed(session: Session, conversation_id: str, coder: str) -> bool:
    """Whether `coder` has a standing reviewed mark on the conversation."""
    return _live(session, conversation_id, coder) is not None


def mark(session: Session, conversation_id: str, coder: str, codebook_id: int | None = None) -> ReviewedRow:
    """Mark the conversation reviewed by `coder` (a no-op returning the mark when it stands). Flushes, never commits."""
    existing = _live(session, conversation_id, coder)
    if existing is not None:
        return existing
    row = ReviewedRow(conversation_id=conversation_id, coder=coder, codebook_id=codebook_id)
    session.add(row)
    session.flush()
    _history.setdefault(_key(session, coder), []).append(ReviewedDecision("mark", row.id or 0, conversation_id))
    return row


def unmark(session: Session, conversation_id: str, coder: str) -> ReviewedRow | None:
    """Withdraw the coder's mark; None when there was none. Flushes, never commits."""
    existing = _live(session, conversation_id, coder)
    if existing is None:
        return None
    existing.deleted_at = utcnow()
    session.add(existing)
    session.flush()
    _history.setdefault(_key(session, coder), []).append(ReviewedDecision("unmark", existing.id or 0,
                                                                            conversation_id))
    return existing


def toggle(session: Session, conversation_id: str, coder: str, codebook_id: int | None = None) -> bool:
    """Mark, or withdraw a standing mark; returns whether the conversation is now reviewed."""
    if unmark(session, conversation_id, coder) is not None:
        return False
    mark(session, conversation_id, coder, codebook_id)
    return True


def undo(session: Session, coder: str) -> ReviewedDecision | None:
    """Revert the coder's last reviewed decision in this session; None when there is none. Never commits."""
    stack = _history.get(_key(session, coder))
    if not stack:
        return None
    decision = stack.pop()
    row = session.get(ReviewedRow, decision.mark_id)
    if row is not None:
        row.deleted_at = utcnow() if decision.action == "mark" else None
        session.add(row)
        session.flush()
    return decision


def reviewed_by(session: Session, conversation_ids: Sequence[str]) -> dict[str, set[str]]:
    """coder → the conversations (of these) they have a standing reviewed mark on."""
    out: dict[str, set[str]] = {}
    ids = list(conversation_ids)
    for i in range(0, len(ids), 500):
        for cid, coder in session.exec(select(ReviewedRow.conversation_id, ReviewedRow.coder)
                                       .where(col(ReviewedRow.conversation_id).in_(ids[i:i + 500]))
                                       .where(col(ReviewedRow.deleted_at).is_(None))):
            out.setdefault(coder, set()).add(cid)
    return out


def clear_history() -> None:
    """Forget the undo history (tests, or a new session)."""
    _history.clear()
