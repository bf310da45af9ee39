"""Tags: codes applied by a coder to a conversation, a message or a quoted span.

Tags are never hard-deleted: untoggling, undo and code deletion set `deleted_at`, so the
record of every decision stays. Each function commits its own short transaction, so a
run writing at the same time never waits long (SQLite WAL + busy timeout).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session, col, select

from ..store.tables import TagRow, TagSource, utcnow

TagAction = Literal["add", "remove", "note"]
"""What a coder did, for undo."""


class TagError(ValueError):
    """A tag operation that cannot be done (no such tag, a span outside the message...)."""


@dataclass(frozen=True)
class Decision:
    """One undoable decision of a coder."""

    action: TagAction
    tag_id: int
    previous_note: str | None = None


_history: dict[tuple[str, str], list[Decision]] = {}
"""Per (database url, coder): the decisions of this session, newest last."""


def _key(session: Session, coder: str) -> tuple[str, str]:
    bind = session.get_bind()
    return (str(getattr(bind, "url", "")), coder)


def _remember(session: Session, coder: str, decision: Decision) -> None:
    _history.setdefault(_key(session, coder), []).append(decision)


def live(session: Session, conversation_id: str, *, coder: str | None = None) -> list[TagRow]:
    """The live (not deleted) tags of a conversation, oldest first."""
    query = select(TagRow).where(TagRow.conversation_id == conversation_id).where(col(TagRow.deleted_at).is_(None))
    if coder is not None:
        query = query.where(TagRow.coder == coder)
    return list(session.exec(query.order_by(TagRow.id)).all())


tags_for = live


def toggle_tag(session: Session, conversation_id: str, message_idx: int | None, code: str, coder: str,
               codebook_id: int | None, *, source: TagSource = "human", blind: bool = False) -> TagRow | None:
    """Add the tag, or remove it if this coder already has it on this unit (whole message or conversation).

    Returns the new tag, or None when a tag was removed.
    """
    existing = session.exec(
        select(TagRow).where(TagRow.conversation_id == conversation_id).where(TagRow.code == code)
        .where(TagRow.coder == coder).where(col(TagRow.deleted_at).is_(None))
        .where(col(TagRow.span_start).is_(None))
        .where(col(TagRow.message_idx).is_(None) if message_idx is None else TagRow.message_idx == message_idx)
    ).first()
    if existing is not None:
        existing.deleted_at = utcnow()
        session.add(existing)
        session.commit()
        _remember(session, coder, Decision("remove", existing.id or 0))
        return None
    tag = TagRow(conversation_id=conversation_id, message_idx=message_idx, code=code, coder=coder,
                 codebook_id=codebook_id, source=source, blind=blind)
    session.add(tag)
    session.commit()
    session.refresh(tag)
    _remember(session, coder, Decision("add", tag.id or 0))
    return tag


def add_span_tag(session: Session, conversation_id: str, message_idx: int, code: str, coder: str,
                 codebook_id: int | None, span_start: int, span_end: int, content: str,
                 note: str | None = None, *, blind: bool = False) -> TagRow:
    """Tag a span of a message; the quote is taken from `content` (the message text) and stored."""
    if not (0 <= span_start < span_end <= len(content)):
        raise TagError(f"span {span_start}:{span_end} is outside the message ({len(content)} characters)")
    tag = TagRow(conversation_id=conversation_id, message_idx=message_idx, code=code, coder=coder,
                 codebook_id=codebook_id, span_start=span_start, span_end=span_end,
                 quote=content[span_start:span_end], note=note, source="human", blind=blind)
    session.add(tag)
    session.commit()
    session.refresh(tag)
    _remember(session, coder, Decision("add", tag.id or 0))
    return tag


def set_note(session: Session, tag_id: int, note: str | None, *, coder: str) -> TagRow:
    tag = session.get(TagRow, tag_id)
    if tag is None or tag.deleted_at is not None:
        raise TagError(f"no live tag {tag_id}")
    previous = tag.note
    tag.note = note or None
    session.add(tag)
    session.commit()
    session.refresh(tag)
    _remember(session, coder, Decision("note", tag_id, previous))
    return tag


def undo(session: Session, coder: str) -> Decision | None:
    """Revert this coder's last decision in this session; None when there is nothing to undo."""
    stack = _history.get(_key(session, coder))
    if not stack:
        return None
    decision = stack.pop()
    tag = session.get(TagRow, decision.tag_id)
    if tag is None:
        return decision
    if decision.action == "add":
        tag.deleted_at = utcnow()
    elif decision.action == "remove":
        tag.deleted_at = None
    else:
        tag.note = decision.previous_note
    session.add(tag)
    session.commit()
    return decision


def clear_history() -> None:
    """Forget the undo history (tests, or a new session)."""
    _history.clear()


__all__ = ["Decision", "TagAction", "TagError", "add_span_tag", "clear_history", "live", "set_note", "tags_for",
           "toggle_tag", "undo"]
