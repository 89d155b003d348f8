"""What Hearth's own log lines hold: never an API key (right or wrong, from a header, a
query string, a subprotocol or an auth frame), and no prompt or reply text, also when a
request fails, unless --log-prompts."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from hearth.app import create_app
from hearth.engine.fake import FakeBackend
from tests.conftest import make_settings, registry_of

KEY = "sk-the-real-key-0001"
WRONG = "sk-a-wrong-key-0002"
PROMPT = "my bank password is hunter2"
REPLY = "one two three four five six"


class Exploding(FakeBackend):
    async def start(self, request):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    registry = registry_of(
        FakeBackend("ok", REPLY),
        FakeBackend("fails-midway", REPLY, fail_after=3),
        Exploding("explodes"),
    )
    settings = make_settings(tmp_path, api_keys=[KEY])
    app = create_app(settings, registry, preload=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _chat(model: str, stream: bool = False) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": stream}


def test_no_key_and_no_prompt_in_any_log_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good = {"Authorization": f"Bearer {KEY}"}
    for headers in ({"Authorization": f"Bearer {WRONG}"}, {"x-api-key": WRONG}, {}):
        assert client.get(f"/v1/models?api_key={WRONG}&key={KEY}", headers=headers).status_code
    for model in ("ok", "fails-midway", "explodes"):
        for stream in (False, True):
            client.post(f"/v1/chat/completions?key={KEY}", json=_chat(model, stream), headers=good)
            client.post("/api/chat", json=_chat(model, stream), headers={"x-api-key": KEY})
    with client.websocket_connect("/v1/ws", subprotocols=[f"bearer.{WRONG}"]) as ws:
        ws.send_json({"type": "auth", "key": WRONG})
        with pytest.raises(WebSocketDisconnect):
            ws.receive_json()
    with client.websocket_connect("/v1/ws") as ws:
        ws.send_json({"type": "auth", "key": KEY})
        assert ws.receive_json()["type"] == "authenticated"
        for model in ("fails-midway", "explodes"):
            ws.send_json({"type": "chat", "id": model, **_chat(model)})
            while ws.receive_json()["type"] == "delta":
                pass
    # The server's side only (the test's own HTTP client logs the URLs it calls).
    server = ("hearth", "uvicorn", "starlette", "fastapi", "sqlalchemy", "aiosqlite")
    logged = "\n".join(
        caplog.handler.format(r) for r in caplog.records if r.name.startswith(server)
    )
    assert "unhandled error" in logged or "engine error" in logged  # failures were logged
    for secret in (KEY, WRONG, PROMPT, REPLY, "hunter2"):
        assert secret not in logged, secret


def test_a_configured_origin_may_open_the_socket_without_a_key(tmp_path: Path) -> None:
    registry = registry_of(FakeBackend("ok"))
    allowed = "https://chat.example"
    settings = make_settings(tmp_path, cors_origins=[allowed])
    with TestClient(create_app(settings, registry, preload=False)) as client:
        with client.websocket_connect("/v1/ws", headers={"origin": allowed}) as ws:
            ws.send_json({"type": "ping"})
            assert ws.receive_json() == {"type": "pong"}
        evil = {"origin": "https://evil.example"}
        with pytest.raises(WebSocketDisconnect), client.websocket_connect("/v1/ws", headers=evil):
            pass
