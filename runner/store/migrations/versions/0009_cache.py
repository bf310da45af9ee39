"""prompt-cache accounting: cache writes, their TTL and the prompt's cost as charged and uncached.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("cache_write_tokens", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("cache_ttl", sa.String(), nullable=True))
        batch.add_column(sa.Column("input_cost", sa.Float(), nullable=True))
        batch.add_column(sa.Column("input_cost_uncached", sa.Float(), nullable=True))
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("cache_write_tokens", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("input_cost", sa.Float(), nullable=True))
        batch.add_column(sa.Column("input_cost_uncached", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("input_cost_uncached")
        batch.drop_column("input_cost")
        batch.drop_column("cache_write_tokens")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("input_cost_uncached")
        batch.drop_column("input_cost")
        batch.drop_column("cache_ttl")
        batch.drop_column("cache_write_tokens")
