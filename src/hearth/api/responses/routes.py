"""/v1/responses: create (plain, streamed, background), retrieve (or resume its stream),
cancel, delete, and list a response's input items."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request

from hearth.api.documented import SSE_STREAM
from hearth.api.responses.pages import Page
from hearth.api.responses.schemas import CreateResponse
from hearth.api.state import State
from hearth.api.streaming import ClientGone, EventStream, sse_event, unless_disconnected
from hearth.core.errors import EngineError, InvalidRequest

router = APIRouter(prefix="/responses")


async def _sse(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async for event in events:
        yield sse_event(event["type"], event)


@router.post("", response_model=None, responses=SSE_STREAM)
async def create_response(
    body: CreateResponse, state: State, request: Request
) -> dict[str, Any] | EventStream:
    params = body.params()
    job = await unless_disconnected(request, state.responses.create(params))

    async def abandon() -> None:
        # A foreground response stops with its client; a background one goes on.
        if not params.background:
            await state.responses.stop(job)

    if params.stream:
        return EventStream(_sse(job.subscribe()), on_close=abandon)
    if params.background:
        return job.snapshot()
    try:
        await unless_disconnected(request, job.done.wait())
    except ClientGone:
        await abandon()
        raise
    response = job.snapshot()
    if response["status"] == "failed" and response["error"]:
        raise EngineError(response["error"]["message"])
    return response


@router.get("/{response_id}", response_model=None, responses=SSE_STREAM)
async def get_response(
    response_id: str, state: State, stream: bool = False, starting_after: str | None = None
) -> dict[str, Any] | EventStream:
    if not stream:
        return await state.responses.retrieve(response_id)
    after = -1
    if starting_after is not None:
        if not starting_after.lstrip("-").isdigit():
            raise InvalidRequest(
                "Invalid value for 'starting_after': expected an integer sequence number.",
                param="starting_after",
            )
        after = int(starting_after)
    return EventStream(_sse(await state.responses.stream(response_id, after)))


@router.delete("/{response_id}")
async def delete_response(response_id: str, state: State) -> Any:
    return await state.responses.delete(response_id)


@router.post("/{response_id}/cancel")
async def cancel_response(response_id: str, state: State) -> Any:
    return await state.responses.cancel(response_id)


@router.get("/{response_id}/input_items")
async def list_input_items(response_id: str, state: State, page: Page) -> Any:
    return await state.responses.input_items(response_id, page)
