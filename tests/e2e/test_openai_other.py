"""Completions, embeddings, health and disconnects through the real client and model."""

from __future__ import annotations

import base64
import contextlib
import threading
import time

import httpx
import numpy as np
import openai

from tests.conftest import MODEL, LiveServer

# SmolLM2's end tokens (<|endoftext|>, <|im_end|>) banned: a reply that cannot end early.
NEVER_END = {"0": -100, "2": -100}


def test_completion_string_and_list(client: openai.OpenAI) -> None:
    one = client.completions.create(
        model=MODEL, prompt="The capital of France is", max_tokens=8, temperature=0
    )
    assert one.object == "text_completion"
    assert one.choices[0].text
    assert one.usage is not None and one.usage.completion_tokens <= 8
    many = client.completions.create(
        model=MODEL,
        prompt=["The capital of France is", "Once upon a time"],
        max_tokens=8,
        temperature=0,
    )
    assert [c.index for c in many.choices] == [0, 1]
    assert many.choices[0].text == one.choices[0].text
    assert many.usage is not None
    assert many.usage.prompt_tokens > one.usage.prompt_tokens


def test_completion_stream_and_echo(client: openai.OpenAI) -> None:
    prompt = "Once upon a time"
    full = client.completions.create(model=MODEL, prompt=prompt, max_tokens=10, temperature=0)
    chunks = list(
        client.completions.create(
            model=MODEL, prompt=prompt, max_tokens=10, temperature=0, stream=True
        )
    )
    assert "".join(c.choices[0].text for c in chunks) == full.choices[0].text
    assert chunks[-1].choices[0].finish_reason == full.choices[0].finish_reason
    echoed = client.completions.create(
        model=MODEL, prompt=prompt, max_tokens=10, temperature=0, echo=True
    )
    assert echoed.choices[0].text == prompt + full.choices[0].text


def test_embeddings_float_and_base64(client: openai.OpenAI) -> None:
    # The SDK asks for base64 by default and decodes it itself.
    default = client.embeddings.create(model=MODEL, input=["a cat", "a cat", "quantum physics"])
    vectors = [np.array(d.embedding) for d in default.data]
    assert [d.index for d in default.data] == [0, 1, 2]
    assert all(v.shape == (576,) for v in vectors)  # SmolLM2-135M's hidden width
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    assert abs(cos(vectors[0], vectors[1]) - 1.0) < 1e-6
    assert cos(vectors[0], vectors[2]) < 0.999
    floats = client.embeddings.create(model=MODEL, input="a cat", encoding_format="float")
    assert np.allclose(floats.data[0].embedding, vectors[0], atol=1e-6)
    assert default.usage.prompt_tokens > 0


def test_embeddings_base64_wire_format(live_server: LiveServer) -> None:
    body = {"model": MODEL, "input": "a cat", "encoding_format": "base64"}
    raw = httpx.post(f"{live_server.url}/v1/embeddings", json=body).json()
    vec = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert vec.shape == (576,)
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-4


def test_health(live_server: LiveServer) -> None:
    health = httpx.get(f"{live_server.url}/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["models"][0]["id"] == MODEL
    assert body["models"][0]["state"] == "loaded"


def _running(live_server: LiveServer) -> int:
    return httpx.get(f"{live_server.url}/health").json()["models"][0]["running"]


def test_dropped_stream_frees_the_engine(client: openai.OpenAI, live_server: LiveServer):
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Tell me a very long story."}],
        max_tokens=2000,
        stream=True,
        logit_bias=NEVER_END,
    )
    for i, _ in enumerate(stream):
        if i == 3:
            break
    assert _running(live_server) == 1
    stream.close()
    deadline = time.monotonic() + 2.0
    while _running(live_server) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _running(live_server) == 0
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert reply.choices[0].finish_reason in {"stop", "length"}


def test_dropped_non_stream_request_frees_the_engine(live_server: LiveServer) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Tell me a very long story."}],
        "max_tokens": 2000,
        "logit_bias": NEVER_END,
    }
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
        httpx.post(f"{live_server.url}/v1/chat/completions", json=body, timeout=1.0)
    watcher.join()
    assert seen_running, "the request never ran"
    deadline = time.monotonic() + 2.0
    while _running(live_server) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _running(live_server) == 0
