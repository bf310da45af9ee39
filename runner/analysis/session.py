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
from runner.analysis import reviewed as reviewed_ops
from runner.analysis import tags as tag_ops
from runner.store.db import make_engine
from runner.store.tables import CodebookRow, SuggestionRow, TagRow, utcnow

__all__ = ["DEFAULT_CODEBOOK", "Coding", "RemovedCode", "ReviewDecision", "check_code_current"]

T = TypeVar("T")

DEFAULT_CODEBOOK = "codebook"
"""Name of the codebook made when the first code is created in an empty store."""


class RemovedCode(LookupError):
    """A tag was asked for with a code the codebook no longer has (another window removed, renamed or
    merged it): the tag is refused, and the message says what happened."""


def check_code_current(s: Session, code: str, codebook_id: int | None) -> None:
    """Raise `RemovedCode` when ``code`` is not in the newest version of the codebook ``codebook_id``
    belongs to. Checked in the same transaction as the write, so a second TUI never tags against
    an old codebook version."""
    if codebook_id is None:
        return
    book = s.get(CodebookRow, codebook_id)
    if book is None:
        return
    newest = cb.latest(s, book.name)
    if newest is None or newest.id is None:
        return
    names = {c.name for c in cb.codes(s, newest.id)}
    if code in names:
        return
    who = f" by {newest.created_by}" if newest.created_by else ""
    raise RemovedCode(f"“{code}” is no longer a code of {book.name}: version {newest.version}{who} "
                      f"({newest.note or 'changed'}) removed, renamed or merged it. Not tagged; the code bar now "
                      f"shows the current codes.")


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
        """Add or remove the tag; adding one with a code the codebook no longer has raises `RemovedCode`
        (removing an old tag is always allowed)."""

        def op(s: Session) -> TagRow | None:
            mine = s.exec(select(TagRow.id).where(
                TagRow.conversation_id == conversation_id, TagRow.code == code, TagRow.coder == self.coder,
                col(TagRow.deleted_at).is_(None), col(TagRow.span_start).is_(None),
                col(TagRow.message_idx).is_(None) if message_idx is None else TagRow.message_idx == message_idx,
            )).first()
            if mine is None:
                check_code_current(s, code, codebook_id)
            return tag_ops.toggle_tag(s, conversation_id, message_idx, code, self.coder, codebook_id,
                                      blind=self._blind_to(s, conversation_id))

        return op

    def span(self, conversation_id: str, message_idx: int, code: str, codebook_id: int | None,
             start: int, end: int, content: str) -> Callable[[Session], TagRow]:
        def op(s: Session) -> TagRow:
            check_code_current(s, code, codebook_id)
            return tag_ops.add_span_tag(s, conversation_id, message_idx, code, self.coder, codebook_id,
                                        start, end, content, blind=self._blind_to(s, conversation_id))

        return op

    def _blind_to(self, s: Session, conversation_id: str) -> bool:
        """Whether this coder is blind to the conversation's run now (decided in the tag's transaction)."""
        from runner.rigour import blind
        from runner.store.tables import ConversationRow

        conv = s.get(ConversationRow, conversation_id)
        return conv is not None and blind.is_blind(s, self.coder, conv.run_id)

    # ------------------------------------------------------------ blind coding

    def go_blind(self) -> Callable[[Session], bool]:
        """Make this coder blind to every run they have not unblinded (``latitude tui --blind``)."""

        def op(s: Session) -> bool:
            from runner.rigour import blind

            blind.set_default_blind(s, self.coder)
            s.commit()
            return True

        return op

    def blind_default(self) -> Callable[[Session], bool]:
        """Whether this coder has a standing blind setting."""

        def op(s: Session) -> bool:
            from runner.rigour import blind

            return blind.default_blind(s, self.coder)

        return op

    def blind_view(self, run_id: str) -> Callable[[Session], Any]:
        """The coder's `BlindView` of the run (written with its seed on first opening), or None if unblinded."""

        def op(s: Session) -> Any:
            from runner.rigour import blind

            view = blind.load_view(s, self.coder, run_id)
            s.commit()
            return view

        return op

    def store_names(self) -> Callable[[Session], Any]:
        """Every model name in the store (`runner.rigour.blind.store_names`)."""

        def op(s: Session) -> Any:
            from runner.rigour import blind

            return blind.store_names(s)

        return op

    def unblind(self, run_id: str) -> Callable[[Session], Any]:
        """Record that this coder unblinded the run (who, when, which run); later tags on it are not blind."""

        def op(s: Session) -> Any:
            from runner.rigour import blind

            row = blind.unblind(s, self.coder, run_id)
            s.commit()
            return row.unblinded_at

        return op

    def note(self, tag_id: int, note: str | None) -> Callable[[Session], TagRow]:
        return lambda s: tag_ops.set_note(s, tag_id, note, coder=self.coder)

    def toggle_reviewed(self, conversation_id: str, codebook_id: int | None) -> Callable[[Session], bool]:
        """Mark the conversation reviewed by this coder, or withdraw the mark; True when it is now reviewed."""

        def op(s: Session) -> bool:
            now = reviewed_ops.toggle(s, conversation_id, self.coder, codebook_id)
            s.commit()
            return now

        return op

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
               codebook: str | None, *, name: str | None = None,
               definition: str | None = None) -> Callable[[Session], ReviewDecision]:
        """Decide on a review item. Accepting a judge suggestion tags the unit as this coder
        (source ``suggestion``); accepting a theme adds its code to ``codebook``, under ``name``
        and with ``definition`` when given (the reviewer's edit of the machine's suggestion)."""

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
                    code, book, notice = self._accept_theme(s, row, payload, codebook, name, definition)
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
                     source="suggestion", blind=self._blind_to(s, row.conversation_id or ""))
        s.add(tag)
        s.flush()
        return tag.id, f"tagged {row.code}"

    def _accept_theme(self, s: Session, row: SuggestionRow, payload: dict[str, Any], codebook: str | None,
                      code_name: str | None = None, definition: str | None = None
                      ) -> tuple[str | None, str | None, str]:
        examples = [str(e.get("text", ""))[:300] for e in payload.get("examples", [])[:3] if e.get("text")]
        new_name = (code_name or "").strip() or row.code
        code = cb.Code(name=new_name, definition=row.definition or "" if definition is None else definition,
                       include=payload.get("include") or "", exclude=payload.get("exclude") or "", examples=examples)
        name = codebook or DEFAULT_CODEBOOK
        current = cb.latest(s, name)
        if current is not None and any(c.name == new_name for c in cb.codes(s, current.id or 0)):
            return None, None, f"{new_name} is already in {name}"
        self.create_code(name if current is not None else None, code)(s)
        renamed = f" (suggested as {row.code})" if new_name != row.code else ""
        return new_name, name, f"added {new_name} to {name}{renamed}"

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
