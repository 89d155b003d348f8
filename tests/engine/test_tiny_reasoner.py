"""The tests' tiny reasoning model loads in the real engine and follows its table."""

from __future__ import annotations

from pathlib import Path

from hearth.engine.llama_cpp.backend import LlamaCppBackend
from hearth.engine.types import ChatMessage, GenerationRequest, SamplingParams, TokenEvent
from tests.engine.test_llama_cpp import config
from tests.engine.tiny_reasoner import (
    ANSWER,
    BRACKETS_SCRIPT,
    OPEN_SCRIPT,
    REASONING,
    TinyReasoner,
    write_tiny_reasoner,
)


async def reply(backend: LlamaCppBackend, max_tokens: int = 40, **sampling: object) -> str:
    params = SamplingParams(**{"temperature": 0.0, **sampling})  # type: ignore[arg-type]
    request = GenerationRequest(
        model="tiny", messages=(ChatMessage("user", "hi"),), sampling=params, max_tokens=max_tokens
    )
    text = ""
    async for event in await backend.start(request):
        if isinstance(event, TokenEvent):
            text += event.text
    return text


async def test_it_writes_a_reasoning_block_then_the_answer(reasoner: LlamaCppBackend) -> None:
    assert await reply(reasoner) == f"<think>{REASONING}</think>\n\n{ANSWER}"


async def test_logit_bias_keeps_it_reasoning(
    reasoner: LlamaCppBackend, tiny_reasoner: TinyReasoner
) -> None:
    text = await reply(reasoner, max_tokens=12, logit_bias={tiny_reasoner.id("</think>"): -100})
    assert text == "<think>Let me think." + " think." * 3 + " think"  # 12 tokens


async def test_a_template_that_opens_the_block_starts_inside_it(tmp_path: Path) -> None:
    model = write_tiny_reasoner(
        tmp_path / "r1.gguf", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", OPEN_SCRIPT
    )
    backend = LlamaCppBackend("r1", model.path, config(ctx_size=1024))
    try:
        assert await reply(backend) == f"{REASONING}</think>\n\n{ANSWER}"
    finally:
        await backend.close()


async def test_ministrals_template_gives_the_bracket_family(tmp_path: Path) -> None:
    model = write_tiny_reasoner(
        tmp_path / "ministral.gguf",
        "mistralai-Ministral-3-14B-Reasoning-2512.jinja",
        BRACKETS_SCRIPT,
    )
    backend = LlamaCppBackend("ministral", model.path, config(ctx_size=1024))
    try:
        assert backend.info.reasoning == "think_brackets"
        # [THINK] and [/THINK] are control tokens, written out all the same.
        assert await reply(backend) == f"[THINK]{REASONING}[/THINK]{ANSWER}"
    finally:
        await backend.close()
