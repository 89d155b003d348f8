"""The upstream Backend: a model served by a pool of OpenAI-compatible engines.

Each request goes to one member (pool.py picks it) as a streaming `/v1/chat/completions`
or `/v1/completions` call. Until its first output arrives nothing has reached the client,
so a member that refuses, fails (5xx, 429, 401/403/404, an HTML page, a stream that is
not SSE) or stays silent past the first-token timeout is left for another member: at
most three members in all, never one twice. After that, failures end the stream
(stream.py). One HTTP session per pool (http.py) keeps connections to members alive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import aiohttp

from hearth.core.errors import (
    HearthError,
    InvalidRequest,
    Overloaded,
    QueueTimeout,
    UpstreamError,
)
from hearth.core.model_spec import ModelSpec
from hearth.engine.types import (
    EmbeddingResult,
    Finished,
    GenerationEvent,
    GenerationRequest,
    MemberStatus,
    ModelInfo,
)
from hearth.engine.upstream.counting import count_of, estimate_prompt
from hearth.engine.upstream.http import (
    Http,
    TransportError,
    describe,
    is_connect_failure,
    loads,
)
from hearth.engine.upstream.pool import Member, Pool
from hearth.engine.upstream.replies import Retry, check_status
from hearth.engine.upstream.stream import SseChunks, StreamEnded, UpstreamGeneration
from hearth.engine.upstream.wire import ChunkReader, Malformed, UpstreamStreamError, request_body

MAX_TRIES = 3  # members one request may be sent to before its first token
DEFAULT_CONTEXT = 4096  # when neither the entry's ctx_size nor the members say
# Token ids are the upstream's: any id is passed on for its engine to check.
UNKNOWN_VOCAB = 1 << 31


class UpstreamBackend:
    kind = "upstream"

    def __init__(self, spec: ModelSpec) -> None:
        self.name = spec.name
        self.spec = spec
        self.upstream_model = spec.upstream_model or spec.name
        self.client = Http(connect_timeout=spec.connect_timeout)
        self.pool = Pool(
            spec.urls,
            self.client,
            interval=spec.health_interval,
            check_timeout=spec.connect_timeout,
        )
        self._info = ModelInfo(
            name=spec.name,
            backend=self.kind,
            context_length=spec.ctx_size or DEFAULT_CONTEXT,
            embedding_length=0,
            vocab_size=UNKNOWN_VOCAB,
            owned_by="upstream",
            metadata={"upstream.model": self.upstream_model},
        )

    @classmethod
    async def open(cls, spec: ModelSpec) -> UpstreamBackend:
        """A pool that checks its members now and then, with what its members tell of
        the model (the entry's ctx_size wins over theirs)."""
        backend = cls(spec)
        found = await asyncio.gather(*(backend._facts_of(m) for m in backend.pool.members))
        facts: dict[str, int] = {}
        for member_facts in found:  # the smallest context any member has
            for key, value in member_facts.items():
                facts[key] = min(value, facts.get(key, value))
        if spec.ctx_size:
            facts.pop("context_length", None)
        backend._info = replace(backend._info, **facts)  # type: ignore[arg-type]
        backend.pool.start()
        return backend

    async def _facts_of(self, member: Member) -> dict[str, int]:
        """What a member's /v1/models says of the model: vLLM's max_model_len,
        llama-server's n_ctx (per slot), n_vocab and n_embd."""
        try:
            status, raw = await self.client.get(
                f"{member.url}/models", member.headers, within=self.spec.connect_timeout
            )
            models = loads(raw).get("data") if status == 200 else None
        except (TimeoutError, TransportError, ValueError, AttributeError) as exc:
            self.pool.failed(member, f"listing models: {describe(exc)}", down=True)
            return {}
        for entry in models if isinstance(models, list) else ():
            if isinstance(entry, dict) and entry.get("id") == self.upstream_model:
                meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
                found = {
                    "context_length": entry.get("max_model_len") or meta.get("n_ctx"),
                    "vocab_size": meta.get("n_vocab"),
                    "embedding_length": meta.get("n_embd"),
                }
                return {k: v for k, v in found.items() if isinstance(v, int) and v > 0}
        return {}

    @property
    def info(self) -> ModelInfo:
        return self._info

    def members(self) -> tuple[MemberStatus, ...]:
        return tuple(m.status() for m in self.pool.members)

    def stats(self) -> dict[str, int]:
        members = self.pool.members
        return {
            "running": sum(m.in_flight for m in members),
            "waiting": 0,
            "members_up": sum(m.healthy for m in members),
            "members": len(members),
        }

    def _exhausted(self, failures: list[tuple[Member, Retry]]) -> HearthError:
        if not failures:
            return QueueTimeout(
                f"No engine of the upstream pool serving {self.name} is reachable now; "
                "retry later.",
                retry_after=self.pool.retry_after(),
            )
        if all(f.busy for _, f in failures):
            wait = min(f.retry_after or 1.0 for _, f in failures)
            return Overloaded(f"Every engine serving {self.name} is busy.", retry_after=wait)
        said = "; ".join(f"{m.url}: {f.reason}" for m, f in failures)
        return UpstreamError(f"The engines serving {self.name} failed the request ({said}).")

    async def _each_member(self, attempt: Callable[[Member], Any]) -> Any:
        """`attempt` on members in turn until one does not raise Retry."""
        failures: list[tuple[Member, Retry]] = []
        tried: list[Member] = []
        while len(tried) < MAX_TRIES:
            member = self.pool.pick(tried)
            if member is None:
                break
            tried.append(member)
            try:
                return await attempt(member)
            except Retry as exc:
                self.pool.failed(member, exc.reason, down=exc.down)
                failures.append((member, exc))
        raise self._exhausted(failures)

    async def start(self, request: GenerationRequest) -> UpstreamGeneration:
        path, body = request_body(request, self.upstream_model)
        estimate = estimate_prompt(request)

        async def attempt(member: Member) -> UpstreamGeneration:
            return await self._attempt(member, path, body, request.n, estimate)

        generation: UpstreamGeneration = await self._each_member(attempt)
        return generation

    async def _attempt(
        self, member: Member, path: str, body: dict[str, Any], n: int, estimate: int
    ) -> UpstreamGeneration:
        member.in_flight += 1
        member.requests += 1
        response: aiohttp.ClientResponse | None = None
        handed = False  # to the generation, which then frees the member
        try:
            url = member.url + path
            try:
                response = await self.client.post(
                    url, body, member.headers, within=self.spec.first_token_timeout
                )
            except (TimeoutError, TransportError) as exc:
                raise self._unreached(exc) from None
            await check_status(response, self.spec.connect_timeout)
            kind = response.headers.get("content-type", "")
            if not kind.startswith("text/event-stream"):
                raise Retry(f"answered {kind or 'without a content type'}, not an event stream")
            chunks = SseChunks(response)
            reader = ChunkReader(n)
            buffered = await self._first_output(chunks, reader)
            generation = UpstreamGeneration(
                self.pool, member, chunks, reader, buffered, estimate, self.spec.token_timeout
            )
            handed = True
            return generation
        finally:
            if not handed:
                member.in_flight -= 1
                if response is not None:
                    response.close()

    def _unreached(self, exc: BaseException) -> Retry:
        """A request that got no answer: the member is taken out when it could not be
        reached or stayed silent, not when it dropped one connection."""
        spec = self.spec
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            why = f"could not be reached within the connect timeout ({spec.connect_timeout:g}s)"
            return Retry(why, down=True)
        if isinstance(exc, TimeoutError):
            return Retry(self._silent(), down=True)
        return Retry(describe(exc), down=is_connect_failure(exc))

    def _silent(self) -> str:
        wait = self.spec.first_token_timeout
        return f"sent nothing within the first-token timeout ({wait:g}s)"

    async def _first_output(self, chunks: SseChunks, reader: ChunkReader) -> list[GenerationEvent]:
        """The events up to the first output (or every choice's end): held back until
        then, so that a member failing before it can still be replaced."""
        deadline = time.monotonic() + self.spec.first_token_timeout
        events: list[GenerationEvent] = []
        while True:
            try:
                events.extend(reader.read(await chunks.next(deadline - time.monotonic())))
            except TimeoutError:
                raise Retry(self._silent(), down=True) from None
            except StreamEnded:
                raise Retry("closed the stream before its first token") from None
            except (Malformed, UpstreamStreamError) as exc:
                raise Retry(str(exc)) from None
            except TransportError as exc:
                raise Retry(describe(exc)) from None
            if any(not isinstance(e, Finished) for e in events):
                return events
            if all(reader.state(i).reason is not None for i in range(reader.n)):
                return events

    async def _json(
        self, member: Member, url: str, body: dict[str, Any], *, quick: bool = False
    ) -> Any:
        """A plain JSON call; `quick` ones (token counts) wait no longer than a connect."""
        wait = self.spec.connect_timeout if quick else self.spec.first_token_timeout
        member.in_flight += 1
        reply: aiohttp.ClientResponse | None = None
        try:
            try:
                reply = await self.client.post(url, body, member.headers, within=wait)
                await check_status(reply, self.spec.connect_timeout)
                async with asyncio.timeout(wait):
                    raw = await reply.read()
            except (TimeoutError, TransportError) as exc:
                raise self._unreached(exc) from None
            try:
                return loads(raw)
            except ValueError:
                raise Retry("answered with something that is not JSON") from None
        finally:
            member.in_flight -= 1
            if reply is not None:
                reply.release()

    async def embed(
        self, inputs: Sequence[str | Sequence[int]], *, truncate: bool = False
    ) -> EmbeddingResult:
        # `truncate` is the upstream's to honour or not: an input over its limit is its 400.
        texts = [i if isinstance(i, str) else list(i) for i in inputs]
        body = {"model": self.upstream_model, "input": texts}

        async def attempt(member: Member) -> EmbeddingResult:
            member.requests += 1
            reply = await self._json(member, f"{member.url}/embeddings", body)
            try:
                data = sorted(reply["data"], key=lambda d: d["index"])
                vectors = [[float(x) for x in d["embedding"]] for d in data]
                tokens = int((reply.get("usage") or {}).get("prompt_tokens", 0))
            except (KeyError, TypeError, ValueError, AttributeError):
                raise Retry("answered embeddings in a shape that is not OpenAI's") from None
            if len(vectors) != len(inputs):
                raise Retry("answered a different number of embeddings")
            return EmbeddingResult(vectors=vectors, prompt_tokens=tokens)

        result: EmbeddingResult = await self._each_member(attempt)
        return result

    async def _tokenizer(self, path: str, body: dict[str, Any]) -> Any | None:
        """A member's /tokenize or /detokenize answer (vLLM's and llama-server's, at the
        server's root); None when no healthy member has one."""
        for member in self.pool.members:
            if not member.healthy or member.has_tokenize is False:
                continue
            try:
                reply = await self._json(member, f"{member.root}{path}", body, quick=True)
            except InvalidRequest:
                member.has_tokenize = False  # a server that reads no such body
                continue
            except Retry as exc:
                if exc.reason.startswith(("HTTP 404", "HTTP 405")):
                    member.has_tokenize = False  # it has none: never asked again
                continue
            member.has_tokenize = True
            return reply
        return None

    async def prompt_tokens(self, request: GenerationRequest) -> int:
        if request.prompt_ids is not None:
            return len(request.prompt_ids)
        text = request.prompt
        if request.messages is not None:
            _, chat = request_body(request, self.upstream_model)
            body = {"model": self.upstream_model, "messages": chat["messages"]}
            reply = await self._tokenizer("/tokenize", {**body, "add_generation_prompt": True})
            if isinstance(reply, dict) and isinstance(reply.get("count"), int):
                return int(reply["count"])  # vLLM counts a chat itself
            # llama-server tokenizes text only: its own template renders the chat first.
            rendered = await self._tokenizer("/apply-template", body)
            text = rendered.get("prompt") if isinstance(rendered, dict) else None
        if not isinstance(text, str):
            return estimate_prompt(request)
        body = {"model": self.upstream_model, "prompt": text, "content": text}
        count = count_of(await self._tokenizer("/tokenize", body))
        return count if count is not None else estimate_prompt(request)

    async def tokenize(self, text: str) -> list[int]:
        body = {"model": self.upstream_model, "prompt": text, "content": text}
        reply = await self._tokenizer("/tokenize", {**body, "add_special_tokens": False})
        tokens = reply.get("tokens") if isinstance(reply, dict) else None
        if not isinstance(tokens, list):
            raise InvalidRequest(f"the engines serving {self.name} do not tokenize text")
        return [t["id"] if isinstance(t, dict) else int(t) for t in tokens]

    async def detokenize(self, ids: Sequence[int]) -> str:
        body = {"model": self.upstream_model, "tokens": list(ids)}
        reply = await self._tokenizer("/detokenize", body)
        # vLLM answers {"prompt": …}, llama-server {"content": …}
        text = reply.get("prompt", reply.get("content")) if isinstance(reply, dict) else None
        if not isinstance(text, str):
            raise InvalidRequest(
                f"the engines serving {self.name} do not turn token ids into text", param="prompt"
            )
        return text

    async def close(self) -> None:
        await self.pool.close()
        await self.client.aclose()
