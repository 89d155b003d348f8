"""The Store: the database plus one repository per kind of object."""

from __future__ import annotations

from hearth.store.api_keys import ApiKeys
from hearth.store.assistants import Rows, Threads
from hearth.store.batches import Batches
from hearth.store.conversations import Conversations
from hearth.store.db import Database
from hearth.store.limits import RateLimits
from hearth.store.migrate import upgrade
from hearth.store.models import Assistant
from hearth.store.responses import Responses
from hearth.store.usage import UsageLog


class Store:
    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.conversations = Conversations(self.db)
        self.responses = Responses(self.db)
        self.assistants = Rows(self.db, Assistant)
        self.threads = Threads(self.db)
        self.api_keys = ApiKeys(self.db)
        self.usage = UsageLog(self.db)
        self.rate_limits = RateLimits(self.db)
        self.batches = Batches(self.db)

    async def upgrade(self) -> None:
        """Apply the migrations not applied yet."""
        await upgrade(self.db.engine)

    async def close(self) -> None:
        await self.db.close()
