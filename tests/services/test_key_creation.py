"""The checks and the row a new key gets, shared by `hearth keys create` and POST
/admin/keys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hearth.core.errors import InvalidRequest
from hearth.services.key_creation import KeySpec, build, expiry, models_list
from hearth.services.keys import digest

NOW = datetime(2026, 6, 1, tzinfo=UTC).timestamp()


def test_a_key_and_its_row() -> None:
    spec = KeySpec(
        name="team", rpm=60, tpm=5000, max_concurrent=2, budget_tokens=10**12,
        budget_period="week", models=["a", "b"], expires="2027-01-31", admin=True,
    )  # fmt: skip
    key, row = build(spec, NOW)
    assert key.startswith("hth_") and row.prefix == key[:12]
    assert row.digest == digest(key).hex() and key not in repr(vars(row))
    assert (row.name, row.admin, row.rpm, row.tpm) == ("team", True, 60, 5000)
    assert row.max_concurrent == 2
    assert (row.budget_tokens, row.budget_period, row.models) == (10**12, "week", ["a", "b"])
    assert row.expires_at == datetime(2027, 1, 31, tzinfo=UTC).timestamp()
    assert row.id.startswith("key_") and build(spec, NOW)[1].id != row.id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("2027-01-31", datetime(2027, 1, 31, tzinfo=UTC)),
        ("2027-01-31T18:00:00+01:00", datetime(2027, 1, 31, 17, tzinfo=UTC)),
        ("2027-01-31T18:00", datetime(2027, 1, 31, 18, tzinfo=UTC)),  # UTC when not said
    ],
)
def test_expiry_is_a_date_or_an_iso_time(text: str | None, expected: datetime | None) -> None:
    assert expiry(text, NOW) == (None if expected is None else int(expected.timestamp()))


@pytest.mark.parametrize(
    ("spec", "param", "words"),
    [
        (KeySpec("x", expires="2020-01-01"), "expires", "in the past"),
        (KeySpec("x", expires="soon"), "expires", "is not a date"),
        (KeySpec("x", budget_tokens=10), "budget_period", "go together"),
        (KeySpec("x", budget_period="day"), "budget_period", "go together"),
        (KeySpec("x", budget_tokens=10, budget_period="year"), "budget_period", "day, week"),
        (KeySpec("x", rpm=0), "rpm", "from 1 to"),
        (KeySpec("x", tpm=2**31), "tpm", "from 1 to"),
        (KeySpec("x", max_concurrent=-1), "max_concurrent", "from 1 to"),
        (KeySpec("x", budget_tokens=2**63, budget_period="day"), "budget_tokens", "from 1 to"),
        (KeySpec(" "), "name", "printable"),
        (KeySpec("a\x00b"), "name", "printable"),
        (KeySpec("x" * 129), "name", "1 to 128"),
        (KeySpec("x", models=[]), "models", "at least one"),
        (KeySpec("x", models=["a", " "]), "models", "at least one"),
    ],
)
def test_a_spec_that_cannot_be_a_key(spec: KeySpec, param: str, words: str) -> None:
    with pytest.raises(InvalidRequest, match=words) as raised:
        build(spec, NOW)
    assert raised.value.param == param and raised.value.status == 400


def test_models_from_a_comma_list() -> None:
    assert models_list("qwen, llama,") == ["qwen", "llama"]
    assert models_list(" , ") is None and models_list(None) is None
