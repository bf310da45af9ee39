"""search: full-text index over message text (SQLite FTS5, PostgreSQL GIN)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Written by hand: neither object can be declared in the SQLModel metadata, so
``runner.store.search.is_search_object`` names them for schema comparisons.

- SQLite: ``messages_fts``, an FTS5 external-content table (the index only, the text
  stays in ``messages``) over ``content`` and ``reasoning``, with ``rowid`` =
  ``messages.id``; three triggers keep it in step with inserts, deletes (also the
  ``ON DELETE CASCADE`` from conversations) and updates. Filled from existing rows.
  ``messages_fts_conversation``, a covering index on ``messages (id, conversation_id)``,
  maps a hit's rowid to its conversation without reading the message row (halves the
  time of a search with many hits).
  A later batch migration that rebuilds ``messages`` drops the triggers with the
  table: it must recreate them (copy ``_TRIGGERS``).
- PostgreSQL: a GIN index on ``to_tsvector('simple', content || ' ' || reasoning)``
  (queries in ``runner/store/search.py`` repeat the expression verbatim).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FTS = (
    "CREATE VIRTUAL TABLE messages_fts USING fts5("
    "content, reasoning, content='messages', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')"
)

_TRIGGERS = (
    """CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
  INSERT INTO messages_fts(rowid, content, reasoning) VALUES (new.id, new.content, new.reasoning);
END""",
    """CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
  INSERT INTO messages_fts(messages_fts, rowid, content, reasoning)
  VALUES ('delete', old.id, old.content, old.reasoning);
END""",
    """CREATE TRIGGER messages_fts_au AFTER UPDATE OF content, reasoning ON messages BEGIN
  INSERT INTO messages_fts(messages_fts, rowid, content, reasoning)
  VALUES ('delete', old.id, old.content, old.reasoning);
  INSERT INTO messages_fts(rowid, content, reasoning) VALUES (new.id, new.content, new.reasoning);
END""",
)

_PG_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_messages_fts ON messages USING gin "
    "(to_tsvector('simple', coalesce(content, '') || ' ' || coalesce(reasoning, '')))"
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(_FTS)
        for trigger in _TRIGGERS:
            op.execute(trigger)
        op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
        op.execute("CREATE INDEX messages_fts_conversation ON messages (id, conversation_id)")
    elif dialect == "postgresql":
        op.execute(_PG_INDEX)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("messages_fts_au", "messages_fts_ad", "messages_fts_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP INDEX IF EXISTS messages_fts_conversation")
        op.execute("DROP TABLE IF EXISTS messages_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_messages_fts")
