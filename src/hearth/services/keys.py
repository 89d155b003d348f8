"""API key checks. Keys are compared as SHA-256 digests in constant time, the same form
the database-backed keyring will store them in."""

from __future__ import annotations

import hashlib
import hmac


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class Keyring:
    """The keys configured by settings (`--api-key`). Empty: authentication is off."""

    def __init__(self, keys: list[str] | tuple[str, ...] = ()) -> None:
        self._digests = [digest(k) for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def verify(self, presented: str | None) -> bool:
        if not self._digests:
            return True
        if not presented:
            return False
        candidate = digest(presented)
        ok = False
        for known in self._digests:  # no early exit: time does not depend on which matched
            ok |= hmac.compare_digest(candidate, known)
        return ok
