"""A reasoning model's reply through services/generation with the real engine: thinking
apart from the answer, switched off, bounded, cut, and followed by JSON or a tool call."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.chat.reasoning import EFFORT_BUDGETS
from hearth.engine.llama_cpp.backend import LlamaCppBackend
from hearth.engine.types import (
    ChatMessage,
    GenerationRequest,
    Grammar,
    ReasoningDelta,
    SamplingParams,
    TokenEvent,
    Tool,
)
from hearth.services.generation import ChoiceResult, start_reply
from tests.conftest import registry_of
from tests.engine.test_llama_cpp import config
from tests.engine.tiny_reasoner import (
    ANSWER,
    REASONING,
    THINK_SCRIPT,
    TinyReasoner,
    write_tiny_reasoner,
)


def ask(**kw: object) -> GenerationRequest:
    base: dict[str, object] = {
        "model": "tiny",
        "max_tokens": 40,
        "sampling": SamplingParams(temperature=0.0),
    }
    base.update(kw)
    return GenerationRequest(messages=(ChatMessage("user", "hi"),), **base)  # type: ignore[arg-type]


async def one(backend: LlamaCppBackend, request: GenerationRequest) -> ChoiceResult:
    run = await start_reply(registry_of(backend), [request])
    (result,) = await run.collect()
    return result


async def test_the_reasoning_is_apart_from_the_answer(reasoner: LlamaCppBackend) -> None:
    assert reasoner.info.reasoning == "think"
    result = await one(reasoner, ask())
    assert (result.reasoning, result.text, result.finish_reason) == (REASONING, ANSWER, "stop")
    # Counted by the engine: the block's tokens, its markers included (<think> Let me
    # think . </think>); the rest of the completion is the answer (\n\n Hello ! <|im_end|>).
    assert result.reasoning_tokens == 6
    assert result.usage is not None and result.usage.completion_tokens == 6 + 4


async def test_streamed_the_reasoning_comes_first_in_its_own_events(
    reasoner: LlamaCppBackend,
) -> None:
    run = await start_reply(registry_of(reasoner), [ask()])
    kinds = [type(e).__name__ async for _, e in run.events()]
    assert kinds == ["ReasoningDelta"] * 4 + ["TokenEvent"] * 2 + ["Finished"]


async def test_thinking_off_closes_the_block_in_the_prompt(reasoner: LlamaCppBackend) -> None:
    for off in (ask(think=False), ask(max_reasoning_tokens=0)):
        prompt = reasoner.model.detokenize(reasoner.render(off))
        assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
        result = await one(reasoner, off)
        assert (result.reasoning, result.text) == ("", ANSWER)


async def test_a_spent_budget_closes_the_reasoning_and_the_answer_follows(
    reasoner: LlamaCppBackend, tiny_reasoner: TinyReasoner
) -> None:
    # Biased away from </think>, the model would think until max_tokens.
    looping = SamplingParams(temperature=0.0, logit_bias={tiny_reasoner.id("</think>"): -100})
    result = await one(reasoner, ask(sampling=looping, max_reasoning_tokens=6))
    assert (result.reasoning, result.text, result.finish_reason) == (
        "Let me think. think.",  # six tokens after <think>
        ANSWER,
        "stop",
    )
    # <think>, the six, and the closing marker Hearth wrote
    assert result.reasoning_tokens == 8
    unbounded = await one(reasoner, ask(sampling=looping, max_tokens=12))
    assert unbounded.reasoning.startswith("Let me think. think. think")


async def test_a_low_effort_bounds_the_reasoning(
    reasoner: LlamaCppBackend, tiny_reasoner: TinyReasoner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The think family has no levels: an effort is a budget (shrunk here to run quickly).
    monkeypatch.setitem(EFFORT_BUDGETS, "low", 6)
    looping = SamplingParams(temperature=0.0, logit_bias={tiny_reasoner.id("</think>"): -100})
    low = await one(reasoner, ask(sampling=looping, reasoning_effort="low"))
    assert (low.reasoning, low.text) == ("Let me think. think.", ANSWER)
    high = await one(reasoner, ask(sampling=looping, reasoning_effort="high", max_tokens=12))
    assert high.reasoning.startswith("Let me think. think. think") and high.text == ""


async def test_a_reply_cut_inside_the_reasoning_has_an_empty_answer(
    reasoner: LlamaCppBackend,
) -> None:
    result = await one(reasoner, ask(max_tokens=4))
    assert (result.reasoning, result.text, result.finish_reason) == ("Let me think", "", "length")


async def test_a_json_answer_follows_the_reasoning(reasoner: LlamaCppBackend) -> None:
    grammar = Grammar('root ::= "{\\"a\\": " ("1" | "2") "}"')
    result = await one(reasoner, ask(grammar=grammar))
    assert (result.reasoning, result.text) == (REASONING, '{"a": 1}')


async def test_a_forced_tool_call_after_the_reasoning_parses(reasoner: LlamaCppBackend) -> None:
    ping = Tool("ping", "p", {"type": "object", "properties": {}})
    result = await one(reasoner, ask(tools=(ping,), tool_choice="required", max_tokens=120))
    assert result.reasoning == REASONING
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("ping", "{}")]
    assert result.finish_reason == "tool_calls"


async def test_a_model_that_does_not_reason_is_unchanged(model_path: Path) -> None:
    backend = LlamaCppBackend("m", model_path, config())
    try:
        assert backend.info.reasoning is None
        run = await start_reply(registry_of(backend), [ask(model="m", max_tokens=8)])
        events = [e async for _, e in run.events()]
        assert not any(isinstance(e, ReasoningDelta) for e in events)
        assert any(isinstance(e, TokenEvent) and e.text for e in events)
    finally:
        await backend.close()


async def test_a_raw_prompt_is_not_read_for_reasoning(reasoner: LlamaCppBackend) -> None:
    request = GenerationRequest(
        model="tiny", prompt="hi\n", max_tokens=8, sampling=SamplingParams(temperature=0.0)
    )
    result = await one(reasoner, request)
    assert (result.reasoning, result.text) == ("", "<think>Let me think.</think>\n\nHello")


HARMONY_SCRIPT: tuple[tuple[str, str, str | None], ...] = (
    ("*", "<|channel|>", None),
    ("<|channel|>", "analysis", None),
    ("analysis", "<|message|>", None),
    ("<|message|>", "Let", None),
    *THINK_SCRIPT[2:4],  # Let me think
    ("Ġthink", ".", None),
    (".", "<|end|>", "Ġthink"),
    ("<|end|>", "<|im_end|>", None),
)


async def test_gpt_oss_channels_and_a_budget(tmp_path: Path) -> None:
    model = write_tiny_reasoner(tmp_path / "oss.gguf", "openai-gpt-oss-120b.jinja", HARMONY_SCRIPT)
    backend = LlamaCppBackend("oss", model.path, config(ctx_size=2048))
    try:
        assert backend.info.reasoning == "harmony"
        oss = {"model": "oss", "max_tokens": 30}
        result = await one(backend, ask(**oss))
        # <|end|> is a control token: shown all the same, it ends the analysis.
        assert (result.reasoning, result.text, result.finish_reason) == (REASONING, "", "stop")
        looping = SamplingParams(temperature=0.0, logit_bias={model.id("<|end|>"): -100})
        spent = await one(backend, ask(**oss, sampling=looping, max_reasoning_tokens=2))
        assert spent.reasoning == "Let me"
        assert spent.text.startswith("Let me think. think")  # the final channel, after
    finally:
        await backend.close()
