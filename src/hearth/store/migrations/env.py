"""Alembic environment: runs on the connection `hearth.store.migrate` hands over."""

from __future__ import annotations

from alembic import context

from hearth.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `hearth db upgrade` (hearth.store.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
)
with context.begin_transaction():
    context.run_migrations()
