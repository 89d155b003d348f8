"""api/key_limits.py: OpenAI's reset format, and which requests the gate counts (the API
surfaces of keys with limits; nothing else reaches the database)."""

from __future__ import annotations

from typing import Any

import pytest

from hearth.api.key_limits import KeyLimitGate, duration
from hearth.core.principal import Limits, Principal, act_as
from hearth.services.limits import Limiter, current_lease
from hearth.store.limits import Counters, Take
from tests.api.asgi import Client, body, http_scope


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0ms"), (0.0199, "20ms"), (1, "1s"), (8.64, "8.64s"), (360, "6m0s"), (3723.5, "1h2m3.5s")],
)
def test_reset_durations_as_openai_writes_them(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


class CountingStore:
    """RateLimits' interface: admits everything, counts the takes."""

    def __init__(self) -> None:
        self.takes = 0

    async def take(self, key_id: str, take: Take, hold: object = None) -> Counters:
        self.takes += 1
        return Counters(requests_tat=take.now + (take.requests or 0))

    async def counters(self, key_id: str) -> Counters:
        return Counters()


async def endpoint(scope: Any, receive: Any, send: Any) -> None:
    seen.append(current_lease() is not None)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


seen: list[bool] = []
LIMITED = Principal(name="k", key_id="key_1", limits=Limits(rpm=10))


async def call(store: CountingStore, principal: Principal, path: str) -> Client:
    gate = KeyLimitGate(endpoint, Limiter(store, clock=lambda: 1000.0))  # type: ignore[arg-type]
    act_as(principal)
    client = Client(body(b""))
    await gate(http_scope(path), client.receive, client.send)
    return client


async def test_only_the_api_requests_of_limited_keys_are_counted() -> None:
    store = CountingStore()
    seen.clear()
    free = Principal(name="free", key_id="key_2")
    assert (await call(store, free, "/v1/models")).status == 200
    assert (await call(store, LIMITED, "/health")).status == 200
    assert (await call(store, LIMITED, "/ui/app.js")).status == 200
    assert store.takes == 0 and seen == [False, False, False]
    answered = await call(store, LIMITED, "//v1/models/")  # however it is spelt
    assert store.takes == 1 and seen[-1] is True  # the route ran with the request's lease
    assert answered.headers["x-ratelimit-limit-requests"] == "10"
    assert answered.headers["x-ratelimit-remaining-requests"] == "9"
    assert answered.headers["x-ratelimit-reset-requests"] == "6s"
    ollama = await call(store, LIMITED, "/api/chat")
    assert store.takes == 2 and "x-ratelimit-limit-requests" not in ollama.headers
