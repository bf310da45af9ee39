"""stops: candidate stops with their decisions, versioned detections, stop channel and prompted flag

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Every occurrence of a stop phrase (used or rejected), every end-tool call and check-in answer
is a `stop_candidates` row; `stop_detections` versions re-applied rules (imports, restop);
the counted candidate of detection 1 is a conversation's stop (its `stop_channel`, `prompted`).
No column is added to `conversations`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stop_detections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("rule_json", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_stop_detections_run_id_runs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stop_detections")),
        sa.UniqueConstraint("run_id", "version", name=op.f("uq_stop_detections_run_id_version")),
    )
    with op.batch_alter_table("stop_detections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stop_detections_run_id"), ["run_id"], unique=False)

    op.create_table(
        "stop_candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(), nullable=False),
        sa.Column("detection", sa.Integer(), nullable=False),
        sa.Column("message_idx", sa.Integer(), nullable=False),
        sa.Column("stop_channel", sa.String(), nullable=False),
        sa.Column("phrase", sa.String(), nullable=False),
        sa.Column("match", sa.String(), nullable=False),
        sa.Column("decision", sa.String(), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("span_start", sa.Integer(), nullable=True),
        sa.Column("span_end", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("judge", sa.String(), nullable=True),
        sa.Column("judge_evidence", sa.Text(), nullable=True),
        sa.Column("options_json", sa.Text(), nullable=True),
        sa.Column("prompted", sa.Boolean(), nullable=True),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("hypothetical", sa.Boolean(), nullable=False),
        sa.Column("confirm_answer", sa.String(), nullable=True),
        sa.Column("confirm_message_idx", sa.Integer(), nullable=True),
        sa.Column("confirm_evidence", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_stop_candidates_conversation_id_conversations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stop_candidates")),
    )
    with op.batch_alter_table("stop_candidates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stop_candidates_conversation_id"), ["conversation_id"], unique=False)
        batch_op.create_index("ix_stop_candidates_conversation_id_detection", ["conversation_id", "detection"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stop_candidates", schema=None) as batch_op:
        batch_op.drop_index("ix_stop_candidates_conversation_id_detection")
        batch_op.drop_index(batch_op.f("ix_stop_candidates_conversation_id"))
    op.drop_table("stop_candidates")
    with op.batch_alter_table("stop_detections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stop_detections_run_id"))
    op.drop_table("stop_detections")
