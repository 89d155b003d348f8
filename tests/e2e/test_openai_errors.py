"""Every bad input of the OpenAI surface, as the openai SDK sees it."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import MODEL, LiveServer, make_settings

OK = [{"role": "user", "content": "hi"}]


def bad(client: openai.OpenAI, **kw: object) -> openai.BadRequestError:
    args: dict[str, object] = {"model": MODEL, "messages": OK, "max_tokens": 2}
    args.update(kw)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(**args)  # type: ignore[call-overload]
    return info.value


def error_of(exc: openai.APIStatusError) -> dict[str, object]:
    body = exc.body
    assert isinstance(body, dict)
    return body  # the SDK unwraps {"error": {...}} into .body


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": 5}, "stop"),
        ({"presence_penalty": -2.5}, "presence_penalty"),
        ({"frequency_penalty": 3}, "frequency_penalty"),
        ({"temperature": "hot"}, "temperature"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"n": 0}, "n"),
        ({"logit_bias": {"abc": 1}}, "logit_bias"),
    ],
)
def test_bad_parameters_name_their_param(
    client: openai.OpenAI, kwargs: dict[str, object], param: str
) -> None:
    err = bad(client, **kwargs)
    assert err.status_code == 400
    body = error_of(err)
    assert body["param"] == param
    assert body["type"] == "invalid_request_error"
    assert param.split("[")[0] in str(body["message"])


def test_missing_model_param(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(messages=OK, model=None)  # type: ignore[arg-type]
    assert error_of(info.value)["param"] == "model"


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    for call in (
        lambda: client.chat.completions.create(model="nope", messages=OK),  # type: ignore[arg-type]
        lambda: client.completions.create(model="nope", prompt="x"),
        lambda: client.embeddings.create(model="nope", input="x"),
        lambda: client.models.retrieve("nope"),
    ):
        with pytest.raises(openai.NotFoundError) as info:
            call()
        assert error_of(info.value)["code"] == "model_not_found"


def test_a_file_path_is_not_a_model(client: openai.OpenAI, model_path: object) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=str(model_path), messages=OK)  # type: ignore[arg-type]


def test_context_length_exceeded(client: openai.OpenAI) -> None:
    err = bad(client, max_tokens=10_000)
    body = error_of(err)
    assert body["code"] == "context_length_exceeded"
    assert "4096" in str(body["message"])  # the limit...
    assert "10000" in str(body["message"]).replace(",", "")  # ...and what was asked for
    long = [{"role": "user", "content": "word " * 5000}]
    body = error_of(bad(client, messages=long, max_tokens=None))
    assert body["code"] == "context_length_exceeded"


def test_embedding_input_too_long(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model=MODEL, input="word " * 6000)
    assert error_of(info.value)["code"] == "context_length_exceeded"


def test_unsupported_features_are_refused_not_ignored(client: openai.OpenAI) -> None:
    # The param named is the first one missing, as in the Responses and Assistants APIs.
    no_schema = {"type": "json_schema", "json_schema": {"name": "x"}}
    assert error_of(bad(client, response_format=no_schema))["param"] == (
        "response_format.json_schema.schema"
    )
    no_spec = {"type": "json_schema"}
    assert error_of(bad(client, response_format=no_spec))["param"] == (
        "response_format.json_schema"
    )
    image = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    assert "image_url" in str(
        error_of(bad(client, messages=[{"role": "user", "content": image}]))["message"]
    )


def test_malformed_json_and_non_object_bodies(live_server: LiveServer) -> None:
    url = f"{live_server.url}/v1/chat/completions"
    for raw in (b"{bad", b"[1, 2]", b"", b'"text"'):
        r = httpx.post(url, content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 400, raw
        assert r.json()["error"]["type"] == "invalid_request_error"


def test_json_without_content_type_is_still_json(live_server: LiveServer) -> None:
    r = httpx.post(
        f"{live_server.url}/v1/chat/completions",
        content=b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}], '
        b'"max_tokens": 2}' % MODEL.encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text


def test_body_over_the_limit_is_413(live_server: LiveServer) -> None:
    limit = live_server.state.settings.max_request_bytes
    big = {"model": MODEL, "messages": [{"role": "user", "content": "x" * (limit + 10)}]}
    r = httpx.post(f"{live_server.url}/v1/chat/completions", json=big)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"

    def chunked():  # no Content-Length: counted while read
        yield b'{"model": "m", "messages": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    r = httpx.post(f"{live_server.url}/v1/chat/completions", content=chunked())
    assert r.status_code == 413


def test_unknown_route_is_404_in_openai_shape(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.get("/nope", cast_to=object)
    assert error_of(info.value)["code"] == "unknown_url"


def test_api_keys(tmp_path, model_path) -> None:  # type: ignore[no-untyped-def]
    key = "sk-hearth-test-key"
    server = LiveServer(make_settings(tmp_path, api_keys=[key], ctx_size=1024, parallel=1)).start()
    try:
        base = f"{server.url}/v1"
        with openai.OpenAI(base_url=base, api_key=key, max_retries=0) as good:
            assert [m.id for m in good.models.list()] == [MODEL]
            reply = good.chat.completions.create(model=MODEL, messages=OK, max_tokens=2)
            assert reply.choices
        for wrong in ("sk-wrong-key-123", key + "x"):
            with openai.OpenAI(base_url=base, api_key=wrong, max_retries=0) as c:
                with pytest.raises(openai.AuthenticationError) as info:
                    c.models.list()
                assert error_of(info.value)["code"] == "invalid_api_key"
        r = httpx.get(f"{base}/models")
        assert r.status_code == 401
        assert r.json()["error"]["type"] == "invalid_request_error"
        assert httpx.get(f"{server.url}/health").status_code == 200
    finally:
        server.stop()
