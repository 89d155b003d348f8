"""The Assistants API: assistants, threads, thread messages, runs and run steps.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _stored() -> list[sa.Column]:
    return [
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
            autoincrement=True,
        ),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    ]  # fmt: skip


def _owner(column: str, table: str) -> sa.Column:
    return sa.Column(
        column, sa.String(64), sa.ForeignKey(f"{table}.id", ondelete="CASCADE"), nullable=False
    )


def _meta() -> sa.Column:
    return sa.Column("metadata", JSON, nullable=False)


def _data() -> sa.Column:
    return sa.Column("data", JSON, nullable=False)


def upgrade() -> None:
    op.create_table("assistants", *_stored(), _meta(), _data())
    op.create_table("threads", *_stored(), _meta(), _data())
    op.create_table(
        "thread_messages",
        *_stored(),
        _owner("thread_id", "threads"),
        sa.Column("run_id", sa.String(64), nullable=True),
        _meta(),
        _data(),
    )
    op.create_index("ix_thread_messages_thread_id", "thread_messages", ["thread_id"])
    op.create_index("ix_thread_messages_run_id", "thread_messages", ["run_id"])
    op.create_table(
        "runs",
        *_stored(),
        _owner("thread_id", "threads"),
        sa.Column("status", sa.String(16), nullable=False),
        _meta(),
        _data(),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("heartbeat_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_runs_thread_status", "runs", ["thread_id", "status"])
    op.create_table(
        "run_steps",
        *_stored(),
        _owner("thread_id", "threads"),
        _owner("run_id", "runs"),
        _data(),
    )
    op.create_index("ix_run_steps_run_id", "run_steps", ["run_id"])


def downgrade() -> None:
    for table in ("run_steps", "runs", "thread_messages", "threads", "assistants"):
        op.drop_table(table)
