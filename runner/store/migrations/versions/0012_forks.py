"""conversations.parent_id / fork_at / fork_seq: a fork is a conversation continued from a point of another.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(), nullable=True))
        batch.add_column(sa.Column("fork_at", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("fork_seq", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_conversations_parent_id_conversations"), "conversations",
                                 ["parent_id"], ["id"], ondelete="SET NULL")
    op.create_index("ix_conversations_parent_id_fork_at", "conversations", ["parent_id", "fork_at"])


def downgrade() -> None:
    op.drop_index("ix_conversations_parent_id_fork_at", table_name="conversations")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_constraint(op.f("fk_conversations_parent_id_conversations"), type_="foreignkey")
        batch.drop_column("fork_seq")
        batch.drop_column("fork_at")
        batch.drop_column("parent_id")
