"""Fuzzing: schemathesis over every operation of /openapi.json, against a real server with
the bundled model and a key configured. Zero 5xx, zero replies that break what the schema
documents (status, content type, body); and without the key, every operation but /health
is refused with 401, never a 5xx.

Bounded so it fits `make test`: a few derandomized examples per operation and generation
mode (reproducible in CI), every reply held to a few tokens, and about half the bodies that
name a model name the served one, so the generation paths run, not only their 404s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

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
EXAMPLES = 5  # per operation and generation mode (valid bodies, invalid ones)
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
    "POST /v1/responses": "max_output_tokens",
    "POST /v1/threads/runs": "max_completion_tokens",
    "POST /v1/threads/{thread_id}/runs": "max_completion_tokens",
}
OLLAMA_GENERATING = {"POST /api/chat", "POST /api/generate"}
# The field naming an existing model. Not /api/delete's: deleting the served model would
# leave every operation after it nothing to generate with.
MODEL_FIELD = {"POST /api/copy": "source", "POST /api/create": "from"}
KEEP_RANDOM_MODEL = {"DELETE /api/delete"}


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
    return isinstance(value, int) and not isinstance(value, bool)


def _fuzz(operation: Any, mode: GenerationMode, send: Callable[[Any], None]) -> int:
    label = f"{operation.method.upper()} {operation.path}"
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
            if served and field in case.body and label not in KEEP_RANDOM_MODEL:
                case.body[field] = MODEL
        send(case)

    run()
    return calls


def _sweep(server: LiveServer, send: Callable[[Any], None], modes: list[GenerationMode]) -> str:
    """Every operation in every mode; the failures of all of them, so one run shows all."""
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", headers=BEARER)
    failures, calls, operations = [], 0, 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in modes:
            try:
                calls += _fuzz(operation, mode, send)
            except hypothesis.errors.Unsatisfiable:
                pass  # nothing of this operation can be made invalid (no body, no query)
            except (Exception, FailureGroup) as exc:
                failures.append(f"{operation.label} [{mode.value}]: {_described(exc)}")
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
