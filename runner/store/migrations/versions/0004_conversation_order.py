"""conversations: index (run_id, seq) for paging a run's conversations in plan order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_conversations_run_id_seq", "conversations", ["run_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_conversations_run_id_seq", table_name="conversations")
