"""The database connection: one async engine, read and write transactions.

SQLite (the default) allows one writer at a time. Writes here take a process-wide lock
and open with `BEGIN IMMEDIATE`, so two writers never both read then upgrade to a write
lock (SQLite's "database is locked" deadlock); WAL lets readers go on meanwhile, and the
busy timeout covers other processes (`hearth db upgrade` next to a running server).
PostgreSQL needs none of that: its transactions and sequences keep concurrent writes apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from hearth.core.errors import StoreUnavailable

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000


class Database:
    """hide_parameters: a statement's values are stored prompts and replies; an error's
    message (logged, with its traceback) names the SQL but never quotes them."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_async_engine(
                url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}, hide_parameters=True
            )
            _sqlite_pragmas(self.engine)
        else:
            self.engine = create_async_engine(url, pool_pre_ping=True, hide_parameters=True)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        with _reachable():
            async with self.sessions() as session:
                yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction, committed when the block exits cleanly, else rolled back."""
        lock = self._write_lock if self._write_lock is not None else contextlib.nullcontext()
        with _reachable():
            async with lock, self.sessions() as session, session.begin():
                # Procured before any statement, so the "begin" hook below sees the option.
                await session.connection(execution_options={"hearth_write": True})
                yield session

    async def close(self) -> None:
        await self.engine.dispose()


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    """A database out of reach is StoreUnavailable, which clients get as a 503 to retry,
    not a 500 (and no stack trace per request while PostgreSQL restarts). asyncpg's
    refused connection arrives as a bare OSError; pool_pre_ping reconnects afterwards."""
    try:
        yield
    except (OSError, OperationalError, InterfaceError) as exc:
        log.warning("the database is unreachable: %s", exc)
        raise StoreUnavailable(
            "The database is unavailable at the moment; retry shortly.", retry_after=1.0
        ) from exc
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("lost the database connection: %s", exc)
        raise StoreUnavailable(
            "The database connection was lost; retry shortly.", retry_after=1.0
        ) from exc


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over BEGIN from the driver, so writes can say IMMEDIATE.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        write = conn.get_execution_options().get("hearth_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
