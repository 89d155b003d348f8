"""The gate's decision, without a server: normal form, open paths, where keys come from."""

from __future__ import annotations

import asyncio

import pytest

from hearth.api import auth
from hearth.api.auth import Verdict
from hearth.core import principal
from hearth.core.config import Settings
from hearth.core.errors import StoreUnavailable
from hearth.core.principal import ANONYMOUS, OPEN, STATIC
from hearth.services.keys import Keyring

KEY = "sk-unit-test-key"
KEYS = Keyring([KEY])
OPENED = auth.open_paths(Settings(api_keys=[KEY]))


def scope(path: str, kind: str = "http", *, protocols: tuple[str, ...] = (), **headers: str):  # type: ignore[no-untyped-def]
    raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return {"type": kind, "path": path, "headers": raw, "subprotocols": list(protocols)}


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        ("/v1/models", "/v1/models"),
        ("//v1/models", "/v1/models"),
        ("/v1//models/", "/v1/models"),
        ("/./v1/./models", "/v1/models"),
        ("/health/../v1/models", "/v1/models"),
        ("/../../v1/models", "/v1/models"),
        ("", "/"),
        ("//", "/"),
    ],
)
def test_normalise(path: str, normal: str) -> None:
    assert auth.normalise(path) == normal


def test_only_paths_in_normal_form_are_open() -> None:
    for path in ("/", "/health", "/ui/app.js", "/ui/deep/file.css"):
        assert auth.is_open(path, OPENED), path
    closed = ["//health", "/health/", "/HEALTH", "/ui/../v1/models", "/ui", "/ui/"]
    closed += ["/v1/models/../../health", "/metrics", "/docs", "/openapi.json", "/v1/ws"]
    for path in closed:
        assert not auth.is_open(path, OPENED), path


def test_operator_opens_metrics_and_docs() -> None:
    assert auth.open_paths(Settings(open_metrics=True)) == auth.ALWAYS_OPEN | {"/metrics"}
    assert auth.open_paths(Settings(open_docs=True)) == auth.ALWAYS_OPEN | auth.DOCS_PATHS


def test_where_the_key_comes_from() -> None:
    assert auth.presented_key(scope("/", authorization=f"Bearer {KEY}")) == KEY
    assert auth.presented_key(scope("/", x_api_key=KEY)) == KEY
    # Bearer first; a scheme other than Bearer is no key.
    both = scope("/", authorization="Bearer first-key", x_api_key="second-key")
    assert auth.presented_key(both) == "first-key"
    assert auth.presented_key(scope("/", authorization=f"Basic {KEY}")) is None
    # The subprotocol counts only for a WebSocket.
    assert auth.presented_key(scope("/", protocols=(f"bearer.{KEY}",))) is None
    offered = scope("/v1/ws", "websocket", protocols=("chat", f"bearer.{KEY}"))
    assert auth.presented_key(offered) == KEY
    assert auth.presented_key(scope("/v1/ws", "websocket", protocols=("bearer.",))) is None


async def test_decide() -> None:
    assert (await auth.decide(scope("/v1/models"), KEYS, OPENED)).verdict is Verdict.MISSING
    wrong = scope("/v1/models", x_api_key="wrong-key")
    assert (await auth.decide(wrong, KEYS, OPENED)).verdict is Verdict.WRONG
    granted = await auth.decide(scope("/v1/models", x_api_key=KEY), KEYS, OPENED)
    assert granted == auth.Decision(Verdict.GRANTED, STATIC)  # a static key: the operator's
    assert await auth.decide(scope("/health"), KEYS, OPENED) == auth.Decision(Verdict.OPEN)
    # An open path still acts for a good key it was given, but never for a wrong one.
    keyed_health = await auth.decide(scope("/health", x_api_key=KEY), KEYS, OPENED)
    assert keyed_health == auth.Decision(Verdict.OPEN, STATIC)
    wrong_health = await auth.decide(scope("/health", x_api_key="sk-no"), KEYS, OPENED)
    assert wrong_health.principal is ANONYMOUS
    unkeyed = await auth.decide(scope("/v1/models"), Keyring(), OPENED)
    assert unkeyed == auth.Decision(Verdict.OPEN, OPEN)
    # an auth frame's non-string key
    assert (await auth.check_key(KEYS, 12345678)).verdict is Verdict.WRONG
    assert not Verdict.MISSING.allowed and not Verdict.WRONG.allowed


class Unreachable:
    """Stored keys in a database that is down."""

    async def any(self) -> bool:
        raise StoreUnavailable("The database is unavailable at the moment; retry shortly.")


async def test_a_key_database_out_of_reach_is_a_503_not_an_open_door() -> None:
    reached: list[str] = []

    async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        reached.append(scope["path"])

    gate = auth.AuthGate(app, Keyring(stored=Unreachable()), Settings())  # type: ignore[arg-type]
    sent: list[dict[str, object]] = []

    async def send(message) -> None:  # type: ignore[no-untyped-def]
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    await gate(scope("/v1/models", x_api_key="hth_whatever") | {"method": "GET"}, receive, send)
    assert reached == []
    assert sent[0]["status"] == 503
    await gate(scope("/health") | {"method": "GET"}, receive, send)  # open paths stay open
    assert reached == ["/health"]


async def test_the_route_acts_for_the_key_and_surface() -> None:
    seen: list[tuple[str, str]] = []

    async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        seen.append((principal.current().name, principal.surface()))

    gate = auth.AuthGate(app, KEYS, Settings(api_keys=[KEY]))

    async def call(path: str) -> None:
        async def run() -> None:  # each request is its own task, as under uvicorn
            await gate(scope(path, authorization=f"Bearer {KEY}") | {"method": "POST"}, None, None)  # type: ignore[arg-type]

        await asyncio.create_task(run())

    await call("/api/chat")
    await call("//v1/responses")
    assert seen == [("static", "ollama"), ("static", "responses")]
