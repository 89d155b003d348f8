"""Keys with limits in a live server's database, made the way `hearth keys create` makes
them (services/keys.new_key, ApiKeys.add), before the server starts."""

from __future__ import annotations

import asyncio

from hearth.store import Store
from tests.stored_keys import stored_key

# SmolLM2's end tokens, banned: a reply runs to max_tokens, so its length is known.
NEVER_END = {"0": -100, "2": -100}


def add_keys(url: str, specs: dict[str, dict[str, object]]) -> dict[str, str]:
    """Create the keys (name → limits columns) in the database at `url`; name → key."""

    async def add() -> dict[str, str]:
        store = Store(url)
        try:
            await store.upgrade()
            made = {}
            for name, columns in specs.items():
                key, row = stored_key(name, **columns)
                await store.api_keys.add(row)
                made[name] = key
            return made
        finally:
            await store.close()

    return asyncio.run(add())
