"""/admin/keys against a real server with the operator's static key (an admin key): a
key created over HTTP works with the `openai` client, is never shown again, and is
refused at once when revoked; non-admin keys get 403; bad input 400, a taken name 409."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from hearth.engine.fake import FakeBackend
from hearth.services.keys import digest
from tests.conftest import MODEL, LiveServer, make_settings, registry_of
from tests.e2e.test_api_keys import chat

ADMIN = "sk-operator"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("admin"), api_keys=[ADMIN])
    live = LiveServer(settings, registry_of(FakeBackend(MODEL))).start()
    yield live
    live.stop()


@pytest.fixture
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=f"{server.url}/admin", headers=headers, timeout=30) as c:
        yield c


def create(client: httpx.Client, name: str, **fields: Any) -> dict[str, Any]:
    reply = client.post("/keys", json={"name": name, **fields})
    assert reply.status_code == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


def test_a_created_key_works_and_is_shown_only_once(
    server: LiveServer, admin: httpx.Client
) -> None:
    created = create(
        admin, "app", rpm=60, tpm=5000, max_concurrent=2, budget_tokens=100_000,
        budget_period="week", models=[MODEL], expires="2999-01-31",
    )  # fmt: skip
    key = created["key"]
    assert key.startswith("hth_") and created["prefix"] == key[:12]
    assert created["object"] == "api_key" and created["id"].startswith("key_")
    assert (created["rpm"], created["tpm"], created["max_concurrent"]) == (60, 5000, 2)
    assert (created["budget_tokens"], created["budget_period"]) == (100_000, "week")
    assert created["models"] == [MODEL] and created["admin"] is False
    assert (
        created["expires_at"] == datetime(2999, 1, 31, tzinfo=UTC).timestamp()
        and created["revoked_at"] is None
    )
    assert chat(server, key)

    listed = admin.get("/keys")
    assert listed.status_code == 200 and listed.json()["object"] == "list"
    [row] = [k for k in listed.json()["data"] if k["name"] == "app"]
    assert {k: v for k, v in created.items() if k not in {"key", "last_used_at"}} == {
        k: v for k, v in row.items() if k != "last_used_at"
    }
    for text in (listed.text, admin.get("/keys/app").text, admin.get(f"/keys/{key[:12]}").text):
        assert key not in text and digest(key).hex() not in text and '"key"' not in text
    assert admin.get(f"/keys/{key[:12]}").json()["name"] == "app"


def test_a_revoked_key_is_refused_on_its_next_request(
    server: LiveServer, admin: httpx.Client
) -> None:
    key = create(admin, "short-lived")["key"]
    assert chat(server, key)  # its good answer is now cached
    revoked = admin.post("/keys/short-lived/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    with pytest.raises(openai.AuthenticationError):
        chat(server, key)
    again = admin.post(f"/keys/{key[:12]}/revoke")  # by prefix; keeps its first time
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert admin.get("/keys/short-lived").json()["revoked_at"] is not None  # still listed


def test_only_admin_keys_may_use_it(server: LiveServer, admin: httpx.Client) -> None:
    plain = create(admin, "plain")["key"]
    boss = create(admin, "boss", admin=True)["key"]

    def status(key: str | None, method: str, path: str, body: Any = None) -> int:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        url = f"{server.url}/admin{path}"
        reply = httpx.request(method, url, headers=headers, json=body, timeout=30)
        if reply.status_code == 403:
            assert reply.json()["error"]["type"] == "permission_error"
        return reply.status_code

    for key, refused in [(plain, 403), (None, 401), ("hth_wrong", 401)]:
        assert status(key, "GET", "/keys") == refused
        assert status(key, "GET", "/keys/plain") == refused
        assert status(key, "POST", "/keys", {"name": "sneaky"}) == refused
        assert status(key, "POST", "/keys/boss/revoke") == refused
    assert status(boss, "GET", "/keys") == 200
    assert status(boss, "POST", "/keys", {"name": "by-boss"}) == 201
    rows = {k["name"]: k for k in admin.get("/keys").json()["data"]}
    assert "sneaky" not in rows and "by-boss" in rows and rows["boss"]["revoked_at"] is None
    assert chat(server, plain)  # a 403 does not touch the key


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "x", "expires": "2020-01-01"}, "expires"),
        ({"name": "x", "expires": "soon"}, "expires"),
        ({"name": "x", "budget_tokens": 10}, "budget_period"),
        ({"name": "x", "budget_tokens": 10, "budget_period": "year"}, "budget_period"),
        ({"name": "x", "rpm": 0}, "rpm"),
        ({"name": "x", "tpm": "many"}, "tpm"),
        ({"name": "x", "max_concurrent": 2**40}, "max_concurrent"),
        ({"name": "x", "models": []}, "models"),
        ({"name": "x", "models": "a,b"}, "models"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "a\u0000b"}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"rpm": 5}, "name"),
        ({"name": "x", "surprise": 1}, "surprise"),
        ({"name": "x", "admin": "maybe"}, "admin"),
    ],
)
def test_bad_input_is_a_400_in_openais_shape(
    admin: httpx.Client, body: dict[str, Any], param: str
) -> None:
    reply = admin.post("/keys", json=body)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert error["message"]
    assert all(k["name"] != "x" for k in admin.get("/keys").json()["data"])


def test_a_taken_name_is_a_409_and_an_unknown_key_a_404(admin: httpx.Client) -> None:
    create(admin, "twice")
    reply = admin.post("/keys", json={"name": "twice"})
    assert reply.status_code == 409 and "twice" in reply.json()["error"]["message"]
    assert len([k for k in admin.get("/keys").json()["data"] if k["name"] == "twice"]) == 1
    for reply in (admin.get("/keys/nobody"), admin.post("/keys/nobody/revoke")):
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "not_found"
    assert admin.get("/keys/a%00b").status_code == 404


def test_the_api_is_documented(server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    schema = httpx.get(f"{server.url}/openapi.json", headers=headers, timeout=30).json()
    paths = schema["paths"]
    assert set(paths["/admin/keys"]) == {"get", "post"}
    assert "get" in paths["/admin/keys/{ref}"] and "post" in paths["/admin/keys/{ref}/revoke"]
    created = schema["components"]["schemas"]["CreatedKey"]["properties"]
    assert (
        "key" in created and "key" not in schema["components"]["schemas"]["KeyInfo"]["properties"]
    )
    assert {"name", "rpm", "expires", "admin"} <= set(
        schema["components"]["schemas"]["CreateKey"]["properties"]
    )


def test_with_authentication_off_the_admin_api_is_open(tmp_path: Path) -> None:
    live = LiveServer(make_settings(tmp_path), registry_of(FakeBackend(MODEL))).start()
    try:
        reply = httpx.post(f"{live.url}/admin/keys", json={"name": "first"}, timeout=30)
        assert reply.status_code == 201
        key = reply.json()["key"]
        # The first key turns authentication on (within the keyring's second).
        with httpx.Client(base_url=f"{live.url}/admin", timeout=30) as client:
            deadline = time.monotonic() + 2
            while client.get("/keys").status_code != 401:
                assert time.monotonic() < deadline, "still open"
                time.sleep(0.05)
            as_first = client.get("/keys", headers={"Authorization": f"Bearer {key}"})
            assert as_first.status_code == 403  # not an admin key
    finally:
        live.stop()
