"""Reasoning families read from real chat templates, and reasoning split from the answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.chat.reasoning import (
    ReasoningSplitter,
    ReasoningSyntax,
    ThinkingControl,
    close_in_prompt,
    detect,
    effort_budget,
    inside,
    reply_start,
    resolve,
    template_vars,
)
from hearth.chat.templates import CHATML, ChatTemplate, reads_thinking_chunks

TEMPLATES = Path(__file__).parent / "templates"
MINISTRAL = "mistralai-Ministral-3-14B-Reasoning-2512.jinja"
USER = [{"role": "user", "content": "hi"}]


def template(name: str) -> str:
    return (TEMPLATES / name).read_text()


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("Qwen-Qwen3-0.6B.jinja", "think"),
        ("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", "think"),
        ("Qwen-QwQ-32B.jinja", "think"),
        ("HuggingFaceTB-SmolLM3-3B.jinja", "think"),
        ("openai-gpt-oss-120b.jinja", "harmony"),
        (MINISTRAL, "think_brackets"),
    ],
)
def test_the_family_is_read_from_the_template(name: str, family: str) -> None:
    assert detect(template(name)) == family


def test_models_that_do_not_reason_have_no_family(model_path: Path) -> None:
    import gguf

    reader = gguf.GGUFReader(model_path)
    smollm2 = reader.fields["tokenizer.chat_template"].contents()
    assert detect(smollm2) is None
    assert detect(CHATML) is None
    assert resolve("auto", smollm2) is None


def test_brackets_and_the_vocabulary_without_a_template() -> None:
    assert detect("{{ '[THINK]' + m + '[/THINK]' }}") == "think_brackets"
    assert detect(None, ["a", "[THINK]", "[/THINK]"]) == "think_brackets"
    assert detect(None, ["<think>", "</think>"]) == "think"
    assert detect(None, ["<think>"]) is None


def test_the_model_entry_overrides_detection() -> None:
    qwen3 = template("Qwen-Qwen3-0.6B.jinja")
    assert resolve("none", qwen3) is None
    assert resolve("think_brackets", qwen3).family == "think_brackets"  # type: ignore[union-attr]
    assert resolve("think", CHATML).family == "think"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="unknown"):
        resolve("bogus", qwen3)


def render(name: str, **extra: object) -> str:
    return ChatTemplate(template(name)).render(USER, **extra)


def test_templates_that_open_the_block_start_the_reply_inside_it() -> None:
    for name, opens in [
        ("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", True),
        ("Qwen-QwQ-32B.jinja", True),
        ("Qwen-Qwen3-0.6B.jinja", False),
        ("HuggingFaceTB-SmolLM3-3B.jinja", False),
        ("openai-gpt-oss-120b.jinja", False),
        (MINISTRAL, False),
    ]:
        syntax = resolve("auto", template(name))
        assert syntax is not None
        assert inside(render(name), syntax) is opens, name


def test_qwen3_is_switched_off_through_its_template_variable() -> None:
    syntax = resolve("auto", template("Qwen-Qwen3-0.6B.jinja"))
    assert syntax is not None and syntax.off_switch == "enable_thinking"
    off = template_vars(syntax, ThinkingControl(think=False))
    assert off == {"enable_thinking": False}
    assert render("Qwen-Qwen3-0.6B.jinja", **off).endswith("<think>\n\n</think>\n\n")
    assert template_vars(syntax, ThinkingControl()) == {}


def test_smollm3_is_switched_off_through_its_template_variable() -> None:
    name = "HuggingFaceTB-SmolLM3-3B.jinja"
    syntax = resolve("auto", template(name))
    assert syntax is not None and syntax.off_switch == "enable_thinking"
    off = render(name, **template_vars(syntax, ThinkingControl(think=False)))
    assert "Reasoning Mode: /no_think" in off
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n")
    on = render(name)
    assert "Reasoning Mode: /think" in on and on.endswith("<|im_start|>assistant\n")


def test_without_a_switch_hearth_closes_the_block_in_the_prompt() -> None:
    syntax = resolve("auto", template("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"))
    assert syntax is not None and syntax.off_switch is None
    prompt = close_in_prompt(render("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"), syntax)
    assert prompt.endswith("<｜Assistant｜><think>\n\n</think>\n\n")
    assert not inside(prompt, syntax)
    plain = ReasoningSyntax("think", "<think>", "</think>")
    assert close_in_prompt("A:", plain) == "A:<think>\n\n</think>\n\n"


def test_ministral_thinks_in_brackets_without_a_switch() -> None:
    syntax = resolve("auto", template(MINISTRAL))
    assert syntax is not None and (syntax.open, syntax.close) == ("[THINK]", "[/THINK]")
    assert syntax.off_switch is None and not syntax.takes_effort
    prompt = render(MINISTRAL)
    # Its default system prompt shows a [THINK] block; the reply is free to open its own.
    assert "[THINK]Your thoughts" in prompt and prompt.endswith("[INST]hi[/INST]")
    assert reply_start(prompt, syntax) == "open"
    assert close_in_prompt(prompt, syntax).endswith("[/INST][THINK]\n\n[/THINK]\n\n")
    # An earlier turn's reasoning goes back as a thinking chunk of its content.
    thought = [{"type": "thinking", "thinking": "why"}, {"type": "text", "text": "Hi!"}]
    turns = [*USER, {"role": "assistant", "content": thought}, USER[0]]
    text = ChatTemplate(template(MINISTRAL)).render(turns)
    assert "[/INST][THINK]why[/THINK]Hi![INST]hi[/INST]" in text
    # Hearth hands an earlier turn's reasoning on as `reasoning_content`: a template that
    # reads thinking chunks instead gets it as one, ahead of the text.
    said = [*USER, {"role": "assistant", "content": "Hi!", "reasoning_content": "why"}, USER[0]]
    assert ChatTemplate(template(MINISTRAL)).render(said) == text


def test_reasoning_content_stays_for_templates_that_read_it() -> None:
    said = [*USER, {"role": "assistant", "content": "Hi!", "reasoning_content": "why"}, USER[0]]
    qwen = template("Qwen-Qwen3-0.6B.jinja")
    assert reads_thinking_chunks(template(MINISTRAL)) and not reads_thinking_chunks(qwen)
    # Qwen3 keeps the reasoning of turns after the last user message only: as the
    # reasoning_content it reads, not as chunks it would reject.
    assert "<think>\nwhy\n</think>\n\nHi!" in ChatTemplate(qwen).render(said[:2])


def test_gpt_oss_takes_an_effort_and_never_turns_off() -> None:
    name = "openai-gpt-oss-120b.jinja"
    syntax = resolve("auto", template(name))
    assert syntax is not None and syntax.takes_effort
    assert template_vars(syntax, ThinkingControl(effort="high")) == {"reasoning_effort": "high"}
    off = template_vars(syntax, ThinkingControl(think=False))
    assert off == {"reasoning_effort": "low"}
    assert "Reasoning: low" in render(name, **off)
    assert close_in_prompt("x", syntax) == "x"
    assert effort_budget(syntax, "low") is None  # its own levels, no budget


THINK = ReasoningSyntax("think", "<think>", "</think>")


def test_an_effort_is_a_budget_where_the_family_has_no_levels() -> None:
    assert [effort_budget(THINK, e) for e in ("low", "medium", "high", None)] == [
        1024,
        4096,
        None,
        None,
    ]


def split(syntax: ReasoningSyntax, chunks: list[str], *, start_inside: bool = False):
    splitter = ReasoningSplitter(syntax, inside=start_inside)
    pieces = [p for chunk in chunks for p in splitter.feed(chunk)] + splitter.finish()
    reasoning = "".join(t for k, t in pieces if k == "reasoning")
    content = "".join(t for k, t in pieces if k == "content")
    return reasoning, content


def one_char_at_a_time(text: str) -> list[str]:
    return list(text)


def test_a_think_block_is_split_from_the_answer_however_it_is_cut() -> None:
    text = "<think>\nLet me think.\n</think>\n\nHello!"
    assert split(THINK, [text]) == ("Let me think.", "Hello!")
    assert split(THINK, one_char_at_a_time(text)) == ("Let me think.", "Hello!")
    assert split(THINK, ["<thi", "nk>a b", "</th", "ink>", "c"]) == ("a b", "c")


def test_a_reply_without_a_block_is_all_answer() -> None:
    assert split(THINK, ["  Hello <", "b>"]) == ("", "  Hello <b>")
    assert split(THINK, ["Hello <thi"]) == ("", "Hello <thi")


def test_a_reply_that_starts_inside_needs_no_opening_marker() -> None:
    assert split(THINK, ["hmm", "</think>", "ok"], start_inside=True) == ("hmm", "ok")


def test_a_reply_cut_inside_the_reasoning_has_no_answer() -> None:
    assert split(THINK, ["<think>a", " b", " </thi"]) == ("a b </thi", "")
    assert split(THINK, ["still going"], start_inside=True) == ("still going", "")


def test_markers_in_the_answer_are_its_text() -> None:
    assert split(THINK, ["<think>x</think>y <think> z"]) == ("x", "y <think> z")
    assert split(THINK, ["<think>x <think> y</think>z"]) == ("x <think> y", "z")


HARMONY = resolve("harmony", None)


def test_harmony_channels() -> None:
    assert HARMONY is not None
    text = (
        "<|channel|>analysis<|message|>Let me think.<|end|>"
        "<|start|>assistant<|channel|>final<|message|>Hello!"
    )
    assert split(HARMONY, [text]) == ("Let me think.", "Hello!")
    assert split(HARMONY, one_char_at_a_time(text)) == ("Let me think.", "Hello!")
    # llama.cpp does not write <|end|> (a control token) into text: <|start|> ends it too.
    assert split(HARMONY, [text.replace("<|end|>", "")]) == ("Let me think.", "Hello!")
    assert split(HARMONY, ["<|channel|>analysis<|message|>cut"]) == ("cut", "")
    assert split(HARMONY, ["plain text"]) == ("", "plain text")


def test_an_answer_grammar_starts_where_the_reasoning_closes() -> None:
    from hearth.chat.reasoning import answer_grammar

    gbnf = 'root ::= "{" item "}"\nitem ::= "a"\n'
    assert answer_grammar(gbnf, THINK) == (
        'root ::= "</think>" [ \\t\\n]* reasoned-answer\n'
        'reasoned-answer ::= "{" item "}"\nitem ::= "a"\n'
    )
    assert HARMONY is not None
    assert answer_grammar(gbnf, HARMONY).startswith('root ::= "<|channel|>final<|message|>"')


def test_an_earlier_turns_reasoning_reaches_a_template_that_shows_it() -> None:
    from hearth.chat.tools import template_messages
    from hearth.chat.types import ChatMessage, ToolCall

    turns = [
        ChatMessage("user", "ping it"),
        ChatMessage("assistant", "", tool_calls=(ToolCall("c1", "ping", "{}"),), reasoning="why"),
        ChatMessage("tool", "pong", tool_call_id="c1"),
    ]
    messages = template_messages(turns, (), native=True)
    assert messages[1]["reasoning_content"] == "why"
    text = ChatTemplate(template("Qwen-Qwen3-0.6B.jinja")).render(messages)
    assert "<think>\nwhy\n</think>" in text  # Qwen3 keeps it within a tool-call loop


def test_brackets_split_like_think() -> None:
    brackets = resolve("think_brackets", None)
    assert brackets is not None
    assert split(brackets, ["[THI", "NK]plan[/TH", "INK]answer"]) == ("plan", "answer")
