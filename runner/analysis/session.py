"""A coding session's writes (the TUI's): tags, codebook changes and review decisions, in
short transactions. Lives below the TUI so the TUI never touches sqlmodel itself.

Every write goes through the functions of `runner.analysis.codebook` and
`runner.analysis.tags` (the same the CLI uses), on a writer engine (SQLite: ``BEGIN
IMMEDIATE`` under the busy timeout, so a run writing at the same time makes a tag wait a
few milliseconds, never fail with "database is locked").

Writes run one at a time and in the order they were asked for (`Coding.submit`, on a
single thread), so fast keying — ``1`` ``1`` ``j`` ``2`` — is applied exactly in order;
the UI waits for the result in a thread worker and never blocks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from runner.analysis import codebook as cb
from runner.analysis import tags as tag_ops
from runner.store.db import make_engine
from runner.store.tables import CodebookRow, SuggestionRow, TagRow, utcnow

__all__ = ["DEFAULT_CODEBOOK", "Coding", "ReviewDecision"]

T = TypeVar("T")

DEFAULT_CODEBOOK = "codebook"
"""Name of the codebook made when the first code is created in an empty store."""


@dataclass(frozen=True, slots=True)
class ReviewDecision:
    """A decision on a review-queue item, kept so it can be undone."""

    suggestion_id: int
    status: str
    previous_status: str
    tag_id: int | None = None
    """The tag accepting a judge suggestion made."""
    code: str | None = None
    """The code accepting a theme made."""
    codebook: str | None = None
    notice: str = ""


class Coding:
    """The TUI's writer: one engine, one thread, one coder."""

    def __init__(self, url: str, coder: str) -> None:
        self.engine: Engine = make_engine(url, write=True)
        self.coder = coder
        """Recorded on every tag and decision made in this session."""
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tui-coding")
        self.review_history: list[ReviewDecision] = []

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.engine.dispose()

    def submit(self, fn: Callable[[Session], T]) -> Future[T]:
        """Queue ``fn(session)``; writes run in submission order. Call from the UI thread."""

        def run() -> T:
            with Session(self.engine, expire_on_commit=False) as s:
                return fn(s)

        return self._pool.submit(run)

    # ------------------------------------------------------------- tags

    def toggle(self, conversation_id: str, message_idx: int | None, code: str,
               codebook_id: int | None) -> Callable[[Session], TagRow | None]:
        return lambda s: tag_ops.toggle_tag(s, conversation_id, message_idx, code, self.coder, codebook_id)

    def span(self, conversation_id: str, message_idx: int, code: str, codebook_id: int | None,
             start: int, end: int, content: str) -> Callable[[Session], TagRow]:
        return lambda s: tag_ops.add_span_tag(s, conversation_id, message_idx, code, self.coder, codebook_id,
                                              start, end, content)

    def note(self, tag_id: int, note: str | None) -> Callable[[Session], TagRow]:
        return lambda s: tag_ops.set_note(s, tag_id, note, coder=self.coder)

    def undo(self) -> Callable[[Session], Any]:
        return lambda s: tag_ops.undo(s, self.coder)

    # --------------------------------------------------------- codebook

    def create_code(self, codebook: str | None, code: cb.Code) -> Callable[[Session], CodebookRow]:
        """Add a code to ``codebook`` (a new version), or start a codebook with it."""

        def op(s: Session) -> CodebookRow:
            if codebook is None or cb.latest(s, codebook) is None:
                return cb.import_codebook(s, cb.Codebook(name=codebook or DEFAULT_CODEBOOK, codes=[code]),
                                          coder=self.coder)
            return cb.add_code(s, codebook, code, coder=self.coder)

        return op

    def edit_code(self, codebook: str, name: str, **fields: Any) -> Callable[[Session], CodebookRow]:
        return lambda s: cb.edit_code(s, codebook, name, coder=self.coder, **fields)

    def rename_code(self, codebook: str, old: str, new: str) -> Callable[[Session], CodebookRow]:
        return lambda s: cb.rename_code(s, codebook, old, new, coder=self.coder)

    def merge_codes(self, codebook: str, source: str, target: str) -> Callable[[Session], CodebookRow]:
        return lambda s: cb.merge_codes(s, codebook, source, target, coder=self.coder)

    def delete_code(self, codebook: str, name: str) -> Callable[[Session], CodebookRow]:
        return lambda s: cb.delete_code(s, codebook, name, coder=self.coder)

    def import_codebook(self, source: str | Path) -> Callable[[Session], CodebookRow]:
        """Import YAML text, or a file (errors then name the file and line)."""
        return lambda s: cb.import_codebook(s, source, coder=self.coder)

    def export_codebook(self, codebook_id: int) -> Callable[[Session], str]:
        return lambda s: cb.export_codebook(s, codebook_id)

    # ----------------------------------------------------------- review

    def decide(self, suggestion_id: int, status: Literal["accepted", "rejected", "skipped"],
               codebook: str | None) -> Callable[[Session], ReviewDecision]:
        """Decide on a review item. Accepting a judge suggestion tags the unit as this coder
        (source ``suggestion``); accepting a theme adds its code to ``codebook``."""

        def op(s: Session) -> ReviewDecision:
            row = s.get(SuggestionRow, suggestion_id)
            if row is None:
                raise LookupError(f"no suggestion {suggestion_id}")
            previous = row.status
            tag_id: int | None = None
            code: str | None = None
            book: str | None = None
            notice = ""
            if status == "accepted":
                payload = json.loads(row.payload_json or "{}")
                if row.kind == "judge" and row.conversation_id:
                    tag_id, notice = self._accept_judge(s, row, payload, codebook)
                elif row.kind == "theme":
                    code, book, notice = self._accept_theme(s, row, payload, codebook)
            row = s.get(SuggestionRow, suggestion_id)
            assert row is not None
            row.status = status
            row.decided_by = self.coder
            row.decided_at = utcnow()
            s.add(row)
            s.commit()
            decision = ReviewDecision(suggestion_id, status, previous, tag_id, code, book, notice)
            self.review_history.append(decision)
            return decision

        return op

    def _accept_judge(self, s: Session, row: SuggestionRow, payload: dict[str, Any],
                      codebook: str | None) -> tuple[int | None, str]:
        mine = s.exec(select(TagRow).where(
            TagRow.conversation_id == row.conversation_id, TagRow.code == row.code, TagRow.coder == self.coder,
            col(TagRow.deleted_at).is_(None), col(TagRow.span_start).is_(None),
            col(TagRow.message_idx).is_(None) if row.message_idx is None else TagRow.message_idx == row.message_idx,
        )).first()
        if mine is not None:
            return None, f"you had already tagged {row.code} here"
        quotes = payload.get("quotes") or []
        book_id = payload.get("codebook_id")
        if book_id is None and codebook is not None:
            latest = cb.latest(s, codebook)
            book_id = latest.id if latest else None
        tag = TagRow(conversation_id=row.conversation_id or "", message_idx=row.message_idx, code=row.code,
                     codebook_id=book_id, coder=self.coder, present=True,
                     quote=quotes[0].get("text") if quotes else None, evidence=payload.get("evidence"),
                     source="suggestion")
        s.add(tag)
        s.flush()
        return tag.id, f"tagged {row.code}"

    def _accept_theme(self, s: Session, row: SuggestionRow, payload: dict[str, Any],
                      codebook: str | None) -> tuple[str | None, str | None, str]:
        examples = [str(e.get("text", ""))[:300] for e in payload.get("examples", [])[:3] if e.get("text")]
        code = cb.Code(name=row.code, definition=row.definition or "", include=payload.get("include") or "",
                       exclude=payload.get("exclude") or "", examples=examples)
        name = codebook or DEFAULT_CODEBOOK
        current = cb.latest(s, name)
        if current is not None and any(c.name == row.code for c in cb.codes(s, current.id or 0)):
            return None, None, f"{row.code} is already in {name}"
        self.create_code(name if current is not None else None, code)(s)
        return row.code, name, f"added {row.code} to {name}"

    def undo_review(self) -> Callable[[Session], ReviewDecision | None]:
        """Put the last decided item back in the queue and revert its effect."""

        def op(s: Session) -> ReviewDecision | None:
            if not self.review_history:
                return None
            d = self.review_history.pop()
            if d.tag_id is not None:
                tag = s.get(TagRow, d.tag_id)
                if tag is not None and tag.deleted_at is None:
                    tag.deleted_at = utcnow()
                    s.add(tag)
            if d.code is not None and d.codebook is not None:
                cb.delete_code(s, d.codebook, d.code, coder=self.coder)
            row = s.get(SuggestionRow, d.suggestion_id)
            if row is not None:
                row.status = d.previous_status  # type: ignore[assignment]
                row.decided_by = None
                row.decided_at = None
                s.add(row)
            s.commit()
            return d

        return op
