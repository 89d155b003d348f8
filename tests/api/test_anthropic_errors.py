"""Each HearthError in Anthropic's error shape and status, with a request-id."""

from __future__ import annotations

import json

import pytest

from hearth.api.errors import error_body, error_response
from hearth.core.errors import (
    EngineError,
    Forbidden,
    HearthError,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    PayloadTooLarge,
    QueueTimeout,
    QuotaExceeded,
    RateLimited,
    Unauthorized,
)


@pytest.mark.parametrize(
    ("err", "status", "kind"),
    [
        (InvalidRequest("bad"), 400, "invalid_request_error"),
        (Unauthorized("who"), 401, "authentication_error"),
        (Forbidden("no"), 403, "permission_error"),
        (ModelNotFound("gone"), 404, "not_found_error"),
        (PayloadTooLarge("big"), 413, "request_too_large"),
        (RateLimited("slow down", retry_after=2), 429, "rate_limit_error"),
        (QuotaExceeded("spent", retry_after=60), 429, "rate_limit_error"),
        (Overloaded("full", retry_after=1), 529, "overloaded_error"),
        (QueueTimeout("waited", retry_after=1), 529, "overloaded_error"),
        (EngineError("boom"), 500, "api_error"),
    ],
)
def test_anthropic_paths_get_anthropics_errors(err: HearthError, status: int, kind: str) -> None:
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        response = error_response(path, err)
        assert response.status_code == status
        assert json.loads(response.body) == {
            "type": "error",
            "error": {"type": kind, "message": err.message},
        }
        assert response.headers["request-id"].startswith("req_")
        if err.retry_after is not None:
            assert int(response.headers["retry-after"]) >= 1


def test_other_paths_keep_their_shapes() -> None:
    err = Overloaded("full", retry_after=1)
    assert error_response("/v1/chat/completions", err).status_code == 429
    assert "request-id" not in error_response("/v1/chat/completions", err).headers
    assert error_body("/v1/messagesx", err)["error"]["code"] == "server_overloaded"
    assert error_body("/api/chat", err) == {"error": "full"}
