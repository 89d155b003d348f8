"""A scripted backend for shape and error tests: no model, deterministic, fast.

"Tokens" are whitespace-separated words (each keeps its leading space), or pieces of
`token_chars` characters, which split words and tags anywhere. The reply comes
from `script`, a fixed string or a function of the request. `fail_after` ends the stream
with an engine error after that many tokens, to test error events mid-stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Callable, Sequence

from hearth.core.errors import ContextLengthExceeded, InvalidRequest
from hearth.engine.textstream import OutputText
from hearth.engine.types import (
    EmbeddingResult,
    Finished,
    FinishReason,
    GenerationEvent,
    GenerationRequest,
    ModelInfo,
    TokenEvent,
    Usage,
    first_unknown_token,
)

_WORD = re.compile(r"\s*\S+|\s+")


def fake_tokens(text: str) -> list[str]:
    return _WORD.findall(text)


class FakeGeneration:
    def __init__(self, backend: FakeBackend, request: GenerationRequest, prompt_tokens: int):
        self._backend = backend
        self._request = request
        self.prompt_tokens = prompt_tokens
        self.cached_tokens = 0

    def __aiter__(self) -> AsyncIterator[GenerationEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[GenerationEvent]:
        self._backend.running += 1
        try:
            for index in range(self._request.n):
                async for event in self._choice(index):
                    yield event
        finally:
            self._backend.running -= 1

    async def _choice(self, index: int) -> AsyncIterator[GenerationEvent]:
        backend = self._backend
        reply = backend.script(self._request) if callable(backend.script) else backend.script
        limit = self._request.max_tokens or backend.context_length - self.prompt_tokens
        out = OutputText(self._request.stop)
        n = 0
        reason: FinishReason = "stop"
        for piece in backend.pieces(reply):
            if backend.token_delay:
                await asyncio.sleep(backend.token_delay)
            if backend.fail_after is not None and n >= backend.fail_after:
                yield Finished("error", self._usage(n), index, error="scripted engine failure")
                return
            n += 1
            text, stopped = out.push(piece.encode())
            if stopped or n >= limit:
                if not stopped:
                    text += out.flush()
                    reason = "length"
                if text:
                    yield TokenEvent(text, index=index)
                break
            if text:
                yield TokenEvent(text, index=index)
        else:
            tail = out.flush()
            if tail:
                yield TokenEvent(tail, index=index)
        yield Finished(reason, self._usage(n), index, stop=out.matched)

    def _usage(self, n: int) -> Usage:
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=n)

    async def aclose(self) -> None:
        return None


class FakeBackend:
    kind = "fake"

    def __init__(
        self,
        name: str = "fake-model",
        script: str | Callable[[GenerationRequest], str] = "Hello from the fake backend.",
        *,
        context_length: int = 256,
        embedding_length: int = 8,
        vocab_size: int = 50_000,
        token_delay: float = 0.0,
        fail_after: int | None = None,
        token_chars: int | None = None,
    ) -> None:
        self.script = script
        self.token_chars = token_chars
        self.context_length = context_length
        self.token_delay = token_delay
        self.fail_after = fail_after
        self.running = 0
        self.requests: list[GenerationRequest] = []
        self._info = ModelInfo(
            name=name,
            backend=self.kind,
            context_length=context_length,
            embedding_length=embedding_length,
            vocab_size=vocab_size,
        )

    @property
    def info(self) -> ModelInfo:
        return self._info

    def pieces(self, reply: str) -> list[str]:
        if self.token_chars is None:
            return fake_tokens(reply)
        n = self.token_chars
        return [reply[i : i + n] for i in range(0, len(reply), n)]

    def _prompt_text(self, request: GenerationRequest) -> str:
        if request.messages is not None:
            return "\n".join(f"{m.role}: {m.content or ''}" for m in request.messages)
        return request.prompt or ""

    def _known_ids(self, ids: Sequence[int], param: str) -> list[int]:
        bad = first_unknown_token(ids, self._info.vocab_size)
        if bad is not None:
            raise InvalidRequest(f"token id {ids[bad]} is not in the vocabulary", param=param)
        return list(ids)

    async def prompt_tokens(self, request: GenerationRequest) -> int:
        if request.prompt_ids is not None:
            return len(self._known_ids(request.prompt_ids, "prompt"))
        return len(fake_tokens(self._prompt_text(request)))

    async def start(self, request: GenerationRequest) -> FakeGeneration:
        self.requests.append(request)
        n_prompt = await self.prompt_tokens(request)
        wanted = n_prompt + (request.max_tokens or 1)
        if wanted > self.context_length:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {self.context_length} tokens. "
                f"However, you requested {wanted} tokens.",
                param="max_tokens" if request.max_tokens else "messages",
            )
        return FakeGeneration(self, request, n_prompt)

    async def tokenize(self, text: str) -> list[int]:
        return [len(piece) for piece in fake_tokens(text)]

    async def detokenize(self, ids: Sequence[int]) -> str:
        # Fake ids are not invertible (see tokenize); each one reads as its number.
        return "".join(f"<{t}>" for t in self._known_ids(ids, "prompt"))

    async def embed(
        self, inputs: Sequence[str | Sequence[int]], *, truncate: bool = False
    ) -> EmbeddingResult:
        pieces = [
            fake_tokens(item) if isinstance(item, str) else self._known_ids(item, f"input[{i}]")
            for i, item in enumerate(inputs)
        ]
        if truncate:
            pieces = [p[: self.context_length] for p in pieces]
        vectors = []
        for tokens in pieces:
            digest = hashlib.sha256(repr(tokens).encode()).digest()
            raw = [b / 255.0 + 0.01 for b in digest[: self._info.embedding_length]]
            norm = sum(x * x for x in raw) ** 0.5
            vectors.append([x / norm for x in raw])
        return EmbeddingResult(vectors=vectors, prompt_tokens=sum(map(len, pieces)))

    def stats(self) -> dict[str, int]:
        return {"running": self.running, "waiting": 0}

    async def close(self) -> None:
        return None
