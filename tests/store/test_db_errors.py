"""What a database fault lets out: stored text (prompts, replies) never reaches the log
or the client through an error's message; the client never sees SQL."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from hearth.core.errors import StoreUnavailable
from hearth.store.db import Database

SECRET = "the user's secret prompt"


async def test_a_failed_statement_names_no_parameter(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'hearth.db'}")
    try:
        async with db.write() as session:
            await session.execute(text("CREATE TABLE t (body TEXT NOT NULL UNIQUE)"))
            await session.execute(text("INSERT INTO t VALUES (:body)"), {"body": SECRET})
        # A fault of the statement: logged with a traceback by whoever catches it.
        with pytest.raises(IntegrityError) as info:
            async with db.write() as session:
                await session.execute(text("INSERT INTO t VALUES (:body)"), {"body": SECRET})
        assert SECRET not in str(info.value)
        # A fault the store reports as "unavailable": logged here, a 503 for the client.
        with caplog.at_level(logging.WARNING), pytest.raises(StoreUnavailable) as gone:
            async with db.read() as session:
                await session.execute(text("SELECT body FROM gone WHERE body = :b"), {"b": SECRET})
        assert "SELECT" in caplog.text and SECRET not in caplog.text
        assert "SELECT" not in gone.value.message and "gone" not in gone.value.message
    finally:
        await db.close()
