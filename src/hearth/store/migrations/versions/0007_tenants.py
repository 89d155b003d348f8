"""Who owns a stored object: the database key that created a conversation, response,
assistant or thread (`tenant`; NULL for an admin's static key, an open server, and every
object made before keys owned them, which admins keep reaching).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = ("conversations", "responses", "assistants", "threads")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("tenant", sa.String(64), nullable=True))
        op.create_index(f"ix_{table}_tenant", table, ["tenant"])


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_tenant", table_name=table)
        with op.batch_alter_table(table) as batch:  # SQLite rebuilds the table
            batch.drop_column("tenant")
