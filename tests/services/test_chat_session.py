"""ChatSession with the scripted backend: the paths the real model cannot be made to take
on demand (an engine failure mid-reply, a refused start), and its bookkeeping."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hearth.core.errors import Conflict, ContextLengthExceeded, EngineError, NotFound
from hearth.engine.fake import FakeBackend
from hearth.engine.types import ChatMessage, GenerationRequest
from hearth.services.chat_session import ChatSession, Reply
from tests.conftest import registry_of


class Exploding(FakeBackend):
    async def start(self, request):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internal detail")


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.ended: dict[str, asyncio.Event] = {}
        self.replies: dict[str, Reply] = {}

    def _end(self, rid: str) -> None:
        self.ended.setdefault(rid, asyncio.Event()).set()

    async def delta(self, rid: str, text: str) -> None:
        self.events.append(("delta", rid, text))

    async def reasoning(self, rid: str, text: str) -> None:
        self.events.append(("reasoning", rid, text))

    async def done(self, rid: str, reply: Reply) -> None:
        self.events.append(("done", rid, reply.finish_reason, reply.usage, reply.timing))
        self.replies[rid] = reply
        self._end(rid)

    async def failed(self, rid: str, err: Exception) -> None:
        self.events.append(("failed", rid, err))
        self._end(rid)

    async def wait(self, rid: str) -> None:
        await asyncio.wait_for(self.ended.setdefault(rid, asyncio.Event()).wait(), 10)


def request(model: str, max_tokens: int | None = None) -> GenerationRequest:
    return GenerationRequest(
        model=model, messages=(ChatMessage("user", "hi there"),), max_tokens=max_tokens
    )


@pytest.fixture
def backends() -> dict[str, FakeBackend]:
    return {
        "ok": FakeBackend("ok", "one two three four"),
        "slow": FakeBackend("slow", "word " * 200, context_length=4096, token_delay=0.01),
        "fails": FakeBackend("fails", "one two three four", fail_after=2),
        "explodes": Exploding("explodes"),
    }


@pytest.fixture
def session(backends: dict[str, FakeBackend]) -> tuple[ChatSession, Recorder]:
    recorder = Recorder()
    return ChatSession(registry_of(*backends.values()), recorder), recorder


async def test_a_reply_streams_then_is_done(session: tuple[ChatSession, Recorder]) -> None:
    chat, rec = session
    chat.start("a", request("ok"))
    await rec.wait("a")
    assert [e[2] for e in rec.events if e[0] == "delta"] == ["one", " two", " three", " four"]
    kind, rid, reason, usage, timing = rec.events[-1]
    assert (kind, rid, reason) == ("done", "a", "stop")
    assert usage.completion_tokens == 4 and usage.prompt_tokens == 3  # "user:", "hi", "there"
    assert timing.first_token_s is not None and timing.generation_s >= 0
    assert rec.replies["a"].text == "one two three four"
    assert chat.in_flight == 0


async def test_engine_failure_mid_reply_is_reported_once(
    session: tuple[ChatSession, Recorder],
) -> None:
    chat, rec = session
    chat.start("f", request("fails"))
    await rec.wait("f")
    assert [e[0] for e in rec.events] == ["delta", "delta", "failed"]
    err = rec.events[-1][2]
    assert isinstance(err, EngineError) and "scripted engine failure" in err.message


async def test_a_refused_start_is_reported(session: tuple[ChatSession, Recorder]) -> None:
    chat, rec = session
    chat.start("big", request("ok", max_tokens=10_000))
    await rec.wait("big")
    assert rec.events == [("failed", "big", rec.events[0][2])]
    assert isinstance(rec.events[0][2], ContextLengthExceeded)


async def test_duplicate_and_unknown_ids(
    session: tuple[ChatSession, Recorder], backends: dict[str, FakeBackend]
) -> None:
    chat, rec = session
    chat.start("x", request("slow"))  # cancelled below before its task has even run
    with pytest.raises(Conflict) as info:
        chat.start("x", request("ok"))
    assert info.value.code == "duplicate_id"
    with pytest.raises(NotFound):
        await chat.cancel("nope")
    await chat.cancel("x")
    assert rec.events[-1][:3] == ("done", "x", "cancelled")
    assert rec.events[-1][3] is None and chat.in_flight == 0
    assert backends["slow"].running == 0
    rec.ended.pop("x")
    chat.start("x", request("ok"))  # the id is free again
    await rec.wait("x")
    assert rec.events[-1][:3] == ("done", "x", "stop")


async def test_close_cancels_everything_silently(
    session: tuple[ChatSession, Recorder], backends: dict[str, FakeBackend]
) -> None:
    chat, rec = session
    for rid in ("a", "b", "c"):
        chat.start(rid, request("slow"))
    await asyncio.sleep(0.2)  # a few of their 200 tokens, 10 ms apart
    assert backends["slow"].running == 3
    stopped = await chat.close()
    assert backends["slow"].running == 0 and chat.in_flight == 0
    assert not [e for e in rec.events if e[0] != "delta"]  # nobody left to tell
    # What each had streamed, for the caller to keep.
    assert set(stopped) == {"a", "b", "c"}
    for rid, text in stopped.items():
        assert text and text == "".join(e[2] for e in rec.events if e[1] == rid)


async def test_a_cancelled_reply_keeps_its_text(session: tuple[ChatSession, Recorder]) -> None:
    chat, rec = session
    chat.start("s", request("slow"))
    await asyncio.sleep(0.1)  # several of its words, 10 ms apart
    await chat.cancel("s")
    reply = rec.replies["s"]
    streamed = "".join(e[2] for e in rec.events if e[0] == "delta")
    assert reply.finish_reason == "cancelled" and reply.usage is None
    assert reply.text == streamed and reply.text.startswith("word word")


async def test_a_bug_in_the_engine_is_a_generic_error(
    session: tuple[ChatSession, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    chat, rec = session
    chat.start("e", request("explodes"))
    await rec.wait("e")
    [(kind, rid, err)] = rec.events
    assert (kind, rid) == ("failed", "e") and "secret" not in err.message
    assert err.message == "The server had an error while processing your request."
    assert "secret internal detail" in caplog.text  # the operator sees it in the log
    assert chat.in_flight == 0
