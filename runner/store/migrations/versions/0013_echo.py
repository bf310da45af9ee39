"""messages.echo, echo_unigram, echo_bigrams: how much of each model reply echoes its prompts' words.

Stored by the engine as each reply is written; rows stored before this revision stay NULL (not
measured) until `latitude echo RUN` backfills them (a migration never imports analysis code),
and tallies compute the measure for such rows on the fly.

Revision ID: 0013
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN (no table rebuild: the search triggers on messages stay in place).
    op.add_column("messages", sa.Column("echo", sa.Float(), nullable=True))
    op.add_column("messages", sa.Column("echo_unigram", sa.Float(), nullable=True))
    op.add_column("messages", sa.Column("echo_bigrams", sa.Integer(), nullable=True))


def downgrade() -> None:
    # SQLite 3.35+ and PostgreSQL drop a column in place.
    op.drop_column("messages", "echo_bigrams")
    op.drop_column("messages", "echo_unigram")
    op.drop_column("messages", "echo")
