"""The store's fixture: a migrated Store on each kind of database (`database_url`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hearth.store import Store


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = Store(database_url)
    await s.upgrade()
    yield s
    await s.close()
