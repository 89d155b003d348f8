"""/v1/messages/batches: create, retrieve, list, cancel, delete, and the results file.

Each request's params are checked as a /v1/messages body when the batch is created (a
bad one makes the whole create a 400 naming it); running them is services/batches.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from hearth.api.anthropic.convert import generation_request
from hearth.api.anthropic.replies import DeletedMessageBatch, MessageBatch, MessageBatchList
from hearth.api.anthropic.schemas import BatchCreateRequest
from hearth.api.errors import new_request_id
from hearth.api.state import State
from hearth.api.streaming import EventStream
from hearth.core.errors import InvalidRequest
from hearth.store.pages import PageQuery

router = APIRouter(prefix="/messages/batches")

JSONL = "application/x-jsonl"
RESULTS_FILE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The results file: one JSON object a line, a request's custom_id and result",
        "content": {JSONL: {"itemSchema": {"type": "object"}}},
    }
}


def _json(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers={"request-id": new_request_id()})


def _results_url(request: Request, batch_id: str) -> str:
    return str(request.url_for("message_batch_results", message_batch_id=batch_id))


def _checked(body: BatchCreateRequest) -> list[tuple[str, dict[str, Any]]]:
    """(custom_id, params) of each request, its params checked as /v1/messages would."""
    out = []
    seen: set[str] = set()
    for i, item in enumerate(body.requests):
        if item.custom_id in seen:
            raise InvalidRequest(
                f"requests[{i}].custom_id: custom_id {item.custom_id!r} is used by more than "
                "one request; each request's custom_id must be unique within its batch.",
                param=f"requests[{i}].custom_id",
            )
        seen.add(item.custom_id)
        param = f"requests[{i}].params"
        if item.params.stream:
            raise InvalidRequest(
                f"{param}.stream: a batch's requests cannot stream; leave 'stream' out.",
                param=f"{param}.stream",
            )
        try:
            generation_request(item.params)
        except InvalidRequest as exc:
            raise InvalidRequest(f"{param}: {exc.message}", param=param) from None
        out.append((item.custom_id, item.params.model_dump(mode="json", exclude_unset=True)))
    return out


@router.post("", response_model=MessageBatch)
async def create_batch(body: BatchCreateRequest, state: State, request: Request) -> Response:
    row = await state.batches.create(_checked(body))
    return _json(await state.batches.retrieve(row.id, _results_url(request, row.id)))


@router.get("", response_model=MessageBatchList)
async def list_batches(
    state: State,
    request: Request,
    before_id: str | None = None,
    after_id: str | None = None,
    limit: str = "20",
) -> Response:
    # Checked here rather than by FastAPI, so the error names `limit`.
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        raise InvalidRequest(
            f"limit: expected an integer from 1 to 1000, got {limit!r}.", param="limit"
        )
    query = PageQuery(limit=int(limit), order="desc", after=after_id, before=before_id)
    page = await state.batches.list(query, lambda batch_id: _results_url(request, batch_id))
    return _json(page)


@router.get("/{message_batch_id}", response_model=MessageBatch)
async def retrieve_batch(message_batch_id: str, state: State, request: Request) -> Response:
    url = _results_url(request, message_batch_id)
    return _json(await state.batches.retrieve(message_batch_id, url))


@router.post("/{message_batch_id}/cancel", response_model=MessageBatch)
async def cancel_batch(message_batch_id: str, state: State, request: Request) -> Response:
    url = _results_url(request, message_batch_id)
    return _json(await state.batches.cancel(message_batch_id, url))


@router.delete("/{message_batch_id}", response_model=DeletedMessageBatch)
async def delete_batch(message_batch_id: str, state: State) -> Response:
    return _json(await state.batches.delete(message_batch_id))


@router.get(
    "/{message_batch_id}/results",
    name="message_batch_results",
    response_class=Response,
    responses=RESULTS_FILE,
)
async def message_batch_results(message_batch_id: str, state: State) -> Response:
    lines = await state.batches.results(message_batch_id)
    return EventStream(lines, media_type=JSONL, headers={"request-id": new_request_id()})
