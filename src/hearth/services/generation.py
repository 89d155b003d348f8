"""Running one request's `n` choices on a backend and merging their events.

Every surface (OpenAI chat and completions, Ollama, the WebSocket, Responses, Assistants
runs) goes through here, so choice fan-out, usage totals, engine errors and the metrics
of each request (the registry's meter) are handled once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from hearth.chat.reasoning import ReasoningSyntax
from hearth.core.errors import Overloaded
from hearth.engine.base import Backend, Generation
from hearth.engine.meter import RunMeter, RunReport
from hearth.engine.registry import DEFAULT, KeepAlive, ModelRegistry, Release
from hearth.engine.types import (
    Finished,
    FinishReason,
    GenerationEvent,
    GenerationRequest,
    ReasoningDelta,
    TokenEvent,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from hearth.services.failures import engine_failure
from hearth.services.limits import Lease, current_lease
from hearth.services.reply_parsing import ReplyParsers

log = logging.getLogger(__name__)


@dataclass
class ChoiceResult:
    index: int
    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    stop: str | None = None  # the stop string that ended it, when one did
    logprobs: list[TokenLogprob] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: str = ""  # a reasoning model's thinking, apart from its answer (text)
    reasoning_tokens: int = 0

    def add(self, delta: ToolCallDelta) -> None:
        if delta.id is not None:
            self.tool_calls.append(ToolCall(delta.id, delta.name or "", ""))
        call = self.tool_calls[delta.call]
        self.tool_calls[delta.call] = replace(call, arguments=call.arguments + delta.arguments)


@dataclass
class Clock:
    """Checkpoints of one request in perf_counter nanoseconds, from when a surface took
    it: every time a surface reports (Ollama's durations, the WebSocket's timing) and
    every one /metrics records come from here."""

    started_ns: int = field(default_factory=time.perf_counter_ns)
    loaded_ns: int | None = None  # the model was ready (Ollama's load_duration)
    admitted_ns: int | None = None  # every generation had a slot
    first_output_ns: int | None = None
    last_ns: dict[int, int] = field(default_factory=dict)  # each choice's latest output
    gaps: list[float] = field(default_factory=list)  # seconds between a choice's outputs

    def output(self, index: int) -> None:
        now = time.perf_counter_ns()
        if self.first_output_ns is None:
            self.first_output_ns = now
        last = self.last_ns.get(index)
        if last is not None:
            self.gaps.append((now - last) / 1e9)
        self.last_ns[index] = now


@dataclass(frozen=True)
class _Metered:
    meter: RunMeter
    model: str  # the registered name, whatever alias the client used


@dataclass
class ModelReply:
    """The model's reply to one API request: its admitted engine generations, one per
    prompt, each with `n` choices (choice j of prompt i is overall choice i * n + j).
    Not an Assistants run (store.models.Run), which holds one of these while it runs."""

    generations: list[Generation]
    n: int = 1
    release: Release | None = None  # the model lease, given back when the run closes
    finished: dict[int, Finished] = field(default_factory=dict)
    # The functions the model may call: its text is then split into content and calls.
    tool_names: tuple[str, ...] = ()
    clock: Clock = field(default_factory=Clock)
    metered: _Metered | None = None  # set when the registry has a meter; reported on close
    # A limited key's lease: completion tokens are charged to it as they stream; closing
    # the run frees the request's concurrency slot.
    lease: Lease | None = None
    charged: int = 0  # completion tokens charged so far
    call_id_prefix: str = "call_"  # of the ids given to the model's tool calls (toolu_)
    # The tokens each choice's reasoning took (a reasoning model's chat reply).
    reasoning_tokens: dict[int, int] = field(default_factory=dict)

    @property
    def prompt_tokens(self) -> int:
        return sum(g.prompt_tokens for g in self.generations)

    @property
    def first_output_ns(self) -> int | None:
        return self.clock.first_output_ns

    async def events(self) -> AsyncIterator[tuple[int, GenerationEvent]]:
        """(overall choice index, event) pairs; each choice ends with its Finished."""
        async for index, event in self._parsed_events():
            if not isinstance(event, Finished):
                self.clock.output(index)
            yield index, event

    async def _parsed_events(self) -> AsyncIterator[tuple[int, GenerationEvent]]:
        parsers = ReplyParsers(self.tool_names, self.call_id_prefix, self._reasoning_of)
        self.reasoning_tokens = parsers.reasoning_tokens
        async for index, event in self._raw_events():
            for out in parsers.parse(index, event):
                if isinstance(out, Finished):
                    self.finished[index] = out  # a reply of calls ends in "tool_calls"
                    if out.usage.reasoning_tokens:  # the engine's count is exact
                        parsers.reasoning_tokens[index] = out.usage.reasoning_tokens
                yield index, out

    def _reasoning_of(self, index: int) -> tuple[ReasoningSyntax | None, bool]:
        """How choice `index` marks its reasoning (only a reasoning model's generations
        say), and whether it starts inside a block its prompt opened."""
        gen = self.generations[index // self.n]
        return getattr(gen, "reasoning", None), bool(getattr(gen, "reasoning_inside", False))

    async def _raw_events(self) -> AsyncIterator[tuple[int, GenerationEvent]]:
        try:
            if len(self.generations) == 1:
                async for event in self.generations[0]:
                    self._note(event.index, event)
                    yield event.index, event
                return
            queue: asyncio.Queue[tuple[int, GenerationEvent]] = asyncio.Queue()

            async def pump(offset: int, gen: Generation) -> None:
                async for event in gen:
                    await queue.put((offset + event.index, event))

            tasks = [
                asyncio.create_task(pump(i * self.n, g)) for i, g in enumerate(self.generations)
            ]
            try:
                remaining = len(self.generations) * self.n
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
        elif self.lease is not None and isinstance(event, TokenEvent):
            self.charged += 1  # about one token per event; the end settles the exact count
            self.lease.charge(1)

    @property
    def usage(self) -> Usage:
        """Each prompt counts once; completion tokens of all choices add up."""
        done = list(self.finished.values())
        per_prompt: dict[int, Finished] = {}
        for index, event in self.finished.items():
            per_prompt.setdefault(index // self.n, event)
        return Usage(
            prompt_tokens=sum(f.usage.prompt_tokens for f in per_prompt.values()),
            completion_tokens=sum(f.usage.completion_tokens for f in done),
            cached_tokens=sum(f.usage.cached_tokens for f in per_prompt.values()),
            reasoning_tokens=sum(self.reasoning_tokens.values()),
        )

    async def aclose(self) -> None:
        ended_ns = time.perf_counter_ns()
        for gen in self.generations:
            await gen.aclose()
        release, self.release = self.release, None
        if release is not None:
            await release()
        lease, self.lease = self.lease, None
        if lease is not None:
            lease.charge(self.usage.completion_tokens - self.charged)
            await lease.settle()
            # The work is done: its concurrency slot is free before a stream's last
            # lines ([DONE]) reach a client, who may send its next request at once.
            await lease.release()
        metered, self.metered = self.metered, None
        if metered is not None:
            try:
                metered.meter.finished(metered.model, self._report(ended_ns))
            except Exception:  # a metrics fault must never fail a request
                log.exception("recording the metrics of a request failed")

    def _report(self, ended_ns: int) -> RunReport:
        choices = len(self.generations) * self.n
        clock = self.clock
        first = clock.first_output_ns
        admitted = clock.admitted_ns if clock.admitted_ns is not None else clock.started_ns
        return RunReport(
            n=self.n,
            usage=self.usage,
            reasons=[
                self.finished[i].reason if i in self.finished else "cancelled"
                for i in range(choices)
            ],
            queue=(admitted - clock.started_ns) / 1e9,
            ttft=None if first is None else (first - clock.started_ns) / 1e9,
            e2e=(ended_ns - clock.started_ns) / 1e9,
            token_gaps=clock.gaps,
        )

    async def collect(self) -> list[ChoiceResult]:
        """Run to the end; an engine failure on any choice raises EngineError."""
        results = [ChoiceResult(index=i) for i in range(len(self.generations) * self.n)]
        async for index, event in self.events():
            result = results[index]
            if isinstance(event, Finished):
                if event.reason == "error":
                    raise engine_failure(event)
                result.finish_reason = event.reason
                result.usage = event.usage
                result.reasoning_tokens = self.reasoning_tokens.get(index, 0)
                result.stop = event.stop
            elif isinstance(event, ToolCallDelta):
                result.add(event)
            elif isinstance(event, ReasoningDelta):
                result.reasoning += event.text
            else:
                result.text += event.text
                result.logprobs.extend(event.logprobs)
        return results


async def start_reply(
    registry: ModelRegistry,
    requests: list[GenerationRequest],
    keep_alive: KeepAlive = DEFAULT,
    clock: Clock | None = None,
) -> ModelReply:
    """Admit one generation per request (all for the same model, with the same n), or
    none: if one fails, or the caller is cancelled while waiting, the admitted ones are
    closed. The run holds a lease on the model until it is closed. With a meter on the
    registry, the run's times and tokens are reported to it when it closes. A surface
    that started timing the request earlier passes its clock. A limited key's request
    (services/limits) has its prompt's tokens taken against the key's tokens per minute
    and budget once the engine has counted them; a refusal closes the run and raises."""
    clock = clock if clock is not None else Clock()
    meter = registry.meter
    try:
        backend, release = await registry.acquire(requests[0].model, keep_alive)
    except Overloaded as exc:  # its model found no place within the queue timeout
        if meter is not None:
            meter.refused(registry.resolve(requests[0].model), exc)
        raise
    if clock.loaded_ns is None:
        clock.loaded_ns = time.perf_counter_ns()
    model = registry.resolve(requests[0].model) if meter is not None else ""
    try:
        run = await _admit_all(backend, requests, release)
    except BaseException as exc:
        await release()
        if meter is not None:
            _not_admitted(meter, model, requests, clock.started_ns, exc)
        raise
    lease = current_lease()
    if lease is not None:
        try:  # the key's tokens per minute and budget admit the prompt, or refuse it
            await lease.take_prompt(run.prompt_tokens)
        except BaseException:
            await run.aclose()
            raise
        run.lease = lease
    clock.admitted_ns = time.perf_counter_ns()
    run.clock = clock
    if meter is not None:
        run.metered = _Metered(meter, model)
    return run


async def count_prompt(
    registry: ModelRegistry, request: GenerationRequest, keep_alive: KeepAlive = DEFAULT
) -> int:
    """The prompt tokens `start_reply([request])` would decode, counted by the model that
    would decode them; nothing is generated."""
    backend, release = await registry.acquire(request.model, keep_alive)
    try:
        return await backend.prompt_tokens(request)
    finally:
        await release()


def _not_admitted(
    meter: RunMeter,
    model: str,
    requests: list[GenerationRequest],
    started_ns: int,
    exc: BaseException,
) -> None:
    """A request refused for want of a slot, or given up while it waited for one (the
    client left): both tell an operator the server is short of slots."""
    if isinstance(exc, Overloaded):
        meter.refused(model, exc)
    elif isinstance(exc, asyncio.CancelledError):
        waited = (time.perf_counter_ns() - started_ns) / 1e9
        n = requests[0].n
        reasons: tuple[FinishReason, ...] = ("cancelled",) * (len(requests) * n)
        report = RunReport(n, Usage(0, 0), reasons, queue=waited, ttft=None, e2e=waited)
        meter.finished(model, report)


async def _admit_all(
    backend: Backend, requests: list[GenerationRequest], release: Release
) -> ModelReply:
    tasks = [asyncio.ensure_future(backend.start(r)) for r in requests]
    admitted = False
    try:
        await asyncio.wait(tasks)
        for task in tasks:
            if task.cancelled():
                raise asyncio.CancelledError()
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        admitted = True
        first = requests[0]
        return ModelReply(
            generations=[t.result() for t in tasks],
            n=first.n,
            release=release,
            tool_names=tuple(t.name for t in first.tools) if first.calls_tools else (),
        )
    finally:
        if not admitted:
            # Also when the caller was cancelled just as the last one was admitted: every
            # generation that did start must be closed, or its slot stays taken.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in tasks:
                if not task.cancelled() and task.exception() is None:
                    with contextlib.suppress(Exception):
                        await task.result().aclose()
