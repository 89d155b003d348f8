"""services/failures.py: a failed generation's end as an error, and OpenAI's error object."""

from __future__ import annotations

import pytest

from hearth.core.errors import EngineError, InvalidRequest
from hearth.engine.types import Finished, Usage
from hearth.services.failures import ENGINE_FAILED, engine_failure, openai_error_object


def test_a_failed_generation_is_an_engine_error_with_the_engines_message() -> None:
    err = engine_failure(Finished("error", Usage(3, 1), error="llama_decode failed (code 1)"))
    assert isinstance(err, EngineError)
    assert (err.status, err.code) == (500, "engine_error")
    assert err.message == "llama_decode failed (code 1)"


@pytest.mark.parametrize(
    "finished", [Finished("error", Usage(3, 1)), Finished("error", Usage(3, 1), error=""), None]
)
def test_a_failure_without_a_message_still_says_what_failed(finished: Finished | None) -> None:
    err = engine_failure(finished)
    assert isinstance(err, EngineError) and err.message == ENGINE_FAILED


def test_the_openai_error_object_has_its_four_fields() -> None:
    err = InvalidRequest("bad", param="messages[0].role", code="invalid_value")
    assert openai_error_object(err) == {
        "message": "bad",
        "type": "invalid_request_error",
        "param": "messages[0].role",
        "code": "invalid_value",
    }
    assert openai_error_object(EngineError("boom"))["code"] == "engine_error"
