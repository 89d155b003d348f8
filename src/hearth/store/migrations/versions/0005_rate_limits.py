"""The shared counters of keys with limits (GCRA arrival times, the period's budget) and
the concurrent requests each server process holds for them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("requests_tat", sa.Float(), nullable=False),
        sa.Column("tokens_tat", sa.Float(), nullable=False),
        sa.Column("budget_start", sa.BigInteger(), nullable=False),
        sa.Column("budget_used", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "limit_holds",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(128), primary_key=True),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("limit_holds")
    op.drop_table("rate_limits")
