"""`StoreReader`: the read-only queries of the terminal UI.

Every method blocks (it runs SQL) and opens its own short session, so the TUI calls
them from thread workers; the reader itself is safe to share between threads.
On SQLite (WAL) reads never wait for a writing run and always see its last commit.

Conversation lists are paged by key (``(seq, id)`` of the last row shown), so the
100th page of a 100,000-conversation run costs what the first one does; counts,
offer outcomes and tags are fetched for the rows of a page only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from sqlalchemy import and_, func, or_, select, tuple_, union
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from runner.store import queries, search
from runner.store.db import make_engine
from runner.store.records import RunSummary
from runner.store.tables import (
    ArtifactRow,
    CaptureRow,
    CodebookRow,
    CodeRow,
    ConversationRow,
    MessageRow,
    OfferRow,
    ReviewedRow,
    RunRow,
    StopCandidateRow,
    SuggestionRow,
    TagRow,
)

__all__ = [
    "ForkFamily",
    "ForkSummary",
    "ConversationFilter",
    "ConversationPage",
    "ConversationRecord",
    "ConversationSummary",
    "Facets",
    "FilterField",
    "PageKey",
    "StoreReader",
    "SuggestionRecord",
]

PageKey = tuple[int, str]
"""Where a page ends: ``(seq, id)`` of its last conversation."""

FilterField = Literal[
    "model", "vendor", "condition", "replicate", "stop_reason", "status", "offer_outcome", "tag", "kind"
]
"""A column of the conversations list that can be filtered on."""


@dataclass(frozen=True, slots=True)
class ConversationFilter:
    """The filters of a conversations list; None means "any". Fields combine with AND."""

    model: str | None = None
    """Model alias (either side of a pair)."""
    vendor: str | None = None
    condition: str | None = None
    replicate: int | None = None
    stop_reason: str | None = None
    """Exact stop reason (``error`` matches every ``error:<kind>``)."""
    status: str | None = None
    offer_outcome: str | None = None
    """Conversations with at least one offer classified this way."""
    tag: str | None = None
    """Conversations with a live, present tag of this code (any coder)."""
    kind: str | None = None
    search: str | None = None
    """Full-text query (see `runner.store.search.parse`): about the whole conversation, not one message."""

    def active(self) -> dict[str, Any]:
        """The fields that are set, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) not in (None, "")}

    def without(self, name: str) -> ConversationFilter:
        return replace(self, **{name: None})

    def with_(self, **values: Any) -> ConversationFilter:
        return replace(self, **values)


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """One line of the conversations list."""

    id: str
    seq: int
    model: str
    """Model alias; ``a ↔ b`` for a pair."""
    vendor: str
    condition: str
    replicate: int
    kind: str
    status: str
    turns: int
    stop_reason: str | None
    cost: float
    simulated: bool
    offers: dict[str, int] = field(default_factory=dict)
    """Offer outcomes of the conversation: ``{"accept": 1, "decline": 0…}`` (only those present)."""
    tags: tuple[str, ...] = ()
    """Codes tagged on the conversation or its messages (live, present, any coder), sorted."""
    snippet: str | None = None
    """When the list is searched: an excerpt of the first message holding a searched term
    (plain text, ``…`` where cut; highlight with `SearchQuery.highlighter`)."""
    echo: float | None = None
    """Mean echo of the model replies (`MessageRow.echo`, over the replies where it is stored and defined);
    None when none is (short replies, or a run stored before the measure: `latitude echo RUN`)."""

    @property
    def key(self) -> PageKey:
        return (self.seq, self.id)


@dataclass(frozen=True, slots=True)
class ConversationPage:
    """A page of a conversations list."""

    rows: list[ConversationSummary]
    next_key: PageKey | None
    """Pass as ``after`` for the next page; None when this was the last."""


@dataclass(frozen=True, slots=True)
class Facets:
    """The values present in a run's conversations, for the filter pickers."""

    model: list[str]
    vendor: list[str]
    condition: list[str]
    replicate: list[int]
    stop_reason: list[str]
    status: list[str]
    offer_outcome: list[str]
    tag: list[str]
    kind: list[str]


@dataclass(frozen=True, slots=True)
class ForkFamily:
    """Where a conversation stands among forks (the transcript header: "fork 2 of 5 of abc at #3",
    "5 forks at #3")."""

    parent_id: str | None = None
    """The conversation this one continues (None: not a fork)."""
    fork_at: int | None = None
    """This fork's point: the parent's message ``#N`` it samples again."""
    position: int | None = None
    """0-based place among the forks of the same parent and point (by `fork_seq`, then id: as `forks_at`)."""
    siblings: int = 0
    """Forks of the same parent and point, this one included (0: not a fork)."""
    children: dict[int, int] = field(default_factory=dict)
    """Fork point ``#N`` → forks made of this conversation from there."""


@dataclass(frozen=True, slots=True)
class ForkSummary:
    """One continuation in a list of the forks of one point."""

    conversation: ConversationRow
    seed: int | None
    """The seed its requests were sent with."""
    reply: str
    """Its reply at the fork point (the first message it did not share), literally as stored."""


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    """Everything the transcript screen shows about one conversation."""

    conversation: ConversationRow
    run: RunRow
    messages: list[MessageRow]
    offers: list[OfferRow]
    artifacts: list[ArtifactRow]
    captures: list[CaptureRow]
    tags: list[TagRow]
    """Live tags (not deleted) of every coder, oldest first."""
    stops: list[StopCandidateRow] = field(default_factory=list)
    """Stop candidates of the conversation's latest detection (the run's own, or the newest re-detection),
    in message order: used, rejected (quoted, negated, ...) and ambiguous alike."""
    forks: ForkFamily = field(default_factory=ForkFamily)
    """Its parent and siblings if it is a fork, and the forks made of it."""

    def tags_of(self, coder: str) -> list[TagRow]:
        return [t for t in self.tags if t.coder == coder]


@dataclass(frozen=True, slots=True)
class SuggestionRecord:
    """A review-queue item with what a reviewer needs to decide on it."""

    suggestion: SuggestionRow
    message: MessageRow | None
    """The message concerned (judge suggestions on a message)."""
    conversation: ConversationRow | None
    disagreement: int
    """How many coders disagree on this unit and code (0 = none): items with disagreement come first."""
    coders_for: tuple[str, ...] = ()
    """Coders who applied the code to the unit."""
    coders_against: tuple[str, ...] = ()
    """Coders who coded the conversation without applying the code (or recorded it absent)."""
    label: str | None = None
    """How the card names the conversation when it is not its id (a blind coder's ``#0042``)."""


class StoreReader:
    """Read-only access to the store for the TUI (all methods block: call them from workers)."""

    def __init__(self, url_or_engine: str | Engine) -> None:
        self._own = not isinstance(url_or_engine, Engine)
        self.engine: Engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        """The engine reads go through (never used for writes)."""
        self.dialect: str = self.engine.dialect.name

    def close(self) -> None:
        if self._own:
            self.engine.dispose()

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # ------------------------------------------------------------------ changes

    def fingerprint(self) -> tuple[Any, ...]:
        """A few cheap aggregates (index-only max/count) that change whenever a run starts or ends, a turn
        is written, a tag is added, removed or annotated, or a codebook changes, from this process or any
        other: poll it to know when to read again."""
        with self.session() as s:
            runs = s.execute(select(func.count(), func.max(RunRow.started_at), func.max(RunRow.ended_at))).one()
            msgs = s.execute(select(func.max(MessageRow.id))).scalar_one()
            tags = s.execute(select(func.max(TagRow.id), func.max(TagRow.deleted_at), func.count(TagRow.note))).one()
            books = s.execute(select(func.max(CodebookRow.id))).scalar_one()
        return (tuple(runs), msgs, tuple(tags), books)

    # ------------------------------------------------------------------ runs

    def runs(self) -> list[RunSummary]:
        """Every run, newest first, with live counts by status, tokens and cost."""
        with self.session() as s:
            return queries.list_runs(s)

    def run(self, run_id: str) -> RunSummary | None:
        with self.session() as s:
            return queries.run_summary(s, run_id)

    # --------------------------------------------------------- conversations

    def _where(self, run_id: str, flt: ConversationFilter) -> list[Any]:
        c = ConversationRow
        clauses: list[Any] = [c.run_id == run_id]
        if flt.model:
            clauses.append(or_(c.model_alias == flt.model, c.partner_alias == flt.model))
        if flt.vendor:
            clauses.append(c.vendor == flt.vendor)
        if flt.condition:
            clauses.append(c.condition == flt.condition)
        if flt.replicate is not None:
            clauses.append(c.replicate == flt.replicate)
        if flt.status:
            clauses.append(c.status == flt.status)
        if flt.kind:
            clauses.append(c.kind == flt.kind)
        if flt.stop_reason:
            if flt.stop_reason == "error":
                clauses.append(col(c.stop_reason).like("error%"))
            elif flt.stop_reason == "(none)":
                clauses.append(col(c.stop_reason).is_(None))
            else:
                clauses.append(c.stop_reason == flt.stop_reason)
        if flt.offer_outcome:
            offers = select(OfferRow.conversation_id).where(OfferRow.classification == flt.offer_outcome)
            clauses.append(col(c.id).in_(offers))
        if flt.tag:
            tagged = select(TagRow.conversation_id).where(
                TagRow.code == flt.tag, col(TagRow.deleted_at).is_(None), col(TagRow.present).is_(True)
            )
            clauses.append(col(c.id).in_(tagged))
        query = search.parse(flt.search)  # raises SearchError for a query of exclusions only
        if query is not None:
            clauses.append(search.conversation_clause(self.dialect, query, col(c.id)))
        return clauses

    def count(self, run_id: str, flt: ConversationFilter = ConversationFilter()) -> int:
        """How many conversations of the run pass the filter."""
        with self.session() as s:
            stmt = select(func.count()).select_from(ConversationRow).where(*self._where(run_id, flt))
            return int(s.execute(stmt).scalar_one())

    def ids(self, run_id: str, flt: ConversationFilter = ConversationFilter(), *,
            uncoded_by: str | None = None) -> list[str]:
        """The ids of the run's conversations passing the filter (optionally those ``uncoded_by`` has not
        tagged), in plan order: a blind coder's screens put them in their own order."""
        c = ConversationRow
        stmt = select(c.id).where(*self._where(run_id, flt))
        if uncoded_by is not None:
            stmt = stmt.where(col(c.id).not_in(self._coded_by(uncoded_by)))
        with self.session() as s:
            return [str(i) for (i,) in s.execute(stmt.order_by(col(c.seq), col(c.id)))]

    def page(
        self,
        run_id: str,
        flt: ConversationFilter = ConversationFilter(),
        *,
        after: PageKey | None = None,
        limit: int = 100,
    ) -> ConversationPage:
        """The conversations after ``after`` (plan order), at most ``limit`` of them."""
        c = ConversationRow
        # Two steps: order and cut on (seq, id) alone (a narrow sort), then read the page's rows.
        stmt = select(c.id).where(*self._where(run_id, flt))
        if after is not None:
            stmt = stmt.where(tuple_(c.seq, c.id) > tuple_(*after))
        stmt = stmt.order_by(col(c.seq), col(c.id)).limit(limit + 1)
        cols = (c.id, c.seq, c.model_alias, c.partner_alias, c.vendor, c.condition, c.replicate, c.kind,
                c.status, c.turns, c.stop_reason, c.cost, c.simulated)
        with self.session() as s:
            ids = [i for (i,) in s.execute(stmt)]
            more = len(ids) > limit
            ids = ids[:limit]
            by_id = {r[0]: r for r in s.execute(select(*cols).where(col(c.id).in_(ids)))} if ids else {}
            raw = [by_id[i] for i in ids if i in by_id]
            offers = self._offer_counts(s, ids)
            tags = self._tag_codes(s, ids)
            echoes = self._mean_echo(s, ids)
            query = search.parse(flt.search)
            snips = search.snippets(s.connection(), query, ids) if query is not None else {}
        rows = [
            ConversationSummary(
                id=r[0], seq=r[1], model=r[2] if not r[3] else f"{r[2]} ↔ {r[3]}", vendor=r[4], condition=r[5],
                replicate=r[6], kind=r[7], status=r[8], turns=r[9], stop_reason=r[10], cost=float(r[11] or 0.0),
                simulated=bool(r[12]), offers=offers.get(r[0], {}), tags=tuple(sorted(tags.get(r[0], ()))),
                snippet=snips.get(r[0]), echo=echoes.get(r[0]),
            )
            for r in raw
        ]
        return ConversationPage(rows, rows[-1].key if more and rows else None)

    @staticmethod
    def _offer_counts(s: Session, ids: Sequence[str]) -> dict[str, dict[str, int]]:
        if not ids:
            return {}
        stmt = (
            select(OfferRow.conversation_id, OfferRow.classification, func.count())
            .where(col(OfferRow.conversation_id).in_(ids))
            .group_by(OfferRow.conversation_id, OfferRow.classification)
        )
        out: dict[str, dict[str, int]] = {}
        for cid, outcome, n in s.execute(stmt):
            out.setdefault(cid, {})[outcome] = int(n)
        return out

    @staticmethod
    def _mean_echo(s: Session, ids: Sequence[str]) -> dict[str, float]:
        if not ids:
            return {}
        m = MessageRow
        stmt = (select(m.conversation_id, func.avg(m.echo))
                .where(col(m.conversation_id).in_(ids), m.role == "assistant", col(m.echo).is_not(None))
                .group_by(m.conversation_id))
        return {cid: float(v) for cid, v in s.execute(stmt) if v is not None}

    @staticmethod
    def _tag_codes(s: Session, ids: Sequence[str]) -> dict[str, set[str]]:
        if not ids:
            return {}
        stmt = (
            select(TagRow.conversation_id, TagRow.code)
            .where(col(TagRow.conversation_id).in_(ids), col(TagRow.deleted_at).is_(None),
                   col(TagRow.present).is_(True))
            .distinct()
        )
        out: dict[str, set[str]] = {}
        for cid, code in s.execute(stmt):
            out.setdefault(cid, set()).add(code)
        return out

    def neighbour(
        self, run_id: str, flt: ConversationFilter, conversation_id: str, step: Literal[1, -1] = 1
    ) -> str | None:
        """The id of the next (``step=1``) or previous (``-1``) conversation in the filtered list."""
        c = ConversationRow
        with self.session() as s:
            here = s.execute(select(c.seq).where(c.id == conversation_id)).scalar_one_or_none()
            if here is None:
                return None
            key = tuple_(c.seq, c.id)
            stmt = select(c.id).where(*self._where(run_id, flt))
            if step > 0:
                stmt = stmt.where(key > tuple_(here, conversation_id)).order_by(col(c.seq), col(c.id))
            else:
                stmt = stmt.where(key < tuple_(here, conversation_id)).order_by(col(c.seq).desc(), col(c.id).desc())
            return s.execute(stmt.limit(1)).scalar_one_or_none()

    def _coded_by(self, coder: str) -> Any:
        """Conversations ``coder`` has coded: at least one live tag of theirs (present or absent, any
        unit), or a standing reviewed mark (read, nothing to code: every code absent)."""
        tagged = select(TagRow.conversation_id).where(TagRow.coder == coder, col(TagRow.deleted_at).is_(None))
        marked = select(ReviewedRow.conversation_id).where(ReviewedRow.coder == coder,
                                                           col(ReviewedRow.deleted_at).is_(None))
        return union(tagged, marked)

    def coded_count(self, run_id: str, flt: ConversationFilter, coder: str) -> int:
        """How many conversations of the filtered list ``coder`` has coded (a live tag or a reviewed mark)."""
        c = ConversationRow
        with self.session() as s:
            stmt = select(func.count()).select_from(c).where(*self._where(run_id, flt),
                                                              col(c.id).in_(self._coded_by(coder)))
            return int(s.execute(stmt).scalar_one())

    def next_uncoded(self, run_id: str, flt: ConversationFilter, conversation_id: str | None, coder: str) -> str | None:
        """The next conversation of the filtered list (after ``conversation_id``, wrapping round to the
        start) that ``coder`` has not coded yet; None when every one is coded."""
        c = ConversationRow
        with self.session() as s:
            base = select(c.id).where(*self._where(run_id, flt), col(c.id).not_in(self._coded_by(coder)))
            here = s.execute(select(c.seq).where(c.id == conversation_id)).scalar_one_or_none() \
                if conversation_id else None
            if here is not None:
                later = base.where(tuple_(c.seq, c.id) > tuple_(here, conversation_id))
                found = s.execute(later.order_by(col(c.seq), col(c.id)).limit(1)).scalar_one_or_none()
                if found is not None:
                    return str(found)
            found = s.execute(base.where(c.id != (conversation_id or "")).order_by(col(c.seq), col(c.id))
                              .limit(1)).scalar_one_or_none()
            return str(found) if found is not None else None

    def position(self, run_id: str, flt: ConversationFilter, conversation_id: str) -> int | None:
        """0-based position of the conversation in the filtered list (None if it is not in it)."""
        c = ConversationRow
        with self.session() as s:
            here = s.execute(select(c.seq).where(c.id == conversation_id)).scalar_one_or_none()
            if here is None:
                return None
            stmt = select(func.count()).select_from(c).where(
                *self._where(run_id, flt), tuple_(c.seq, c.id) < tuple_(here, conversation_id)
            )
            return int(s.execute(stmt).scalar_one())

    def facets(self, run_id: str) -> Facets:
        """Distinct values of each filterable column in the run."""
        c = ConversationRow

        def values(s: Session, column: Any) -> list[Any]:
            stmt = select(column).distinct().where(c.run_id == run_id, column.is_not(None)).order_by(column)
            return [v for (v,) in s.execute(stmt)]

        with self.session() as s:
            models = sorted(set(values(s, c.model_alias)) | set(values(s, c.partner_alias)))
            in_run = select(c.id).where(c.run_id == run_id).scalar_subquery()
            outcomes = [v for (v,) in s.execute(
                select(OfferRow.classification).distinct().where(col(OfferRow.conversation_id).in_(in_run))
                .order_by(OfferRow.classification))]
            tags = [v for (v,) in s.execute(
                select(TagRow.code).distinct().where(col(TagRow.conversation_id).in_(in_run),
                                                   col(TagRow.deleted_at).is_(None)).order_by(TagRow.code))]
            return Facets(
                model=models, vendor=values(s, c.vendor), condition=values(s, c.condition),
                replicate=values(s, c.replicate), stop_reason=values(s, c.stop_reason),
                status=values(s, c.status), offer_outcome=outcomes, tag=tags, kind=values(s, c.kind),
            )

    def counterpart(
        self, conversation_id: str, vary: Literal["model", "replicate", "fork"] = "model", step: Literal[1, -1] = 1
    ) -> str | None:
        """A conversation to compare with: same run, condition and kind, and either the same replicate
        with another model (``vary="model"``) or the same model with another replicate; the next one
        in plan order (``step=-1``: the previous), wrapping around."""
        c = ConversationRow
        with self.session() as s:
            me = s.get(ConversationRow, conversation_id)
            if me is None:
                return None
            stmt = select(c.id, c.seq).where(
                c.run_id == me.run_id, c.condition == me.condition, c.kind == me.kind, c.id != me.id
            )
            if vary == "fork":  # another continuation of the same point (any run, model or condition)
                if me.parent_id is None:
                    return None
                stmt = select(c.id, c.fork_seq).where(c.parent_id == me.parent_id, c.fork_at == me.fork_at,
                                                      c.id != me.id)
                rows = sorted((k or 0, cid) for cid, k in s.execute(stmt.limit(10_000)))
                mine = (me.fork_seq or 0, me.id)
                if not rows:
                    return None
                later = [r for r in rows if r > mine] if step > 0 else [r for r in rows if r < mine]
                return (later or rows)[0 if step > 0 else -1][1]
            if vary == "model":
                stmt = stmt.where(c.replicate == me.replicate, c.model_alias != me.model_alias)
            else:
                stmt = stmt.where(c.model_alias == me.model_alias, c.replicate != me.replicate,
                                  col(c.partner_alias).is_(None) if me.partner_alias is None
                                  else c.partner_alias == me.partner_alias)
            rows = sorted((seq, cid) for cid, seq in s.execute(stmt.limit(10_000)))
        if not rows:
            return None
        mine = (me.seq, me.id)
        if step > 0:
            later = [r for r in rows if r > mine]
            return (later or rows)[0][1]
        earlier = [r for r in rows if r < mine]
        return (earlier or rows)[-1][1]

    # ---------------------------------------------------------- transcript

    def conversation(self, conversation_id: str) -> ConversationRecord | None:
        """The conversation with its messages, offers, artifacts, captures and live tags."""
        with self.session() as s:
            conv = s.get(ConversationRow, conversation_id)
            if conv is None:
                return None
            run = s.get(RunRow, conv.run_id)
            assert run is not None
            captures = list(s.execute(select(CaptureRow).where(CaptureRow.conversation_id == conversation_id)
                                      .order_by(col(CaptureRow.message_idx), col(CaptureRow.id))).scalars())
            sc = StopCandidateRow
            latest = select(func.max(sc.detection)).where(sc.conversation_id == conversation_id).scalar_subquery()
            stops = list(s.execute(select(sc).where(sc.conversation_id == conversation_id, sc.detection == latest)
                                   .order_by(col(sc.message_idx), col(sc.id))).scalars())
            return ConversationRecord(
                conversation=conv, run=run,
                messages=queries.conversation_messages(s, conversation_id),
                offers=queries.conversation_offers(s, conversation_id),
                artifacts=queries.conversation_artifacts(s, conversation_id),
                captures=captures,
                tags=self._tags(s, conversation_id),
                stops=stops,
                forks=self._family(s, conv),
            )

    # ---------------------------------------------------------- forks

    @staticmethod
    def _family(s: Session, conv: ConversationRow) -> ForkFamily:
        c = ConversationRow
        children = {int(at): int(n) for at, n in s.execute(
            select(c.fork_at, func.count()).where(c.parent_id == conv.id).group_by(c.fork_at))}
        if conv.parent_id is None:
            return ForkFamily(children=children)
        # in the order `forks_at` lists them; by id, since each `latitude fork` numbers its samples from 0
        siblings = [str(i) for (i,) in s.execute(select(c.id).where(
            c.parent_id == conv.parent_id, c.fork_at == conv.fork_at).order_by(col(c.fork_seq), col(c.id)))]
        return ForkFamily(parent_id=conv.parent_id, fork_at=conv.fork_at,
                          position=siblings.index(conv.id) if conv.id in siblings else None, siblings=len(siblings),
                          children=children)

    def forks_at(self, parent_id: str, at: int) -> list[ForkSummary]:
        """The forks of `parent_id` from its message ``#at``, in sample order, each with its reply there."""
        from runner.store.records import ConversationParams

        c = ConversationRow
        with self.session() as s:
            rows = list(s.execute(select(c).where(c.parent_id == parent_id, c.fork_at == at)
                                  .order_by(col(c.fork_seq), col(c.id)).limit(10_000)).scalars())
            replies = dict(s.execute(select(MessageRow.conversation_id, MessageRow.content).where(
                col(MessageRow.conversation_id).in_([r.id for r in rows]), MessageRow.idx == at)).all()) if rows else {}
        return [ForkSummary(r, ConversationParams.model_validate_json(r.params_json or "{}").sampling.get("seed"),
                            replies.get(r.id, "")) for r in rows]

    @staticmethod
    def _tags(s: Session, conversation_id: str, coder: str | None = None) -> list[TagRow]:
        stmt = select(TagRow).where(TagRow.conversation_id == conversation_id, col(TagRow.deleted_at).is_(None))
        if coder is not None:
            stmt = stmt.where(TagRow.coder == coder)
        return list(s.execute(stmt.order_by(col(TagRow.created_at), col(TagRow.id))).scalars())

    def tags(self, conversation_id: str, coder: str | None = None) -> list[TagRow]:
        """Live tags of the conversation (optionally one coder's), oldest first."""
        with self.session() as s:
            return self._tags(s, conversation_id, coder)

    # --------------------------------------------------------------- coding

    def codebook_names(self) -> list[str]:
        with self.session() as s:
            return [n for (n,) in s.execute(select(CodebookRow.name).distinct().order_by(CodebookRow.name))]

    def latest_codebook(self, name: str | None = None) -> CodebookRow | None:
        """The newest version of the codebook ``name`` (any codebook when None: the one changed last)."""
        stmt = select(CodebookRow)
        if name is not None:
            stmt = stmt.where(CodebookRow.name == name).order_by(col(CodebookRow.version).desc())
        else:
            stmt = stmt.order_by(col(CodebookRow.id).desc())
        with self.session() as s:
            row = s.execute(stmt.limit(1)).scalar_one_or_none()
            return row

    def codes(self, codebook_id: int) -> list[CodeRow]:
        """The codes of one codebook version, in position order."""
        with self.session() as s:
            return list(s.execute(select(CodeRow).where(CodeRow.codebook_id == codebook_id)
                                  .order_by(col(CodeRow.position), col(CodeRow.id))).scalars())

    def tag_counts(self, codes: Iterable[str] | None = None) -> dict[str, int]:
        """Live, present tags per code (every coder, every run)."""
        stmt = (select(TagRow.code, func.count()).where(col(TagRow.deleted_at).is_(None), col(TagRow.present).is_(True))
                .group_by(TagRow.code))
        if codes is not None:
            stmt = stmt.where(col(TagRow.code).in_(list(codes)))
        with self.session() as s:
            return {code: int(n) for code, n in s.execute(stmt)}

    def coders(self) -> list[str]:
        """Everyone (and every judge) with at least one live tag."""
        with self.session() as s:
            return [c for (c,) in s.execute(select(TagRow.coder).distinct().where(col(TagRow.deleted_at).is_(None))
                                            .order_by(TagRow.coder))]

    def suggestions(self, status: str = "pending", *, limit: int = 500) -> list[SuggestionRecord]:
        """Review-queue items in ``status``: disagreements between coders first, then oldest first."""
        with self.session() as s:
            rows = list(s.execute(select(SuggestionRow).where(SuggestionRow.status == status)
                                  .order_by(col(SuggestionRow.created_at), col(SuggestionRow.id))
                                  .limit(limit)).scalars())
            conv_ids = {r.conversation_id for r in rows if r.conversation_id}
            tags: dict[str, list[TagRow]] = {}
            convs: dict[str, ConversationRow] = {}
            messages: dict[tuple[str, int], MessageRow] = {}
            if conv_ids:
                for t in s.execute(select(TagRow).where(col(TagRow.conversation_id).in_(conv_ids),
                                                        col(TagRow.deleted_at).is_(None))).scalars():
                    tags.setdefault(t.conversation_id, []).append(t)
                for cv in s.execute(select(ConversationRow).where(col(ConversationRow.id).in_(conv_ids))).scalars():
                    convs[cv.id] = cv
                wanted = {(r.conversation_id, r.message_idx) for r in rows
                          if r.conversation_id and r.message_idx is not None}
                if wanted:
                    for m in s.execute(select(MessageRow).where(
                            or_(*[and_(MessageRow.conversation_id == cid, MessageRow.idx == idx)
                                  for cid, idx in wanted]))).scalars():
                        messages[(m.conversation_id, m.idx)] = m
        out = []
        for r in rows:
            pro: set[str] = set()
            con: set[str] = set()
            if r.conversation_id:
                unit_tags = tags.get(r.conversation_id, [])
                coders = {t.coder for t in unit_tags}
                for t in unit_tags:
                    if t.code == r.code and (r.message_idx is None or t.message_idx in (None, r.message_idx)):
                        (pro if t.present else con).add(t.coder)
                con |= coders - pro
            disagreement = len(pro) + len(con) if pro and con else 0
            out.append(SuggestionRecord(
                suggestion=r,
                message=messages.get((r.conversation_id, r.message_idx)) if r.conversation_id else None,
                conversation=convs.get(r.conversation_id) if r.conversation_id else None,
                disagreement=disagreement, coders_for=tuple(sorted(pro)), coders_against=tuple(sorted(con)),
            ))
        out.sort(key=lambda x: (x.disagreement == 0, -x.disagreement))
        return out
