"""A key row as `hearth keys create` makes one, for tests that add keys themselves (an
expired one, which the command refuses to make)."""

from __future__ import annotations

from hearth.core.ids import new_id, unix_now
from hearth.services.keys import new_key
from hearth.store.models import ApiKey


def stored_key(name: str, **columns: object) -> tuple[str, ApiKey]:
    """(the key, its row)."""
    key, prefix, hex_digest = new_key()
    row = ApiKey(
        id=new_id("key_"), created_at=unix_now(), name=name, prefix=prefix, digest=hex_digest,
        **{"admin": False, **columns},
    )  # fmt: skip
    return key, row
