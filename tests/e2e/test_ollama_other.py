"""Embeddings, model listings and liveness through the real ollama client and model."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import ollama
import pytest

from tests.conftest import MODEL, LiveServer, make_settings

WIDTH = 576  # SmolLM2-135M's hidden width


def test_embed_string_and_list(ollama_client: ollama.Client) -> None:
    one = ollama_client.embed(model=MODEL, input="a cat")
    assert one.model == MODEL
    assert len(one.embeddings) == 1 and len(one.embeddings[0]) == WIDTH
    many = ollama_client.embed(model=MODEL, input=["a cat", "a cat", "quantum physics"])
    vectors = [np.array(v) for v in many.embeddings]
    assert all(abs(np.linalg.norm(v) - 1) < 1e-6 for v in vectors)
    assert np.allclose(vectors[0], vectors[1]) and np.allclose(vectors[0], one.embeddings[0])
    assert not np.allclose(vectors[0], vectors[2])
    assert one.prompt_eval_count is not None and many.prompt_eval_count is not None
    assert 0 < one.prompt_eval_count < many.prompt_eval_count
    assert isinstance(many.total_duration, int) and many.total_duration > 0
    assert isinstance(many.load_duration, int)


def test_embed_truncates_unless_told_not_to(tmp_path: Path) -> None:
    # A small context keeps the embedding limit (and this test) small: 256 tokens.
    server = LiveServer(make_settings(tmp_path, ctx_size=256, parallel=1)).start()
    try:
        with ollama.Client(host=server.url) as c:
            long = "word " * 400
            cut = c.embed(model=MODEL, input=[long, "a cat"])
            assert [len(v) for v in cut.embeddings] == [WIDTH, WIDTH]
            short = c.embed(model=MODEL, input="a cat")
            assert cut.prompt_eval_count == 256 + short.prompt_eval_count
            with pytest.raises(ollama.ResponseError) as info:
                c.embed(model=MODEL, input=long, truncate=False)
            assert info.value.status_code == 400
            assert "256" in info.value.error
    finally:
        server.stop()


def test_embed_dimensions(ollama_client: ollama.Client) -> None:
    full = np.array(ollama_client.embed(model=MODEL, input="a cat").embeddings[0])
    short = np.array(ollama_client.embed(model=MODEL, input="a cat", dimensions=64).embeddings[0])
    assert short.shape == (64,)
    assert abs(np.linalg.norm(short) - 1) < 1e-6
    assert np.allclose(short, full[:64] / np.linalg.norm(full[:64]))
    with pytest.raises(ollama.ResponseError) as info:
        ollama_client.embed(model=MODEL, input="a cat", dimensions=WIDTH + 1)
    assert info.value.status_code == 400


def test_embed_empty_input_loads_only(ollama_client: ollama.Client) -> None:
    assert ollama_client.embed(model=MODEL, input="").embeddings == []
    assert ollama_client.embed(model=MODEL, input=[]).embeddings == []


def test_embeddings_old_form(ollama_client: ollama.Client) -> None:
    old = ollama_client.embeddings(model=MODEL, prompt="a cat")
    assert len(old.embedding) == WIDTH
    new = ollama_client.embed(model=MODEL, input="a cat")
    assert np.allclose(old.embedding, new.embeddings[0])
    assert ollama_client.embeddings(model=MODEL, prompt="").embedding == []


def test_list(ollama_client: ollama.Client, model_path: Path) -> None:
    models = ollama_client.list().models
    assert [m.model for m in models] == [MODEL]
    entry = models[0]
    assert entry.size == model_path.stat().st_size
    assert entry.digest and len(entry.digest) == 64
    assert entry.modified_at is not None
    assert entry.details is not None
    assert entry.details.format == "gguf"
    assert entry.details.family == "llama"
    assert entry.details.parameter_size == "135M"
    assert entry.details.quantization_level == "Q4_1"


def test_show(ollama_client: ollama.Client) -> None:
    shown = ollama_client.show(MODEL)
    assert shown.template is not None and "<|im_start|>" in shown.template
    assert shown.capabilities is not None
    assert {"completion", "tools", "embedding"} <= set(shown.capabilities)
    assert shown.details is not None and shown.details.family == "llama"
    info = shown.modelinfo
    assert info is not None
    assert info["general.architecture"] == "llama"
    assert info["llama.context_length"] == 8192
    assert info["llama.embedding_length"] == WIDTH
    assert "tokenizer.chat_template" not in info
    assert shown.parameters is not None and "temperature" in shown.parameters
    assert ollama_client.show(f"{MODEL}:latest").template == shown.template


def test_ps(ollama_client: ollama.Client, live_server: LiveServer) -> None:
    running = ollama_client.ps().models
    assert [m.model for m in running] == [MODEL]
    assert running[0].context_length == live_server.state.settings.ctx_size
    assert running[0].expires_at is not None
    assert running[0].size is not None and running[0].size > 0


def test_version_and_liveness(live_server: LiveServer) -> None:
    version = httpx.get(f"{live_server.url}/api/version")
    assert version.status_code == 200 and isinstance(version.json()["version"], str)
    assert httpx.head(f"{live_server.url}/api/version").status_code == 200
    assert httpx.head(f"{live_server.url}/api/tags").status_code == 200
    root = httpx.get(f"{live_server.url}/")
    assert root.status_code == 200
    assert root.headers["content-type"].startswith("text/plain")
    assert root.text == "Ollama is running"
    head = httpx.head(f"{live_server.url}/")
    assert head.status_code == 200 and head.content == b""
    browser = httpx.get(f"{live_server.url}/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert browser.status_code == 200
