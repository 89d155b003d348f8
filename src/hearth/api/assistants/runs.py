"""/v1/threads/{thread_id}/runs (with their steps) and /v1/threads/runs. A run goes on
when its client leaves, streamed or not; a stream ends with `event: done`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter

from hearth.api.assistants.schemas import CreateRun, CreateThreadAndRun, SubmitToolOutputs
from hearth.api.documented import SSE_STREAM
from hearth.api.responses.pages import Page
from hearth.api.state import State
from hearth.api.streaming import EventStream, sse_event
from hearth.services.assistants import RunJob
from hearth.services.assistants.params import ModifyParams

router = APIRouter(prefix="/threads")


async def _sse(job: RunJob) -> AsyncIterator[bytes]:
    async for name, data in job.subscribe():
        yield sse_event(name, data)
    yield sse_event("done", "[DONE]")


def _answer(job: RunJob, stream: bool | None) -> dict[str, Any] | EventStream:
    return EventStream(_sse(job)) if stream else job.snapshot()


@router.post("/runs", response_model=None, responses=SSE_STREAM)
async def create_thread_and_run(
    body: CreateThreadAndRun, state: State
) -> dict[str, Any] | EventStream:
    return _answer(await state.assistants.create_thread_and_run(body), body.stream)


@router.post("/{thread_id}/runs", response_model=None, responses=SSE_STREAM)
async def create_run(thread_id: str, body: CreateRun, state: State) -> dict[str, Any] | EventStream:
    return _answer(await state.assistants.runs.create(thread_id, body), body.stream)


@router.get("/{thread_id}/runs")
async def list_runs(thread_id: str, state: State, page: Page) -> Any:
    return await state.assistants.runs.list(thread_id, page)


@router.get("/{thread_id}/runs/{run_id}")
async def get_run(thread_id: str, run_id: str, state: State) -> Any:
    return await state.assistants.runs.get(thread_id, run_id)


@router.post("/{thread_id}/runs/{run_id}")
async def modify_run(thread_id: str, run_id: str, body: ModifyParams, state: State) -> Any:
    return await state.assistants.runs.modify(thread_id, run_id, body)


@router.post("/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(thread_id: str, run_id: str, state: State) -> Any:
    return await state.assistants.runs.cancel(thread_id, run_id)


@router.post(
    "/{thread_id}/runs/{run_id}/submit_tool_outputs", response_model=None, responses=SSE_STREAM
)
async def submit_tool_outputs(
    thread_id: str, run_id: str, body: SubmitToolOutputs, state: State
) -> dict[str, Any] | EventStream:
    job = await state.assistants.runs.submit_tool_outputs(thread_id, run_id, body.tool_outputs)
    return _answer(job, body.stream)


@router.get("/{thread_id}/runs/{run_id}/steps")
async def list_steps(thread_id: str, run_id: str, state: State, page: Page) -> Any:
    return await state.assistants.runs.steps(thread_id, run_id, page)


@router.get("/{thread_id}/runs/{run_id}/steps/{step_id}")
async def get_step(thread_id: str, run_id: str, step_id: str, state: State) -> Any:
    return await state.assistants.runs.step(thread_id, run_id, step_id)
