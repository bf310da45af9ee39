"""reviewed_marks: a coder's explicit "I read this conversation" mark (reviewed without codes = absent).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reviewed_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(), nullable=False),
        sa.Column("coder", sa.String(), nullable=False),
        sa.Column("codebook_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["codebook_id"], ["codebooks.id"],
                                name=op.f("fk_reviewed_marks_codebook_id_codebooks")),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE",
                                name=op.f("fk_reviewed_marks_conversation_id_conversations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviewed_marks")),
    )
    op.create_index("ix_reviewed_marks_conversation_id_coder", "reviewed_marks", ["conversation_id", "coder"])


def downgrade() -> None:
    op.drop_index("ix_reviewed_marks_conversation_id_coder", table_name="reviewed_marks")
    op.drop_table("reviewed_marks")
