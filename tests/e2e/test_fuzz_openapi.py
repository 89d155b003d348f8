"""Fuzzing: schemathesis over every operation of /openapi.json, against a real server with
the bundled model and a key configured. Zero 5xx, zero replies that break what the schema
documents (status, content type, body); and without the key, every operation but /health
is refused with 401, never a 5xx.

Bounded so it fits `make test`: a few derandomized examples per operation and generation
mode (reproducible in CI), every reply held to a few tokens. About half the examples name
real things where the schema has a free string: the served model in a body, objects made
for the example in the path (and a real assistant in a run's body), so the generation and
stored-object paths run, not only their 404s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from tests.conftest import MODEL, LiveServer, make_settings

# Schemathesis's own strategies touch the `random` module; Hypothesis warns about it.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)

KEY = "sk-fuzz-test-key"
BEARER = {"Authorization": f"Bearer {KEY}"}
EXAMPLES = 10  # per operation and generation mode (valid bodies, invalid ones)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OPEN = {"GET /health"}
MOST_TOKENS = 4
# The field that bounds a reply's length, where an operation generates; set when absent,
# lowered when larger, so a fuzzed request costs a few tokens, not the model's context.
LENGTH_FIELD = {
    "POST /v1/chat/completions": "max_tokens",
    "POST /v1/completions": "max_tokens",
    "POST /v1/messages": "max_tokens",
    "POST /v1/responses": "max_output_tokens",
    "POST /v1/threads/runs": "max_completion_tokens",
    "POST /v1/threads/{thread_id}/runs": "max_completion_tokens",
}
OLLAMA_GENERATING = {"POST /api/chat", "POST /api/generate"}
# The field naming an existing model. Not /api/delete's: deleting the served model would
# leave every operation after it nothing to generate with.
MODEL_FIELD = {"POST /api/copy": "source", "POST /api/create": "from"}
KEEP_RANDOM_MODEL = {"DELETE /api/delete"}
# Fuzzed conversations are rarely ones a server accepts (a tool message needs the id of a
# call, a user message content): the examples naming the served model send a plain one, so
# that the rest of their body (sampling, formats, tools, streaming) reaches the engine.
HELLO = [{"role": "user", "content": "hi"}]
PLAIN_INPUT = {
    "POST /v1/chat/completions": ("messages", HELLO),
    "POST /api/chat": ("messages", HELLO),
    "POST /v1/responses": ("input", "hi"),
    "POST /v1/messages": ("messages", HELLO),
}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(make_settings(tmp_path_factory.mktemp("fuzz"), api_keys=[KEY])).start()
    yield server
    server.stop()


def _bounded(label: str, body: dict[str, Any]) -> None:
    field = LENGTH_FIELD.get(label)
    if field is not None:
        body[field] = _few(body.get(field))
    if label == "POST /v1/chat/completions" and "max_completion_tokens" in body:
        body["max_completion_tokens"] = _few(body["max_completion_tokens"])
    if label in OLLAMA_GENERATING:
        options = body.setdefault("options", {})
        if options is None:
            body["options"] = options = {}
        if isinstance(options, dict):
            # Ollama reads a negative num_predict as "no limit".
            predict = options.get("num_predict")
            options["num_predict"] = _few(None if _is_int(predict) and predict < 0 else predict)


def _few(value: Any) -> Any:
    """At most MOST_TOKENS; a value of the wrong type stays, for the server to refuse."""
    if value is None or (_is_int(value) and value > MOST_TOKENS):
        return MOST_TOKENS
    return value


def _is_int(value: Any) -> bool:
    # 2461.0 is an integer to JSON Schema, and to the server: the fuzzer sends such numbers.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Objects:
    """Stored objects for the examples that name real ones: made anew for each example (a
    DELETE among them may take what it names), related as the path needs (the item of
    that conversation, the run on that thread)."""

    def __init__(self, server: LiveServer) -> None:
        self.http = httpx.Client(base_url=f"{server.url}/v1", headers=BEARER, timeout=60)
        self.assistant = self.post("/assistants", model=MODEL)

    def post(self, path: str, **body: Any) -> str:
        reply = self.http.post(path, json=body)
        assert reply.status_code == 200, reply.text
        value: str = reply.json()["id"]
        return value

    def first(self, path: str) -> str:
        reply = self.http.get(path)
        assert reply.status_code == 200, reply.text
        data = reply.json()["data"]
        return data[0]["id"] if data else "none"

    def for_path(self, names: set[str]) -> dict[str, str]:
        ids: dict[str, str] = {}
        if "response_id" in names:
            ids["response_id"] = self.post(
                "/responses", model=MODEL, input="hi", max_output_tokens=MOST_TOKENS
            )
        if "conversation_id" in names:
            conversation = self.post("/conversations", items=[{"type": "message", **HELLO[0]}])
            ids["conversation_id"] = conversation
            ids["item_id"] = self.first(f"/conversations/{conversation}/items")
        if "assistant_id" in names:
            ids["assistant_id"] = self.post("/assistants", model=MODEL)
        if "thread_id" in names:
            thread = ids["thread_id"] = self.post("/threads", messages=HELLO)
            ids["message_id"] = self.first(f"/threads/{thread}/messages")
            if "run_id" in names:
                run = ids["run_id"] = self.post(
                    f"/threads/{thread}/runs",
                    assistant_id=self.assistant,
                    max_completion_tokens=MOST_TOKENS,
                )
                if "step_id" in names:
                    ids["step_id"] = self._step(thread, run)
        return {name: ids[name] for name in names if name in ids}

    def _step(self, thread: str, run: str) -> str:
        """The run's first step, once it has one. On a busy machine a run may still be
        queued after the wait: the example then asks for a step that does not exist (a 404,
        checked like any reply), since whether runs end is not this test's question."""
        deadline = time.monotonic() + 60
        step = self.first(f"/threads/{thread}/runs/{run}/steps")
        while step == "none" and time.monotonic() < deadline and self._running(thread, run):
            time.sleep(0.1)
            step = self.first(f"/threads/{thread}/runs/{run}/steps")
        return step

    def _running(self, thread: str, run: str) -> bool:
        status = self.http.get(f"/threads/{thread}/runs/{run}").json()["status"]
        return status in {"queued", "in_progress"}

    def close(self) -> None:
        self.http.close()


def _body_fields(operation: Any) -> set[str]:
    """The properties the operation's JSON body documents (a model is often optional, so
    a generated body may leave it out)."""
    raw = operation.schema.raw_schema
    body = raw["paths"][operation.path][operation.method.lower()].get("requestBody")
    if body is None:
        return set()
    schema = _deref(raw, body["content"]["application/json"]["schema"])
    fields: set[str] = set()
    for option in [schema, *schema.get("anyOf", [])]:
        fields |= set(_deref(raw, option).get("properties", {}))
    return fields


def _deref(raw: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = raw["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _fuzz(
    operation: Any, mode: GenerationMode, send: Callable[[Any], None], objects: Objects
) -> int:
    label = f"{operation.method.upper()} {operation.path}"
    fields = _body_fields(operation)
    calls = 0

    @hypothesis.settings(
        max_examples=EXAMPLES,
        derandomize=True,  # the same examples on every run: CI is reproducible
        deadline=None,
        database=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode), served=st.booleans())
    def run(case: Any, served: bool) -> None:
        nonlocal calls
        calls += 1
        if isinstance(case.body, dict):
            _bounded(label, case.body)
            field = MODEL_FIELD.get(label, "model")
            if served and field in fields and label not in KEEP_RANDOM_MODEL:
                case.body[field] = MODEL
                if label in PLAIN_INPUT:
                    name, value = PLAIN_INPUT[label]
                    case.body[name] = value
            if served and "assistant_id" in case.body:
                case.body["assistant_id"] = objects.assistant
        if served and case.path_parameters:
            case.path_parameters.update(objects.for_path(set(case.path_parameters)))
        send(case)

    run()
    return calls


def _sweep(server: LiveServer, send: Callable[[Any], None], modes: list[GenerationMode]) -> str:
    """Every operation in every mode; the failures of all of them, so one run shows all."""
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", headers=BEARER)
    failures, calls, operations = [], 0, 0
    started = time.monotonic()
    objects = Objects(server)
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in modes:
            try:
                calls += _fuzz(operation, mode, send, objects)
            except hypothesis.errors.Unsatisfiable:
                pass  # nothing of this operation can be made invalid (no body, no query)
            except (Exception, FailureGroup) as exc:
                failures.append(f"{operation.label} [{mode.value}]: {_described(exc)}")
    objects.close()
    elapsed = time.monotonic() - started
    print(f"fuzzed {operations} operations, {calls} requests, {elapsed:.0f} s")
    assert operations >= 50  # the whole API, not a schema that failed to load
    return "\n\n".join(failures)


def _described(exc: BaseException) -> str:
    """The error, and what a group holds (Hypothesis's flaky report hides the cause)."""
    parts = [str(exc)]
    for inner in getattr(exc, "exceptions", ()):
        parts.append(_described(inner))
    if exc.__cause__ is not None:
        parts.append(f"caused by {_described(exc.__cause__)}")
    return "\n".join(parts)


@pytest.mark.timeout(600)  # a few minutes on 2 busy cores; the default 300 s is for one test
def test_every_operation_keeps_its_schema(fuzzed: LiveServer) -> None:
    def send(case: Any) -> None:
        case.call_and_validate(headers=BEARER, checks=CHECKS, timeout=60)

    failures = _sweep(fuzzed, send, [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    assert not failures, failures


def test_every_operation_refuses_a_request_without_the_key(fuzzed: LiveServer) -> None:
    def send(case: Any) -> None:
        reply = case.call(timeout=60)
        label = f"{case.operation.method.upper()} {case.operation.path}"
        expected = 200 if label in OPEN else 401
        assert reply.status_code == expected, f"{label}: {reply.status_code} {reply.text[:200]}"
        case.validate_response(reply, checks=CHECKS)

    failures = _sweep(fuzzed, send, [GenerationMode.POSITIVE])
    assert not failures, failures
