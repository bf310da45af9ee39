"""Full-text search over message text, on SQLite (FTS5) and PostgreSQL (tsvector + GIN).

The index is made by migration ``0003`` and kept current by the database itself, so
every writer (the engine's `StoreWriter`, imports, the TUI) is covered without code:

- **SQLite**: ``messages_fts``, an FTS5 *external-content* table over ``messages``
  (``content`` and ``reasoning``; ``rowid`` = ``messages.id``; tokenizer ``unicode61
  remove_diacritics 2``), kept in step by three triggers (``messages_fts_ai``, ``_ad``,
  ``_au``). It stores only the index, not a second copy of the text.
- **PostgreSQL**: ``ix_messages_fts``, a GIN index on the expression `PG_DOCUMENT`
  (``to_tsvector('simple', content || ' ' || reasoning)``); queries repeat the same
  expression so the planner uses the index.

Neither object is part of the SQLModel metadata (FTS5 tables and expression indexes
cannot be declared there); `is_search_object` names them so schema comparisons
(``tests/store/test_migrations.py``, autogenerate in ``env.py``) leave them out.

One small query language, the same on both backends (`parse`)::

    story break          both words (AND), in any order, anywhere in the conversation
    "take a break"       the phrase (in one message)
    declin*              a prefix
    stop OR pause        either
    story -break         story somewhere, and break nowhere in the conversation

A query is about **conversations**, not messages: a conversation matches when its messages
together satisfy it (`conversation_clause`). ``flock boids`` finds a conversation that says
*flock* in one turn and *boids* in another; ``flock -boids`` finds none that mentions *boids*
anywhere. A query of exclusions only (``-boids``) is refused with the reason in words
(`SearchError`): it would list nearly everything while looking like a search.

Matching is case-insensitive and works on whole words (no stemming); on SQLite it also
ignores accents (``cafe`` finds ``café``), on PostgreSQL it does not (``unaccent`` is not
immutable, so it cannot be indexed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

__all__ = [
    "FTS_TABLE",
    "PG_DOCUMENT",
    "PG_INDEX",
    "SearchError",
    "SearchQuery",
    "Term",
    "conversation_clause",
    "is_search_object",
    "parse",
    "rebuild",
    "snippets",
    "term_hits",
]

FTS_TABLE = "messages_fts"
"""The SQLite FTS5 table (and the prefix of its shadow tables and triggers)."""

PG_INDEX = "ix_messages_fts"
"""The PostgreSQL GIN index."""

PG_CONFIG = "simple"
"""Text search configuration on PostgreSQL: lower-cases, no stemming, no stop words (like FTS5 unicode61)."""

PG_DOCUMENT = "to_tsvector('simple', coalesce(content, '') || ' ' || coalesce(reasoning, ''))"
"""The indexed expression on PostgreSQL; a query must spell it the same way to use the index."""

_WORD = re.compile(r"\w", re.UNICODE)
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


def is_search_object(name: str | None) -> bool:
    """True for the database objects of the search index (kept out of the SQLModel metadata)."""
    return bool(name) and (name == PG_INDEX or name.startswith(FTS_TABLE))  # type: ignore[union-attr]


class SearchError(ValueError):
    """A query that cannot be run as typed; the message says why, in words, and what to type instead."""


@dataclass(frozen=True, slots=True)
class Term:
    """One word, prefix or phrase of a query."""

    text: str
    """The words, as typed (a phrase may hold several)."""
    prefix: bool = False
    """``declin*``: any word starting with the text."""


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A parsed query: OR of groups, each group the AND of its terms minus its exclusions."""

    groups: tuple[tuple[tuple[Term, ...], tuple[Term, ...]], ...]
    """``((include, exclude), ...)``; every group has at least one included term."""
    text: str = field(default="", compare=False)
    """The text the query was parsed from."""

    def words(self) -> list[Term]:
        """Every included term (for highlighting matches in a transcript)."""
        return [t for include, _ in self.groups for t in include]

    def highlighter(self) -> re.Pattern[str]:
        """A case-insensitive regex finding the included terms in text (words and phrases)."""
        parts = []
        for t in self.words():
            words = [re.escape(w) for w in re.findall(r"\w+", t.text)]
            if not words:
                continue
            body = r"\W+".join(words)
            parts.append(rf"\b{body}\w*" if t.prefix else rf"\b{body}\b")
        return re.compile("|".join(parts) or r"(?!x)x", re.IGNORECASE)

    # -- SQLite FTS5

    def fts5(self) -> str:
        """The FTS5 MATCH expression of the query applied to *one message* (kept for reference and
        tests; searches use `conversation_clause`, which applies it to whole conversations)."""
        term = _fts5_term
        out = []
        for include, exclude in self.groups:
            expr = "(" + " AND ".join(term(t) for t in include) + ")"
            for t in exclude:
                expr += " NOT " + term(t)
            out.append("(" + expr + ")")
        return " OR ".join(out)

    def positive_fts5(self) -> str:
        """FTS5 expression matching a message holding any included term (where snippets come from)."""
        return " OR ".join(_fts5_term(t) for t in self.words())

    def positive_tsquery(self) -> ColumnElement[Any]:
        """The PostgreSQL counterpart of `positive_fts5`."""
        out = None
        for t in self.words():
            q = _ts_term(t)
            out = q if out is None else out.op("||")(q)
        assert out is not None
        return out

    # -- PostgreSQL

    def tsquery(self) -> ColumnElement[Any]:
        """The PostgreSQL ``tsquery`` of the query applied to one message (bound parameters only)."""
        term = _ts_term
        groups = []
        for include, exclude in self.groups:
            expr = term(include[0])
            for t in include[1:]:
                expr = expr.op("&&")(term(t))
            for t in exclude:
                expr = expr.op("&&")(_negate(term(t)))
            groups.append(expr)
        out = groups[0]
        for g in groups[1:]:
            out = out.op("||")(g)
        return out


def _fts5_term(t: Term) -> str:
    """One term as FTS5 syntax: always quoted, so user text is never FTS5 syntax."""
    quoted = '"' + t.text.replace('"', '""') + '"'
    return quoted + " *" if t.prefix else quoted


def _ts_term(t: Term) -> Any:
    """One term as a PostgreSQL ``tsquery`` (bound parameters only, never spliced text)."""
    from sqlalchemy import bindparam, func, literal_column

    if t.prefix:
        word = "".join(re.findall(r"\w+", t.text)[:1])
        return func.to_tsquery(literal_column(f"'{PG_CONFIG}'"), bindparam(None, word + ":*"))
    return func.phraseto_tsquery(literal_column(f"'{PG_CONFIG}'"), bindparam(None, t.text))


def _negate(q: Any) -> Any:
    from sqlalchemy.sql import operators
    from sqlalchemy.sql.elements import UnaryExpression

    return UnaryExpression(q, operator=operators.custom_op("!!"))


def _shown(t: Term) -> str:
    return f'-"{t.text}"' if " " in t.text else f"-{t.text}{'*' if t.prefix else ''}"


def parse(text: str | None) -> SearchQuery | None:
    """Parse the search box text; None when it holds nothing searchable.

    Raises `SearchError` when a part of the query (the whole of it, or one side of an ``OR``)
    only excludes: there is nothing to look for, and silently dropping the exclusion (or
    listing every conversation without the word) would both look like an answer.
    """
    if not text or not text.strip():
        return None
    groups: list[tuple[tuple[Term, ...], tuple[Term, ...]]] = []
    include: list[Term] = []
    exclude: list[Term] = []

    def close() -> None:
        if include:
            groups.append((tuple(include), tuple(exclude)))
        elif exclude:
            words = " ".join(_shown(t) for t in exclude)
            where = "This search" if not groups and "OR" not in text.split() else "One side of OR"
            raise SearchError(f"{where} only excludes ({words}): add a word to look for, "
                              f"e.g. `flock {words}` finds conversations that mention flock and never "
                              f"{exclude[0].text}.")
        include.clear()
        exclude.clear()

    for m in _TOKEN.finditer(text):
        negated, phrase, bare = m.group(1), m.group(2), m.group(3)
        if bare is not None:
            if bare == "OR":
                close()
                continue
            negated = "-" if bare.startswith("-") and len(bare) > 1 else ""
            word = bare[1:] if negated else bare
            prefix = word.endswith("*")
            word = word.rstrip("*")
            # Punctuation inside a bare word splits it into words, exactly as the tokenizers do;
            # a phrase keeps them adjacent.
            t = Term(word, prefix=prefix)
        else:
            t = Term(phrase or "")
        if not _WORD.search(t.text):
            continue
        (exclude if negated else include).append(t)
    close()
    if not groups:
        return None
    return SearchQuery(tuple(groups), text=text)


def term_hits(dialect: str, term: Term) -> Any:
    """A one-column select of ``conversation_id`` for every message holding ``term`` (ids repeat)."""
    from sqlalchemy import String, bindparam, text

    if dialect == "sqlite":
        # INDEXED BY: read the hit's conversation from the small covering index, not the message row.
        sql = (f"SELECT m.conversation_id FROM {FTS_TABLE} JOIN messages AS m INDEXED BY {FTS_TABLE}_conversation"
               f" ON m.id = {FTS_TABLE}.rowid WHERE {FTS_TABLE} MATCH :fts_query")
        return text(sql).bindparams(bindparam("fts_query", _fts5_term(term), unique=True)).columns(
            conversation_id=String)
    if dialect == "postgresql":
        from sqlalchemy import literal_column, select

        from runner.store.tables import MessageRow

        m = MessageRow.__table__  # type: ignore[attr-defined]
        return select(m.c.conversation_id).where(literal_column(PG_DOCUMENT).op("@@")(_ts_term(term)))
    raise NotImplementedError(f"full-text search is not available on {dialect}")


def conversation_clause(dialect: str, query: SearchQuery, conversation_id: Any) -> ColumnElement[bool]:
    """A condition on the ``conversation_id`` column: true for the conversations whose messages,
    together, satisfy ``query`` (each included term in some message, no excluded term in any).

    Each term is one uncorrelated subquery over the index (read once per statement, not once per
    conversation), so the cost grows with the number of terms, not of conversations.
    """
    from sqlalchemy import and_, or_

    groups = []
    for include, exclude in query.groups:
        parts = [conversation_id.in_(term_hits(dialect, t)) for t in include]
        parts += [conversation_id.not_in(term_hits(dialect, t)) for t in exclude]
        groups.append(and_(*parts))
    return or_(*groups) if len(groups) > 1 else groups[0]


def snippets(connection: Any, query: SearchQuery, conversation_ids: list[str], words: int = 12) -> dict[str, str]:
    """For each conversation id, a short excerpt around the first message holding an included term
    (FTS5 ``snippet()``; ``ts_headline`` on PostgreSQL). Plain text with ``…`` where it was cut and
    no markers: the caller highlights with `SearchQuery.highlighter`, so model text can never be
    mistaken for a marker."""
    from sqlalchemy import bindparam, func, literal_column, select, text

    if not conversation_ids:
        return {}
    out: dict[str, tuple[int, str]] = {}
    dialect = connection.dialect.name
    if dialect == "sqlite":
        sql = text(f"SELECT m.conversation_id, m.idx, snippet({FTS_TABLE}, -1, '', '', '…', :words) "
                   f"FROM {FTS_TABLE} JOIN messages AS m ON m.id = {FTS_TABLE}.rowid "
                   f"WHERE {FTS_TABLE} MATCH :q AND m.conversation_id IN :ids").bindparams(
            bindparam("ids", expanding=True))
        rows = connection.execute(sql, {"q": query.positive_fts5(), "ids": list(conversation_ids),
                                        "words": max(1, min(64, words))})
    elif dialect == "postgresql":
        from runner.store.tables import MessageRow

        m = MessageRow.__table__  # type: ignore[attr-defined]
        body = func.coalesce(m.c.content, "").op("||")(" ").op("||")(func.coalesce(m.c.reasoning, ""))
        positive = query.positive_tsquery()
        headline = func.ts_headline(literal_column(f"'{PG_CONFIG}'"), body, positive, bindparam(
            None, f'MaxWords={words}, MinWords={max(1, words // 2)}, ShortWord=0, StartSel="", StopSel="", '
                  'FragmentDelimiter=" … ", MaxFragments=1'))
        stmt = select(m.c.conversation_id, m.c.idx, headline).where(
            m.c.conversation_id.in_(list(conversation_ids)), literal_column(PG_DOCUMENT).op("@@")(positive))
        rows = connection.execute(stmt)
    else:
        raise NotImplementedError(f"full-text search is not available on {dialect}")
    for cid, idx, snip in rows:
        if cid not in out or idx < out[cid][0]:
            out[cid] = (idx, " ".join(str(snip or "").split()))
    return {cid: snip for cid, (_idx, snip) in out.items()}


def rebuild(connection: Any) -> None:
    """Rebuild the SQLite index from ``messages`` (after a bulk load with the triggers dropped);
    a no-op on PostgreSQL, whose index never falls behind."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
