"""Responses (with input items and streamed deltas) and conversations (with items).

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _seq() -> sa.Column:
    # SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
    return sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
        autoincrement=True,
    )  # fmt: skip


def _owner(column: str, table: str) -> sa.Column:
    return sa.Column(
        column, sa.String(64), sa.ForeignKey(f"{table}.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "conversations",
        _seq(),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
    )
    op.create_table(
        "conversation_items",
        _seq(),
        sa.Column("id", sa.String(64), nullable=False),
        _owner("conversation_id", "conversations"),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("data", JSON, nullable=False),
    )
    op.create_index(
        "ix_conversation_items_conv_id", "conversation_items", ["conversation_id", "id"],
        unique=True,
    )  # fmt: skip
    op.create_table(
        "responses",
        _seq(),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("background", sa.Boolean(), nullable=False),
        sa.Column("previous_response_id", sa.String(64), nullable=True),
        sa.Column("conversation_id", sa.String(64), nullable=True),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("request", JSON, nullable=False),
        sa.Column("output", JSON, nullable=False),
        sa.Column("usage", JSON, nullable=True),
        sa.Column("error", JSON, nullable=True),
        sa.Column("incomplete_details", JSON, nullable=True),
        sa.Column("completed_at", sa.Float(), nullable=True),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("heartbeat_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_responses_status", "responses", ["status"])
    op.create_index("ix_responses_previous_response_id", "responses", ["previous_response_id"])
    op.create_table(
        "response_items",
        _seq(),
        sa.Column("id", sa.String(64), nullable=False),
        _owner("response_id", "responses"),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("data", JSON, nullable=False),
    )
    op.create_index(
        "ix_response_items_resp_id", "response_items", ["response_id", "id"], unique=True
    )
    op.create_table(
        "response_deltas",
        _seq(),
        _owner("response_id", "responses"),
        sa.Column("deltas", JSON, nullable=False),
    )
    op.create_index("ix_response_deltas_response_id", "response_deltas", ["response_id"])


def downgrade() -> None:
    for table in ("response_deltas", "response_items", "responses"):
        op.drop_table(table)
    op.drop_table("conversation_items")
    op.drop_table("conversations")
