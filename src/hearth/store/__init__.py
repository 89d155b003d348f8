"""Stored state: SQLAlchemy models, repositories and Alembic migrations."""

from hearth.store.store import Store

__all__ = ["Store"]
