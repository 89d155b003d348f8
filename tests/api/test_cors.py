"""CORS: no headers at all unless origins are configured; then exactly those origins, also
on a preflight without a key and on the gate's refusals."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from hearth.app import create_app
from hearth.engine.fake import FakeBackend
from tests.conftest import make_settings, registry_of

KEY = "sk-cors-test-key"
ALLOWED = "https://chat.example:8443"
OTHER = "https://evil.example"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


def _client(tmp_path: Path, **settings: object) -> TestClient:
    app = create_app(
        make_settings(tmp_path, **settings), registry_of(FakeBackend("ok")), preload=False
    )
    return TestClient(app)


def _cors_headers(headers: object) -> list[str]:
    return [k for k in headers if k.lower().startswith("access-control-")]  # type: ignore[attr-defined]


def test_no_origins_configured_means_no_cors_headers(tmp_path: Path) -> None:
    with _client(tmp_path) as client:
        r = client.get("/v1/models", headers={"Origin": ALLOWED})
        assert r.status_code == 200
        assert _cors_headers(r.headers) == []
        r = client.options("/v1/chat/completions", headers={"Origin": ALLOWED, **PREFLIGHT})
        assert _cors_headers(r.headers) == []
        assert r.status_code == 405  # no preflight answer: the browser refuses the call


def test_configured_origins_and_only_those(tmp_path: Path) -> None:
    with _client(tmp_path, cors_origins=[ALLOWED], api_keys=[KEY]) as client:
        # The preflight carries no key and is answered all the same.
        r = client.options("/v1/chat/completions", headers={"Origin": ALLOWED, **PREFLIGHT})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == ALLOWED
        assert "authorization" in r.headers["access-control-allow-headers"].lower()
        r = client.get("/v1/models", headers={"Origin": ALLOWED, "Authorization": f"Bearer {KEY}"})
        assert (r.status_code, r.headers["access-control-allow-origin"]) == (200, ALLOWED)
        # A refusal is readable by the page that made the call.
        r = client.get("/v1/models", headers={"Origin": ALLOWED})
        assert (r.status_code, r.headers["access-control-allow-origin"]) == (401, ALLOWED)
        # Another origin gets no grant.
        r = client.options("/v1/chat/completions", headers={"Origin": OTHER, **PREFLIGHT})
        assert r.status_code == 400
        assert "access-control-allow-origin" not in r.headers
        r = client.get("/v1/models", headers={"Origin": OTHER, "Authorization": f"Bearer {KEY}"})
        assert r.status_code == 200
        assert "access-control-allow-origin" not in r.headers
