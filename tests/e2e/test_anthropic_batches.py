"""Message Batches with the real anthropic SDK against a real server and the bundled
model: a batch run to its end and its results read, pages, cancel, delete, bad input,
an interactive request going ahead of a batch, and batches kept per key."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from hearth.engine.fake import FakeBackend
from tests.conftest import MODEL, LiveServer, make_settings, registry_of
from tests.e2e.test_admin_keys import create as create_key

pytestmark = pytest.mark.timeout(300)

ADMIN = "sk-operator"
LONG = "Write a very long story about a lighthouse keeper and the sea."


@pytest.fixture(scope="module")
def claude(live_server: LiveServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=live_server.url, api_key="unused", max_retries=0) as c:
        yield c


def ask(text: str, max_tokens: int = 8, model: str = MODEL) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": max_tokens,
        "temperature": 0,
        "messages": [{"role": "user", "content": text}],
    }


def ended(client: anthropic.Anthropic, batch_id: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        assert time.monotonic() < deadline, batch
        time.sleep(0.2)


def test_a_batch_runs_to_its_end_and_its_results_parse(
    claude: anthropic.Anthropic, live_server: LiveServer
) -> None:
    requests = [
        {"custom_id": f"q-{i}", "params": ask(f"Say the number {i}.")} for i in range(19)
    ] + [{"custom_id": "no_model", "params": ask("Hi", model="no-such-model")}]
    batch = claude.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert batch.id.startswith("msgbatch_") and batch.type == "message_batch"
    assert batch.processing_status == "in_progress" and batch.results_url is None
    assert batch.request_counts.processing + batch.request_counts.succeeded <= 20
    assert (batch.expires_at - batch.created_at).total_seconds() == 24 * 3600
    done = ended(claude, batch.id)
    counts = done.request_counts
    assert (counts.succeeded, counts.errored, counts.processing) == (19, 1, 0)
    assert counts.canceled == counts.expired == 0
    assert done.ended_at is not None and done.ended_at >= done.created_at
    assert done.results_url == f"{live_server.url}/v1/messages/batches/{batch.id}/results"
    results = {r.custom_id: r.result for r in claude.messages.batches.results(batch.id)}
    assert list(results) == [r["custom_id"] for r in requests]
    for i in range(19):
        result = results[f"q-{i}"]
        assert result.type == "succeeded", result
        message = result.message
        assert message.id.startswith("msg_") and message.model == MODEL
        assert message.content[0].type == "text" and message.content[0].text
        assert 0 < message.usage.output_tokens <= 8
    failed = results["no_model"]
    assert failed.type == "errored" and failed.error.error.type == "not_found_error"
    assert "no-such-model" in failed.error.error.message


def test_batches_are_listed_newest_first_in_pages(claude: anthropic.Anthropic) -> None:
    made = [
        claude.messages.batches.create(requests=[{"custom_id": "a", "params": ask("Hi", 2)}]).id  # type: ignore[list-item]
        for _ in range(3)
    ]
    first = claude.messages.batches.list(limit=2)
    assert [b.id for b in first.data] == made[::-1][:2] and first.has_more
    assert first.first_id == made[2] and first.last_id == made[1]
    second = claude.messages.batches.list(limit=2, after_id=made[1])
    assert second.data[0].id == made[0]
    back = claude.messages.batches.list(limit=1, before_id=made[1])
    assert [b.id for b in back.data] == [made[2]]
    for batch_id in made:
        ended(claude, batch_id)


def test_a_batch_cancelled_mid_way_and_deleted(claude: anthropic.Anthropic) -> None:
    requests = [{"custom_id": f"long-{i}", "params": ask(LONG, 300)} for i in range(10)]
    batch = claude.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError):  # not ended: not deletable yet
        claude.messages.batches.delete(batch.id)
    cancelled = claude.messages.batches.cancel(batch.id)
    assert cancelled.cancel_initiated_at is not None
    assert cancelled.processing_status in {"canceling", "ended"}
    done = ended(claude, batch.id)
    assert done.request_counts.canceled >= 6  # at most a model's slots (4) had started
    assert done.request_counts.canceled + done.request_counts.succeeded == 10
    kinds = {r.result.type for r in claude.messages.batches.results(batch.id)}
    assert "canceled" in kinds and kinds <= {"canceled", "succeeded"}
    with pytest.raises(anthropic.BadRequestError):  # ended: nothing to cancel
        claude.messages.batches.cancel(batch.id)
    deleted = claude.messages.batches.delete(batch.id)
    assert deleted.id == batch.id and deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.batches.retrieve(batch.id)


def test_an_interactive_request_goes_ahead_of_a_batch_holding_every_slot(
    claude: anthropic.Anthropic, live_server: LiveServer
) -> None:
    requests = [{"custom_id": f"b{i}", "params": ask(LONG, 400)} for i in range(4)]
    batch = claude.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    deadline = time.monotonic() + 60
    while _running(live_server) < 4:  # the batch's requests hold all 4 slots
        assert time.monotonic() < deadline
        time.sleep(0.05)
    reply = claude.messages.create(**ask("Hi", 4))  # type: ignore[arg-type]
    assert reply.usage.output_tokens > 0
    # It ran while every batch request still ran: not one of them had to end first.
    during = claude.messages.batches.retrieve(batch.id).request_counts
    assert during.processing == 4, during
    claude.messages.batches.cancel(batch.id)


def _running(server: LiveServer) -> int:
    health = httpx.get(f"{server.url}/health").json()
    return sum(m.get("running", 0) for m in health["models"])


def test_bad_input_is_a_clear_400_or_404(
    claude: anthropic.Anthropic, live_server: LiveServer
) -> None:
    one = {"custom_id": "x", "params": ask("Hi")}
    cases: list[tuple[list[Any], str]] = [
        ([one, one], "custom_id 'x' is used by more than one request"),
        ([], "requests"),
        ([{"custom_id": "bad id!", "params": ask("Hi")}], "custom_id"),
        (
            [one, {"custom_id": "y", "params": {"model": MODEL, "messages": []}}],
            "requests[1].params",
        ),
        ([{"custom_id": "s", "params": {**ask("Hi"), "stream": True}}], "stream"),
    ]
    for requests, words in cases:
        with pytest.raises(anthropic.BadRequestError) as caught:
            claude.messages.batches.create(requests=requests)
        assert words in caught.value.message, caught.value.message
        assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    many = [{"custom_id": f"r{i}", "params": ask("Hi")} for i in range(10_001)]
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.batches.create(requests=many)  # type: ignore[arg-type]
    for call in (
        claude.messages.batches.retrieve,
        claude.messages.batches.cancel,
        claude.messages.batches.delete,
    ):
        with pytest.raises(anthropic.NotFoundError) as missing:
            call("msgbatch_nope")
        assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.batches.list(limit=0)
    running = claude.messages.batches.create(
        requests=[{"custom_id": "l", "params": ask(LONG, 300)}]
    )  # type: ignore[list-item]
    early = httpx.get(f"{live_server.url}/v1/messages/batches/{running.id}/results")
    assert early.status_code == 400 and "still in_progress" in early.text
    assert early.json()["type"] == "error"
    claude.messages.batches.cancel(running.id)


# ---- batches belong to the key that made them ------------------------------------------


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("batch-keys"), api_keys=[ADMIN])
    live = LiveServer(settings, registry_of(FakeBackend(MODEL))).start()
    yield live
    live.stop()


def test_a_batch_is_seen_only_by_its_key_and_admins(keyed: LiveServer) -> None:
    with httpx.Client(
        base_url=f"{keyed.url}/admin", headers={"Authorization": f"Bearer {ADMIN}"}
    ) as admin_http:
        keys = [create_key(admin_http, name)["key"] for name in ("owner", "other")]
    owner, other, admin = (
        anthropic.Anthropic(base_url=keyed.url, api_key=k, max_retries=0) for k in (*keys, ADMIN)
    )
    batch = owner.messages.batches.create(requests=[{"custom_id": "a", "params": ask("Hi")}])  # type: ignore[list-item]
    ended(owner, batch.id)
    assert [b.id for b in owner.messages.batches.list().data] == [batch.id]
    assert other.messages.batches.list().data == []
    for call in (other.messages.batches.retrieve, other.messages.batches.delete):
        with pytest.raises(anthropic.NotFoundError):
            call(batch.id)
    hidden = httpx.get(  # the results file too
        f"{keyed.url}/v1/messages/batches/{batch.id}/results",
        headers={"x-api-key": keys[1]},
        timeout=30,  # httpx's 5 s default is short on a loaded machine
    )
    assert hidden.status_code == 404
    assert admin.messages.batches.retrieve(batch.id).id == batch.id
    [line] = list(owner.messages.batches.results(batch.id))
    assert line.result.type == "succeeded"
    # Its request's usage is the owner's, through the Anthropic surface.
    usage = httpx.get(
        f"{keyed.url}/admin/usage",
        params={"key": "owner"},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=30,
    ).json()["data"]
    assert [(u["key"], u["model"], u["requests"]) for u in usage] == [("owner", MODEL, 1)]
    assert usage[0]["completion_tokens"] > 0
    for client in (owner, other, admin):
        client.close()
