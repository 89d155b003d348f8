"""Message Batches (the Anthropic API): the batches and each request's params and result.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _seq() -> sa.Column:
    return sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
        autoincrement=True,
    )  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "message_batches",
        _seq(),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("key_name", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("cancel_initiated_at", sa.Float(), nullable=True),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("heartbeat_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_message_batches_status", "message_batches", ["status"])
    op.create_index("ix_message_batches_key_id", "message_batches", ["key_id"])
    op.create_table(
        "message_batch_requests",
        _seq(),
        sa.Column(
            "batch_id", sa.String(64),
            sa.ForeignKey("message_batches.id", ondelete="CASCADE"), nullable=False,
        ),
        sa.Column("custom_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("result", JSON, nullable=True),
    )  # fmt: skip
    op.create_index(
        "ix_message_batch_requests_custom_id", "message_batch_requests",
        ["batch_id", "custom_id"], unique=True,
    )  # fmt: skip
    op.create_index(
        "ix_message_batch_requests_status", "message_batch_requests", ["batch_id", "status"]
    )


def downgrade() -> None:
    op.drop_table("message_batch_requests")
    op.drop_table("message_batches")
