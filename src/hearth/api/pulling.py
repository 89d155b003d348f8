"""A pull over HTTP, for Ollama's /api/pull and /admin/models/pull: the download runs in
a thread (services/pull), its progress streamed as NDJSON lines; the model is served the
moment its files are in the folder, before the final "success" goes out, so a client
that chats on seeing it finds the model. An error after the first line is a last line
in the surface's error shape; one before it (a bad name) is a plain HTTP error."""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from fastapi.responses import JSONResponse, Response

from hearth.api.ollama.replies import NDJSON
from hearth.api.state import AppState
from hearth.api.streaming import EventStream, ndjson_line
from hearth.core.errors import HearthError, InvalidRequest
from hearth.core.model_spec import valid_model_name
from hearth.engine.registry import ModelRegistry
from hearth.services.pull import Progress, events, pull
from hearth.services.pull.progress import Report
from hearth.services.pull.reference import parse


def start(state: AppState, reference: str, name: str | None) -> AsyncGenerator[Progress]:
    """Check who asks and what (raising before any byte), then the pull's progress."""
    ModelRegistry.check_may_change()
    parse(reference)
    if name is not None and not valid_model_name(name):
        raise InvalidRequest(f"invalid model name {name!r}", param="name")
    folder = state.models_folder

    def work(report: Report, stop: threading.Event) -> None:
        pull(
            reference,
            folder.directory,
            name=name,
            taken=folder.taken,
            report=report,
            stop=stop,
        )

    async def progress() -> AsyncGenerator[Progress]:
        async for p in events(work):
            if p.status == "success":
                folder.scan()
            yield p

    return progress()


async def reply(
    steps: AsyncGenerator[Progress],
    stream: bool | None,
    error_body: Callable[[HearthError], dict[str, Any]],
) -> Response:
    """NDJSON progress lines, or with `stream` false, `{"status": "success"}` once done
    (an error then is the route's own)."""
    if stream is False:
        async for _ in steps:
            pass
        return JSONResponse({"status": "success"})

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for p in steps:
                yield ndjson_line(p.as_dict())
        except HearthError as err:
            yield ndjson_line(error_body(err))
        finally:
            await steps.aclose()  # a client gone: the download stops now, not at GC

    return EventStream(chunks(), media_type=NDJSON)
