"""The llama.cpp Backend: template + tokenizer on the event loop, decoding in the scheduler."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from collections.abc import Sequence as Seq
from pathlib import Path

from hearth.chat.reasoning import (
    ReasoningSyntax,
    Start,
    ThinkingControl,
    answer_grammar,
    close_in_prompt,
    effort_budget,
    reply_start,
    resolve,
    template_vars,
)
from hearth.chat.templates import ChatTemplate
from hearth.chat.tools import template_messages, tool_schema, uses_tools
from hearth.core.errors import ContextLengthExceeded, EngineError, InvalidRequest
from hearth.core.ids import unix_now
from hearth.engine.constraints import request_grammar
from hearth.engine.llama_cpp.budget import ReasoningBudget
from hearth.engine.llama_cpp.embedding import Embedder
from hearth.engine.llama_cpp.model import LlamaModel
from hearth.engine.llama_cpp.sampling import GrammarError, check_grammar
from hearth.engine.llama_cpp.scheduler import Scheduler, SchedulerConfig, Sequence
from hearth.engine.types import (
    EmbeddingResult,
    Finished,
    GenerationEvent,
    GenerationRequest,
    Grammar,
    ModelInfo,
    first_unknown_token,
)

# What Hearth itself hands a chat template; a request's chat_template_kwargs cannot.
_RENDER_ARGS = frozenset({"messages", "tools", "add_generation_prompt", "bos_token", "eos_token"})


class LlamaGeneration:
    """Iterates the events of one request's admitted sequences (one per choice).

    A plain async iterator, not an async generator: breaking out of an `async for` and
    iterating again later must not cancel the request (a generator's finaliser would).
    Cancelling the task awaiting the next event, or `aclose()`, does cancel it.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        seqs: list[Sequence],
        reasoning: ReasoningSyntax | None = None,
        reasoning_inside: bool = False,
    ) -> None:
        self._scheduler = scheduler
        # How the reply marks its reasoning (services/generation splits it off), and
        # whether it starts inside a block the prompt opened.
        self.reasoning = reasoning
        self.reasoning_inside = reasoning_inside
        self._seqs = seqs
        self._events = seqs[0].events
        self._open = len(seqs)
        self.prompt_tokens = len(seqs[0].prompt)
        self.cached_tokens = seqs[0].cached_tokens

    def __aiter__(self) -> LlamaGeneration:
        return self

    async def __anext__(self) -> GenerationEvent:
        if not self._open:
            raise StopAsyncIteration
        try:
            event = await self._events.get()
        except BaseException:
            await self.aclose()
            raise
        if isinstance(event, Finished):
            self._open -= 1
        return event

    async def aclose(self) -> None:
        if self._open:
            self._open = 0
            self._scheduler.cancel(self._seqs)


class LlamaCppBackend:
    kind = "llama_cpp"

    def __init__(
        self,
        name: str,
        path: Path,
        config: SchedulerConfig,
        *,
        debug: bool = False,
        reasoning_format: str = "auto",
        reasoning_budget: int = -1,
    ):
        self.name = name
        self.model = LlamaModel(path, debug=debug)
        self._config = config
        self._closed = False
        try:
            # Everything that may refuse the file comes before the scheduler's thread
            # and context exist: a failed load leaves nothing running.
            model = self.model
            self.template = ChatTemplate(
                model.chat_template,
                bos_token=model.token_text(model.bos_id) if model.bos_id >= 0 else "",
                eos_token=model.token_text(model.eos_id) if model.eos_id >= 0 else "",
            )
            # How this model marks its reasoning: from its template, or its entry's word.
            self.reasoning = resolve(reasoning_format, model.chat_template)
            self.reasoning_budget = reasoning_budget
            if self.reasoning is not None:
                model.shown = self._single_tokens(self.reasoning.markers)
            self.scheduler = Scheduler(self.model, config)
        except BaseException:
            self.model.close()
            raise
        self._embedder: Embedder | None = None
        self._embedder_lock = asyncio.Lock()
        meta = self.model.metadata
        self._info = ModelInfo(
            name=name,
            backend=self.kind,
            context_length=self.scheduler.seq_limit,
            embedding_length=self.model.n_embd,
            vocab_size=self.model.n_vocab,
            created=int(path.stat().st_mtime) if path.exists() else unix_now(),
            size_bytes=path.stat().st_size if path.exists() else 0,
            metadata=meta,
            chat_template=self.template.source,
            reasoning=self.reasoning.family if self.reasoning is not None else None,
        )

    def _single_tokens(self, texts: Seq[str]) -> frozenset[int]:
        ids = (self.model.tokenize(t, add_special=False, parse_special=True) for t in texts)
        return frozenset(one[0] for one in ids if len(one) == 1)

    @property
    def info(self) -> ModelInfo:
        return self._info

    def render(self, request: GenerationRequest) -> list[int]:
        return self._render(request)[0]

    @staticmethod
    def _template_kwargs(request: GenerationRequest) -> dict[str, object]:
        taken = sorted(set(request.template_kwargs) & _RENDER_ARGS)
        if taken:
            raise InvalidRequest(
                f"chat_template_kwargs cannot set {', '.join(taken)}: Hearth sets them",
                param="chat_template_kwargs",
            )
        return dict(request.template_kwargs)

    def _thinking_off(self, request: GenerationRequest) -> bool:
        budget = request.max_reasoning_tokens
        if budget is None:
            budget = self.reasoning_budget
        return request.think is False or budget == 0

    def _render(self, request: GenerationRequest) -> tuple[list[int], Start]:
        """The prompt's tokens, and where a reasoning model's reply starts."""
        if request.messages is not None:
            template = self.template
            if request.template is not None:
                try:
                    template = ChatTemplate(
                        request.template, bos_token=template.bos_token, eos_token=template.eos_token
                    )
                except ValueError as exc:
                    raise InvalidRequest(str(exc), param="template") from None
            tools = request.tools if request.calls_tools else ()
            native = uses_tools(template.source)
            syntax = self.reasoning
            off = self._thinking_off(request)
            extra = self._template_kwargs(request)
            if syntax is not None:
                control = ThinkingControl(False if off else request.think, request.reasoning_effort)
                extra.update(template_vars(syntax, control))
            text = template.render(
                template_messages(request.messages, tools, native),
                add_generation_prompt=request.add_generation_prompt,
                tools=[tool_schema(t) for t in tools] if native and tools else None,
                **extra,
            )
            start: Start = None
            if syntax is not None and request.add_generation_prompt:
                if off and syntax.off_switch is None:
                    text = close_in_prompt(text, syntax)
                start = reply_start(text, syntax)
            bos = template.bos_token
            add_bos = self.model.add_bos and not (bos and text.startswith(bos))
            tokens = self.model.tokenize(text, add_special=add_bos, parse_special=True)
            return tokens, start
        if request.prompt_ids is not None:
            return self._known_ids(request.prompt_ids, "prompt"), None
        assert request.prompt is not None
        tokens = self.model.tokenize(
            request.prompt, add_special=self.model.add_bos, parse_special=True
        )
        return tokens, None

    async def prompt_tokens(self, request: GenerationRequest) -> int:
        self._check_open()
        return len(self.render(request))

    def _known_ids(self, ids: Seq[int], param: str) -> list[int]:
        # An id outside the vocabulary would make llama.cpp read past its tables.
        bad = first_unknown_token(ids, self.model.n_vocab)
        if bad is not None:
            raise InvalidRequest(
                f"token id {ids[bad]} at position {bad} is not in this model's vocabulary "
                f"(ids 0 to {self.model.n_vocab - 1})",
                param=param,
            )
        return list(ids)

    def _budget(self, n_prompt: int, max_tokens: int | None) -> int:
        limit = self.scheduler.seq_limit
        if max_tokens is None:
            if n_prompt >= limit:
                raise ContextLengthExceeded(
                    f"This model's maximum context length is {limit} tokens. However, your "
                    f"messages resulted in {n_prompt} tokens. Please reduce the length of the "
                    "messages.",
                    param="messages",
                )
            return limit - n_prompt
        if n_prompt + max_tokens > limit:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {limit} tokens. However, you "
                f"requested {n_prompt + max_tokens} tokens ({n_prompt} in the messages, "
                f"{max_tokens} in the completion). Please reduce the length of the messages "
                "or completion.",
                param="max_tokens",
            )
        return max_tokens

    def _check_open(self) -> None:
        # A request that acquired the model just before it was unloaded: an error for it,
        # not llama.cpp reading a freed vocabulary.
        if self._closed:
            raise EngineError(f"the model {self.name} was unloaded; retry to load it again")

    async def start(self, request: GenerationRequest) -> LlamaGeneration:
        self._check_open()
        tokens, start = self._render(request)
        if not tokens:
            raise InvalidRequest("the prompt is empty", param="prompt")
        budget = self._budget(len(tokens), request.max_tokens)
        # Only a chat reply is read for reasoning; a raw prompt's text is the client's.
        syntax = self.reasoning if start is not None else None
        thinks = start in ("inside", "open")  # not when the prompt closed the block
        grammar = request_grammar(request)
        if thinks and grammar is not None and grammar.trigger is None:
            assert syntax is not None
            # The answer follows the grammar; the reasoning before it is free.
            grammar = Grammar(answer_grammar(grammar.gbnf, syntax), syntax.answer_start)
        if grammar is not None:
            try:
                check_grammar(self.model.vocab, grammar)
            except GrammarError as exc:
                param = "tools" if request.calls_tools else "response_format"
                raise InvalidRequest(str(exc), param=param) from None
        seqs = self.scheduler.submit(
            tokens,
            request.choice_sampling(),
            budget,
            request.stop,
            request.logprobs,
            grammar,
            request.request_id,
            self._reasoning_budget(request, start == "inside") if thinks else None,
            batch=request.priority == "batch",
        )
        try:
            for seq in seqs:
                await seq.admitted
        except BaseException:
            self.scheduler.cancel(seqs)
            raise
        return LlamaGeneration(self.scheduler, seqs, syntax, start == "inside")

    def _reasoning_budget(
        self, request: GenerationRequest, starts_inside: bool
    ) -> Callable[[], ReasoningBudget] | None:
        syntax = self.reasoning
        if syntax is None:
            return None
        limit = request.max_reasoning_tokens
        if limit is None:
            limit = self.reasoning_budget
            by_effort = effort_budget(syntax, request.reasoning_effort)
            if by_effort is not None:
                limit = by_effort if limit < 0 else min(limit, by_effort)
        if limit < 0:  # no budget: the watch only counts the reasoning's tokens
            return lambda: ReasoningBudget.unbounded(syntax.open, syntax.end, inside=starts_inside)
        close = self.model.tokenize(syntax.close, add_special=False, parse_special=True)
        return lambda: ReasoningBudget(syntax.open, syntax.end, close, limit, inside=starts_inside)

    async def tokenize(self, text: str) -> list[int]:
        self._check_open()
        return self.model.tokenize(text, add_special=False, parse_special=True)

    async def detokenize(self, ids: Seq[int]) -> str:
        self._check_open()
        return self.model.detokenize(self._known_ids(ids, "prompt"))

    async def _get_embedder(self) -> Embedder:
        async with self._embedder_lock:
            if self._embedder is None:
                self._embedder = await asyncio.to_thread(
                    Embedder,
                    self.model,
                    ctx_size=self._config.ctx_size,
                    threads=self._config.threads,
                )
            return self._embedder

    async def embed(
        self, inputs: Seq[str | Seq[int]], *, truncate: bool = False
    ) -> EmbeddingResult:
        self._check_open()
        token_lists = [
            self.model.tokenize(item, add_special=self.model.add_bos, parse_special=False)
            if isinstance(item, str)
            else self._known_ids(item, f"input[{i}]")
            for i, item in enumerate(inputs)
        ]
        embedder = await self._get_embedder()
        if truncate:
            token_lists = [tokens[: embedder.limit] for tokens in token_lists]
        for i, tokens in enumerate(token_lists):
            if not tokens:
                raise InvalidRequest(f"input {i} is empty", param="input")
            embedder.check(tokens, i)
        stop = threading.Event()
        try:
            vectors = await asyncio.to_thread(embedder.embed, token_lists, stop)
        except asyncio.CancelledError:
            stop.set()  # the thread stops after its current input instead of doing them all
            raise
        return EmbeddingResult(vectors=vectors, prompt_tokens=sum(map(len, token_lists)))

    def stats(self) -> dict[str, int]:
        return self.scheduler.stats()

    async def close(self) -> None:
        self._closed = True
        await asyncio.to_thread(self._close_sync)

    def _close_sync(self) -> None:
        self.scheduler.close()
        if self._embedder is not None:
            self._embedder.close()
        self.model.close()
