"""Back-pressure and cancellation under load, through HTTP as clients see them."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import MODEL, LiveServer, make_settings
from tests.prometheus import Samples, delta, scrape

NEVER_END = {"0": -100, "2": -100}
ENDLESS = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Tell me a very long story."}],
    "max_tokens": 1500,
    "logit_bias": NEVER_END,
    "stream": True,
}


def counts(server: LiveServer) -> tuple[int, int]:
    model = httpx.get(f"{server.url}/health").json()["models"][0]
    return model["running"], model["waiting"]


def wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class Holder:
    """Streams ENDLESS in a thread, keeping a slot busy until `stop()`."""

    def __init__(self, url: str) -> None:
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self.thread.start()

    def _run(self, url: str) -> None:
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=ENDLESS, timeout=60) as r:
            for _ in r.iter_lines():
                if self.stop_flag.is_set():
                    return

    def stop(self) -> None:
        self.stop_flag.set()
        self.thread.join(timeout=30)


def one_slot_server(tmp_path: Path, queue_timeout: float) -> Iterator[LiveServer]:
    settings = make_settings(
        tmp_path, parallel=1, ctx_size=2048, max_queue=1, queue_timeout=queue_timeout
    )
    server = LiveServer(settings).start()
    yield server
    server.stop()


@pytest.fixture
def one_slot(tmp_path: Path) -> Iterator[LiveServer]:
    yield from one_slot_server(tmp_path, queue_timeout=1.0)


@pytest.fixture
def one_patient_slot(tmp_path: Path) -> Iterator[LiveServer]:
    # The queued request must still be waiting when the next one arrives, however slow
    # the machine: its timeout is far longer than the test's steps.
    yield from one_slot_server(tmp_path, queue_timeout=30.0)


def refusals(before: Samples, after: Samples, reason: str, status: int) -> tuple[float, float]:
    """How many more refusals /metrics shows: by the engine's reason, and by HTTP status."""
    route = {"method": "POST", "route": "/v1/chat/completions", "status": str(status)}
    return (
        delta(before, after, "hearth_requests_rejected_total", model=MODEL, reason=reason),
        delta(before, after, "hearth_http_requests_total", **route),
    )


def test_full_queue_is_429_with_retry_after(one_patient_slot: LiveServer) -> None:
    before = scrape(one_patient_slot.url)
    holder = Holder(one_patient_slot.url)
    queued_reply: list[httpx.Response] = []
    try:
        assert wait_for(lambda: counts(one_patient_slot)[0] == 1, 10)
        queued = threading.Thread(
            target=lambda: queued_reply.append(
                httpx.post(
                    f"{one_patient_slot.url}/v1/chat/completions",
                    json={**ENDLESS, "stream": False, "max_tokens": 2},
                    timeout=60,
                )
            )
        )
        queued.start()
        assert wait_for(lambda: counts(one_patient_slot)[1] == 1, 10)
        started = time.monotonic()
        with (
            openai.OpenAI(base_url=f"{one_patient_slot.url}/v1", api_key="x", max_retries=0) as c,
            pytest.raises(openai.RateLimitError) as info,
        ):
            c.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2
            )
        # At once: the queued request's own timeout is 30 s.
        assert time.monotonic() - started < 5.0
        assert info.value.response.headers["retry-after"] == "1"
        assert info.value.body["code"] == "server_overloaded"  # type: ignore[index]
        # What an operator alerts on: counted per model and reason.
        assert refusals(before, scrape(one_patient_slot.url), "queue_full", 429) == (1, 1)
    finally:
        holder.stop()
    # Once the slot frees, the request that was let into the queue is served.
    queued.join(timeout=60)
    assert queued_reply and queued_reply[0].status_code == 200


def test_waiting_past_the_timeout_is_503(one_slot: LiveServer) -> None:
    before = scrape(one_slot.url)
    holder = Holder(one_slot.url)
    try:
        assert wait_for(lambda: counts(one_slot)[0] == 1, 10)
        with (
            openai.OpenAI(base_url=f"{one_slot.url}/v1", api_key="x", max_retries=0) as c,
            pytest.raises(openai.InternalServerError) as info,
        ):
            c.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2
            )
        assert info.value.status_code == 503
        assert info.value.response.headers.get("retry-after")
        assert info.value.body["code"] == "server_overloaded"  # type: ignore[index]
        assert refusals(before, scrape(one_slot.url), "queue_timeout", 503) == (1, 1)
    finally:
        holder.stop()


def test_fifty_dropped_streams_free_everything(live_server: LiveServer) -> None:
    async def open_and_drop() -> None:
        async with httpx.AsyncClient(timeout=60) as http:

            async def one() -> None:
                async with http.stream(
                    "POST", f"{live_server.url}/v1/chat/completions", json=ENDLESS
                ) as r:
                    async for _ in r.aiter_lines():
                        pass

            tasks = [asyncio.create_task(one()) for _ in range(50)]
            loop = asyncio.get_running_loop()
            slots = live_server.state.settings.parallel
            ok = await loop.run_in_executor(
                None, wait_for, lambda: counts(live_server) == (slots, 50 - slots), 30
            )
            assert ok, counts(live_server)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(open_and_drop())
    # httpx leaves the socket of a stream cancelled mid-read to the garbage collector;
    # collect now so every client has really hung up, as a dropped client does.
    gc.collect()
    assert wait_for(lambda: counts(live_server) == (0, 0), 1.0), counts(live_server)
    reply = httpx.post(
        f"{live_server.url}/v1/chat/completions",
        json={**ENDLESS, "stream": False, "max_tokens": 3},
        timeout=30,
    ).json()
    assert reply["usage"]["completion_tokens"] == 3
