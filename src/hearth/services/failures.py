"""Failures as the surfaces and the background jobs report them: a generation that ended
in error as the HearthError it means, and the OpenAI error object that HTTP error bodies
(under "error") and the streams' error events (as they are) carry."""

from __future__ import annotations

from typing import Any

from hearth.core.errors import EngineError, HearthError
from hearth.engine.types import Finished

ENGINE_FAILED = "the engine failed"


def engine_failure(finished: Finished | None) -> EngineError:
    """What the end of a generation that failed means: the engine's fault (500), with its
    own message. None is a generation whose events stopped without a `Finished`."""
    message = finished.error if finished is not None else None
    return EngineError(message or ENGINE_FAILED)


def openai_error_object(err: HearthError) -> dict[str, Any]:
    return {"message": err.message, "type": err.type, "param": err.param, "code": err.code}
