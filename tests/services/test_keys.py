"""The keyring: which presented API keys are let in."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from hearth.services import keys
from hearth.services.keys import Keyring, digest


async def test_without_keys_authentication_is_off() -> None:
    ring = Keyring()
    assert not await ring.enabled()
    assert await ring.verify(None) and await ring.verify("") and await ring.verify("anything")


@pytest.mark.parametrize("presented", ["sk-one", "sk-two", "sk-ünï"])
async def test_each_configured_key_is_let_in(presented: str) -> None:
    ring = Keyring(["sk-one", "sk-two", "sk-ünï"])
    assert await ring.enabled()
    assert await ring.verify(presented)


@pytest.mark.parametrize("presented", [None, "", "sk-on", "sk-one ", "SK-ONE", "sk-onesk-two"])
async def test_anything_else_is_refused(presented: str | None) -> None:
    assert not await Keyring(("sk-one", "sk-two")).verify(presented)


def test_keys_are_held_as_sha256_digests_only() -> None:
    assert digest("sk-ünï") == hashlib.sha256("sk-ünï".encode()).digest()
    ring = Keyring(["sk-secret"])
    assert "sk-secret" not in repr(vars(ring))


async def test_every_key_is_compared_whichever_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    """No early exit: how long a check takes does not tell which key matched."""
    compared: list[bytes] = []
    real = hmac.compare_digest

    def compare(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(keys.hmac, "compare_digest", compare)
    ring = Keyring(["a", "b", "c"])
    assert await ring.verify("a")
    assert compared == [digest("a"), digest("b"), digest("c")]
