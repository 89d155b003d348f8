"""Running one request's `n` choices on a backend and merging their events.

Every surface (OpenAI chat and completions, Ollama, the WebSocket, Responses) goes
through here, so choice fan-out, usage totals and engine errors are handled once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from hearth.core.errors import EngineError
from hearth.engine.base import Generation
from hearth.engine.registry import ModelRegistry
from hearth.engine.types import Finished, FinishReason, GenerationEvent, GenerationRequest, Usage


@dataclass
class ChoiceResult:
    index: int
    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


@dataclass
class Run:
    """The admitted generations of one request, one per choice. Choices come in groups of
    `per_prompt` that share a prompt (n choices of each of several prompts)."""

    generations: list[Generation]
    per_prompt: int = 1
    finished: dict[int, Finished] = field(default_factory=dict)

    async def events(self) -> AsyncIterator[tuple[int, GenerationEvent]]:
        """(choice index, event) pairs; each choice ends with its Finished."""
        try:
            if len(self.generations) == 1:
                async for event in self.generations[0]:
                    self._note(0, event)
                    yield 0, event
                return
            queue: asyncio.Queue[tuple[int, GenerationEvent]] = asyncio.Queue()

            async def pump(index: int, gen: Generation) -> None:
                async for event in gen:
                    await queue.put((index, event))

            tasks = [asyncio.create_task(pump(i, g)) for i, g in enumerate(self.generations)]
            try:
                remaining = len(tasks)
                while remaining:
                    index, event = await queue.get()
                    if isinstance(event, Finished):
                        remaining -= 1
                    self._note(index, event)
                    yield index, event
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await self.aclose()

    def _note(self, index: int, event: GenerationEvent) -> None:
        if isinstance(event, Finished):
            self.finished[index] = event

    @property
    def usage(self) -> Usage:
        """Each distinct prompt counts once; completion tokens of all choices add up."""
        done = [self.finished[i] for i in sorted(self.finished)]
        prompts = [f for i, f in sorted(self.finished.items()) if i % self.per_prompt == 0]
        return Usage(
            prompt_tokens=sum(f.usage.prompt_tokens for f in prompts),
            completion_tokens=sum(f.usage.completion_tokens for f in done),
            cached_tokens=sum(f.usage.cached_tokens for f in prompts),
        )

    async def aclose(self) -> None:
        for gen in self.generations:
            await gen.aclose()

    async def collect(self) -> list[ChoiceResult]:
        """Run to the end; an engine failure on any choice raises EngineError."""
        results = [ChoiceResult(index=i) for i in range(len(self.generations))]
        async for index, event in self.events():
            result = results[index]
            if isinstance(event, Finished):
                if event.reason == "error":
                    raise EngineError(event.error or "the engine failed")
                result.finish_reason = event.reason
                result.usage = event.usage
            else:
                result.text += event.text
        return results


def with_choices(request: GenerationRequest, n: int) -> list[GenerationRequest]:
    """`n` copies of a request. Choice i gets seed + i, so a seeded request still gives
    n different choices, each reproducible."""
    seed = request.sampling.seed
    if n == 1 or seed is None:
        return [request] * n
    return [replace(request, sampling=replace(request.sampling, seed=seed + i)) for i in range(n)]


async def start_run(
    registry: ModelRegistry, requests: list[GenerationRequest], per_prompt: int = 1
) -> Run:
    """Admit every generation of a request (all for the same model), or none of them:
    if one fails, or the caller is cancelled while waiting, the admitted ones are closed."""
    backend = await registry.get(requests[0].model)
    tasks = [asyncio.ensure_future(backend.start(r)) for r in requests]
    try:
        await asyncio.wait(tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        failed = [t for t in tasks if t.cancelled() or t.exception() is not None]
        if failed:
            for task in tasks:
                if not task.cancelled() and task.exception() is None:
                    with contextlib.suppress(Exception):
                        await task.result().aclose()
    for task in failed:
        if not task.cancelled():
            raise task.exception()  # type: ignore[misc]
    if failed:
        raise asyncio.CancelledError()
    return Run(generations=[t.result() for t in tasks], per_prompt=per_prompt)
