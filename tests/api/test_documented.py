"""What /openapi.json documents beyond the 200 bodies, as the fuzzer found it missing:
each surface's error statuses in its own error shape (and no 422, which Hearth never
sends), the streams, Ollama's bodiless 200s, and /health's 503. Replies are checked
against what is documented, so a change to either side fails here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator, ValidationError

from hearth.engine.fake import FakeBackend
from tests.conftest import MODEL, LiveServer, make_settings, registry_of


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(Path(tmp_path_factory.mktemp("documented")))
    live = LiveServer(settings, registry_of(FakeBackend(MODEL))).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def spec(server: LiveServer) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{server.url}/openapi.json").json()
    return body


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def conforms(spec: dict[str, Any], method: str, path: str, reply: httpx.Response) -> None:
    responses = spec["paths"][path][method]["responses"]
    status = reply.status_code
    documented = responses.get(str(status)) or responses[f"{status // 100}XX"]
    schema = documented["content"][reply.headers["content-type"]]["schema"]
    Draft202012Validator({**schema, "components": spec["components"]}).validate(reply.json())


def test_no_operation_documents_fastapis_422(spec: dict[str, Any]) -> None:
    assert [p for m, p, op in operations(spec) if "422" in op["responses"]] == []
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_every_operation_documents_its_surfaces_errors(spec: dict[str, Any]) -> None:
    for _, path, operation in operations(spec):
        if path == "/health":
            continue
        if path.startswith("/api/"):
            shape = "OllamaError"
        elif path.startswith("/v1/messages"):
            shape = "AnthropicError"
        else:
            shape = "OpenAIError"
        for status in ("4XX", "500", "503"):
            content = operation["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": f"#/components/schemas/{shape}"}, path


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": MODEL, "messages": "not a list"}),
        ("/v1/chat/completions", {"model": "no-such-model", "messages": []}),
        ("/api/chat", {"model": MODEL, "messages": "not a list"}),
        ("/api/chat", {"model": "no-such-model", "messages": []}),
    ],
)
def test_error_replies_match_what_is_documented(
    server: LiveServer, spec: dict[str, Any], path: str, body: dict[str, Any]
) -> None:
    reply = httpx.post(f"{server.url}{path}", json=body, timeout=30)
    assert reply.status_code in {400, 404}
    conforms(spec, "post", path, reply)


def test_streams_are_documented(spec: dict[str, Any]) -> None:
    sse = ["/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/threads/runs"]
    ndjson = ["/api/chat", "/api/generate", "/api/create", "/api/pull"]
    for paths, media_type in ((sse, "text/event-stream"), (ndjson, "application/x-ndjson")):
        for path in paths:
            content = spec["paths"][path]["post"]["responses"]["200"]["content"]
            assert {"application/json", media_type} <= set(content), path
    resume = spec["paths"]["/v1/responses/{response_id}"]["get"]["responses"]["200"]
    assert "text/event-stream" in resume["content"]


def item_schema(spec: dict[str, Any], path: str, media_type: str) -> Draft202012Validator:
    """Each event or line of a stream is documented by `itemSchema` (OpenAPI 3.2, as
    FastAPI documents its own streams), not by `schema`, which would be the whole stream."""
    content = spec["paths"][path]["post"]["responses"]["200"]["content"][media_type]
    return Draft202012Validator(content["itemSchema"])


def test_stream_events_match_what_is_documented(server: LiveServer, spec: dict[str, Any]) -> None:
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=chat) as reply:
        events = [
            {"data": line.removeprefix("data: ")}
            for line in reply.iter_lines()
            if line.startswith("data: ")
        ]
    assert len(events) > 2 and events[-1] == {"data": "[DONE]"}
    for event in events:
        item_schema(spec, "/v1/chat/completions", "text/event-stream").validate(event)
    with httpx.stream("POST", f"{server.url}/api/chat", json=chat) as reply:
        lines = [json.loads(line) for line in reply.iter_lines() if line]
    assert len(lines) > 1 and lines[-1]["done"] is True
    for line in lines:
        item_schema(spec, "/api/chat", "application/x-ndjson").validate(line)
    with pytest.raises(ValidationError):  # the schema does check: an event needs its data
        item_schema(spec, "/v1/chat/completions", "text/event-stream").validate({"event": "x"})


def test_ollama_copy_and_delete_document_their_bodiless_200(
    server: LiveServer, spec: dict[str, Any]
) -> None:
    assert "content" not in spec["paths"]["/api/copy"]["post"]["responses"]["200"]
    assert "content" not in spec["paths"]["/api/delete"]["delete"]["responses"]["200"]
    reply = httpx.post(f"{server.url}/api/copy", json={"source": MODEL, "destination": "copied"})
    assert (reply.status_code, reply.content) == (200, b"")
    reply = httpx.request("DELETE", f"{server.url}/api/delete", json={"model": "copied"})
    assert (reply.status_code, reply.content) == (200, b"")


def test_health_documents_its_503(spec: dict[str, Any]) -> None:
    assert "503" in spec["paths"]["/health"]["get"]["responses"]
