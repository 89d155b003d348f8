"""Whose stored objects a request reaches: conversations, responses, assistants and
threads carry the database key that created them (`tenant`); a key that is not an admin
reads, changes and lists only its own, and another's is missing exactly as an unknown id
is (a 404), so no key learns of another's objects. What hangs under an object (items,
messages, runs) is reached through it. Acts for `principal.current()`, like the registry,
so every query of these tables answers for the request's key without each caller saying so.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, true

from hearth.core import principal


def creator() -> str | None:
    """The `tenant` a new object gets: the key it is created for (None: an admin's static
    key or an open server)."""
    return principal.current().key_id


def visible(model: Any) -> ColumnElement[bool]:
    """The condition on `model`'s rows that the current key may reach."""
    key = principal.current()
    if key.admin or not hasattr(model, "tenant"):
        return true()
    return model.tenant == key.key_id if key.key_id is not None else false()
