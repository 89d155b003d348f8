"""/api/chat and /api/generate through the real ollama client and the real model."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from datetime import datetime

import httpx
import ollama
import pytest

from tests.conftest import MODEL, LiveServer

HI = [{"role": "user", "content": "Say hello to me."}]
GREEDY = {"temperature": 0, "num_predict": 8}
# A raw prompt the model continues with numbers, not an end token, for a few tokens.
COUNTING = "1, 2, 3, 4, 5, 6,"
FINAL_FIELDS = {
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
}


def test_chat_not_streamed(ollama_client: ollama.Client) -> None:
    reply = ollama_client.chat(model=MODEL, messages=HI, stream=False, options=GREEDY)
    assert reply.model == MODEL
    assert reply.done is True
    assert reply.done_reason in {"stop", "length"}
    assert reply.message.role == "assistant"
    assert reply.message.content
    assert reply.eval_count is not None and 0 < reply.eval_count <= 8
    assert reply.prompt_eval_count is not None and reply.prompt_eval_count > 5


def test_chat_stream_matches_not_streamed(ollama_client: ollama.Client) -> None:
    whole = ollama_client.chat(model=MODEL, messages=HI, stream=False, options=GREEDY)
    parts = list(ollama_client.chat(model=MODEL, messages=HI, stream=True, options=GREEDY))
    assert len(parts) > 2
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    assert "".join(p.message.content or "" for p in parts) == whole.message.content
    last = parts[-1]
    assert last.message.content == ""
    assert last.done_reason == whole.done_reason
    assert last.eval_count == whole.eval_count


def test_generate_stream_and_not(ollama_client: ollama.Client) -> None:
    # Once first, so both below start from the same cached prompt: a prompt decoded whole
    # and one reused from the cache differ in the last bits of their logits, which can
    # tip a greedy pick at a near-tie.
    ollama_client.generate(
        model=MODEL, prompt="Name a colour.", options={**GREEDY, "num_predict": 1}
    )
    whole = ollama_client.generate(model=MODEL, prompt="Name a colour.", options=GREEDY)
    assert whole.done and whole.response
    parts = list(
        ollama_client.generate(model=MODEL, prompt="Name a colour.", stream=True, options=GREEDY)
    )
    assert "".join(p.response or "" for p in parts) == whole.response
    assert parts[-1].done and parts[-1].response == ""


def test_stream_is_the_default(live_server: LiveServer) -> None:
    body = {"model": MODEL, "messages": HI, "options": {"num_predict": 3}}
    with httpx.stream("POST", f"{live_server.url}/api/chat", json=body, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert len(lines) >= 2 and lines[-1]["done"] is True
    single = httpx.post(f"{live_server.url}/api/chat", json={**body, "stream": False}, timeout=60)
    assert single.headers["content-type"] == "application/json"
    assert single.json()["done"] is True


@pytest.mark.parametrize("stream", [True, False])
def test_final_line_field_by_field(live_server: LiveServer, stream: bool) -> None:
    body = {
        "model": MODEL,
        "prompt": COUNTING,
        "raw": True,
        "stream": stream,
        "options": {"temperature": 0, "num_predict": 4},
    }
    with httpx.stream("POST", f"{live_server.url}/api/generate", json=body, timeout=60) as r:
        assert r.status_code == 200
        lines = [json.loads(line) for line in r.iter_lines() if line]
    final = lines[-1]
    assert set(final) == {"model", "created_at", "response", "done", "done_reason"} | FINAL_FIELDS
    assert final["model"] == MODEL
    assert final["done"] is True
    assert final["done_reason"] == "length"
    assert datetime.fromisoformat(final["created_at"]).tzinfo is not None
    for name in FINAL_FIELDS:
        assert type(final[name]) is int, name
    assert final["eval_count"] == 4  # num_predict tokens, counted exactly
    assert final["prompt_eval_count"] > 5
    assert final["eval_duration"] > 0 and final["prompt_eval_duration"] > 0
    assert final["load_duration"] >= 0
    # Nanoseconds: a few tokens of a small model take well under a minute, more than 1 µs.
    assert 1_000 < final["total_duration"] < 60 * 10**9
    assert final["total_duration"] >= final["prompt_eval_duration"] + final["eval_duration"]
    if stream:
        assert all(line["done"] is False for line in lines[:-1])
        assert set(lines[0]) == {"model", "created_at", "response", "done"}
        text = "".join(line["response"] for line in lines)
        assert final["response"] == ""
    else:
        assert len(lines) == 1
        text = final["response"]
    assert text.strip()


def test_same_seed_same_text(ollama_client: ollama.Client) -> None:
    options = {"temperature": 1.0, "seed": 1234, "num_predict": 12}
    one = ollama_client.generate(model=MODEL, prompt="Tell me a story.", options=options)
    two = ollama_client.generate(model=MODEL, prompt="Tell me a story.", options=options)
    assert one.response == two.response


def test_stop_option(ollama_client: ollama.Client) -> None:
    options = {"temperature": 0, "num_predict": 12}
    full = ollama_client.generate(model=MODEL, prompt=COUNTING, raw=True, options=options)
    assert " 8" in full.response, full.response
    cut = ollama_client.generate(
        model=MODEL, prompt=COUNTING, raw=True, options={**options, "stop": [" 8"]}
    )
    assert cut.done_reason == "stop"
    assert cut.response == full.response[: full.response.index(" 8")]


def test_system_and_raw_shape_the_prompt(ollama_client: ollama.Client) -> None:
    options = {"num_predict": 1}
    plain = ollama_client.generate(model=MODEL, prompt="Hi", options=options)
    raw = ollama_client.generate(model=MODEL, prompt="Hi", raw=True, options=options)
    system = ollama_client.generate(
        model=MODEL, prompt="Hi", system="You answer in French, always.", options=options
    )
    assert raw.prompt_eval_count is not None and plain.prompt_eval_count is not None
    assert raw.prompt_eval_count < plain.prompt_eval_count  # no chat template around it
    assert system.prompt_eval_count is not None
    assert system.prompt_eval_count != plain.prompt_eval_count


def test_empty_prompt_loads_the_model(ollama_client: ollama.Client) -> None:
    loaded = ollama_client.generate(model=MODEL)
    assert loaded.done is True and loaded.done_reason == "load" and loaded.response == ""
    chat = ollama_client.chat(model=MODEL, messages=[])
    assert chat.done is True and chat.done_reason == "load"
    assert chat.message.role == "assistant" and chat.message.content == ""


def test_history_options_and_think(ollama_client: ollama.Client) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3 + 3?"},
    ]
    options = {
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 20,
        "min_p": 0.05,
        "repeat_penalty": 1.2,
        "repeat_last_n": -1,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.5,
        "num_ctx": 2048,
        "num_predict": 4,
        "seed": 7,
        "mirostat": 0,
        "not_an_option": True,  # unknown options are ignored, as in Ollama
    }
    reply = ollama_client.chat(model=MODEL, messages=messages, options=options, think=True)
    assert reply.done and reply.eval_count is not None and reply.eval_count <= 4
    assert not reply.message.thinking


def test_latest_tag_names_the_same_model(ollama_client: ollama.Client) -> None:
    reply = ollama_client.generate(model=f"{MODEL}:latest", prompt="Hi", options={"num_predict": 1})
    assert reply.model == f"{MODEL}:latest" and reply.done


def test_logprobs(ollama_client: ollama.Client) -> None:
    reply = ollama_client.generate(
        model=MODEL, prompt=COUNTING, raw=True, options=GREEDY, logprobs=True, top_logprobs=2
    )
    assert reply.logprobs is not None and len(reply.logprobs) == reply.eval_count
    assert "".join(lp.token for lp in reply.logprobs) == reply.response
    for lp in reply.logprobs:
        assert lp.logprob <= 0
        assert lp.top_logprobs is not None and len(lp.top_logprobs) == 2
    plain = ollama_client.generate(model=MODEL, prompt=COUNTING, raw=True, options=GREEDY)
    assert plain.logprobs is None


def _running(live_server: LiveServer) -> int:
    return httpx.get(f"{live_server.url}/health").json()["models"][0]["running"]


def _settles(live_server: LiveServer) -> bool:
    deadline = time.monotonic() + 2.0
    while _running(live_server) and time.monotonic() < deadline:
        time.sleep(0.02)
    return _running(live_server) == 0


LONG = {
    "model": MODEL,
    "prompt": COUNTING,
    "raw": True,
    "options": {"temperature": 0, "repeat_penalty": 1.0, "num_predict": 2000},
}


def test_dropped_stream_frees_the_engine(live_server: LiveServer) -> None:
    with httpx.stream("POST", f"{live_server.url}/api/generate", json=LONG, timeout=60) as r:
        lines = r.iter_lines()  # kept: a generator dropped mid-way closes the connection
        for _ in range(4):
            assert json.loads(next(lines))["done"] is False
        assert _running(live_server) == 1
    assert _settles(live_server)


def test_dropped_non_stream_request_frees_the_engine(live_server: LiveServer) -> None:
    seen_running = []

    def watch() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not seen_running:
            if _running(live_server):
                seen_running.append(True)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    with contextlib.suppress(httpx.ReadTimeout):
        httpx.post(f"{live_server.url}/api/generate", json={**LONG, "stream": False}, timeout=1.0)
    watcher.join()
    assert seen_running, "the request never ran"
    assert _settles(live_server)
