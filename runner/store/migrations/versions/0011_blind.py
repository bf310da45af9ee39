"""blind coding: tags.blind, runs.researcher, coder_settings (a coder's blind state and order per run).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.add_column(sa.Column("blind", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("researcher", sa.String(), nullable=True))
    op.create_table(
        "coder_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("coder", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("blind_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unblinded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE",
                                name=op.f("fk_coder_settings_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coder_settings")),
    )
    op.create_index("ix_coder_settings_coder_run_id", "coder_settings", ["coder", "run_id"])


def downgrade() -> None:
    op.drop_index("ix_coder_settings_coder_run_id", table_name="coder_settings")
    op.drop_table("coder_settings")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("researcher")
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.drop_column("blind")
