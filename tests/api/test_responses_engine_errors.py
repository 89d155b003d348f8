"""Responses whose generation fails, with a scripted backend: the failure is saved and
shown in the API's shape, streamed or not, in the background or not."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from hearth.engine.fake import FakeBackend
from tests.api.test_error_shapes import Exploding, registry_of
from tests.conftest import LiveServer, make_settings


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    registry = registry_of(
        FakeBackend("fails-midway", "one two three four five six", fail_after=3),
        Exploding("explodes"),
    )
    settings = make_settings(Path(tmp_path_factory.mktemp("fake-responses")))
    live = LiveServer(settings, registry).start()
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="x", max_retries=0) as c:
        yield c
    live.stop()


def _settled(client: openai.OpenAI, response_id: str) -> openai.types.responses.Response:
    deadline = time.monotonic() + 30
    while (got := client.responses.retrieve(response_id)).status in {"queued", "in_progress"}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return got


def test_failure_mid_stream_ends_with_response_failed(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="fails-midway", input="hi", stream=True))
    assert events[-1].type == "response.failed"
    failed = events[-1].response
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == "server_error" and "scripted engine failure" in failed.error.message
    assert failed.output_text == "one two three"
    stored = client.responses.retrieve(failed.id)
    assert stored.status == "failed" and stored.output_text == "one two three"


def test_failure_without_stream_is_a_500(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as err:
        client.responses.create(model="fails-midway", input="hi")
    assert "scripted engine failure" in err.value.message


def test_background_failures_are_saved(client: openai.OpenAI) -> None:
    midway = client.responses.create(model="fails-midway", input="hi", background=True)
    got = _settled(client, midway.id)
    assert got.status == "failed" and got.output_text == "one two three"
    boom = client.responses.create(model="explodes", input="hi", background=True)
    got = _settled(client, boom.id)
    assert got.status == "failed" and got.error is not None and got.output == []
    assert "secret" not in got.error.message  # internal details stay in the log
