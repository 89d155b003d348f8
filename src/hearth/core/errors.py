"""The one error family. Each API surface renders these in its own wire shape."""

from __future__ import annotations


class HearthError(Exception):
    """Base of every error a client may see. `status` is the HTTP status it maps to."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.retry_after = retry_after


class InvalidRequest(HearthError):
    status = 400
    type = "invalid_request_error"


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class PayloadTooLarge(InvalidRequest):
    status = 413
    code = "payload_too_large"


class Unauthorized(HearthError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class Forbidden(HearthError):
    """A valid key that may not do this (the admin API with a key that is not an admin's)."""

    status = 403
    type = "permission_error"
    code = "forbidden"


class MethodNotAllowed(InvalidRequest):
    status = 405
    code = "method_not_allowed"


class NotFound(HearthError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class Conflict(HearthError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


class RateLimited(HearthError):
    """A key over its requests (type "requests") or tokens (type "tokens") per minute,
    or its concurrent requests: OpenAI's 429, always with the seconds until a retry can
    pass. `type` is set per instance: OpenAI names the limit that refused in it."""

    status = 429
    type = "requests"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float, tokens: bool = False) -> None:
        super().__init__(message, retry_after=retry_after)
        self.type = "tokens" if tokens else "requests"


class QuotaExceeded(HearthError):
    """A key's token budget for its period is spent: OpenAI's insufficient_quota, a 429
    whose Retry-After runs to the next period."""

    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)


class Overloaded(HearthError):
    """The engine's queue is full (429) or a request waited too long for a slot (503)."""

    status = 429
    type = "server_error"
    code = "server_overloaded"


class QueueTimeout(Overloaded):
    status = 503


class EngineError(HearthError):
    """The engine failed on a request that was valid: a real fault, rendered as 500."""

    status = 500
    type = "server_error"
    code = "engine_error"


class UpstreamError(EngineError):
    """The engines of an upstream pool failed a valid request (refused, hung, answered
    with an error or with something that is not the OpenAI API): a bad gateway."""

    status = 502
    code = "upstream_error"


class StoreUnavailable(HearthError):
    """The database cannot be reached (PostgreSQL down or restarting, SQLite's file out
    of reach or locked past its timeout): a passing fault, so 503 with Retry-After."""

    status = 503
    type = "server_error"
    code = "database_unavailable"


class ShuttingDown(HearthError):
    """The server is stopping: a request that came during the drain, or one still running
    when the drain's grace ran out. 503 with Retry-After: another replica, or this one
    restarted, will take it."""

    status = 503
    type = "server_error"
    code = "server_shutting_down"
