"""Chat templates from the model (GGUF metadata, tokenizer config), rendered in Jinja's
ImmutableSandboxedEnvironment: a template is code shipped with a downloaded file, so it
must not reach Python internals."""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hearth.core.errors import InvalidRequest

# Used when a model ships no template: ChatML, the most common format.
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


class TemplateRenderError(InvalidRequest):
    """The template refused the conversation (raise_exception) or failed on it."""


def _raise_exception(message: str) -> None:
    raise TemplateRenderError(f"the model's chat template rejected the messages: {message}")


def _tojson(value: Any, indent: int | None = None, **_: Any) -> str:
    # Hugging Face's templates expect tojson to keep non-ASCII text as it is.
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=32)
def _compile(source: str) -> Any:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False
    )
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.filters["tojson"] = _tojson
    return env.from_string(source)


def reads_thinking_chunks(source: str) -> bool:
    """Whether a template takes an earlier turn's reasoning as a `thinking` chunk of the
    message's content (Mistral's) rather than as `reasoning_content` (Qwen3's and most)."""
    return (
        "reasoning_content" not in source
        and re.search(r"""==\s*['"]thinking['"]""", source) is not None
    )


def _with_thinking_chunk(message: dict[str, Any]) -> dict[str, Any]:
    reasoning = message.get("reasoning_content")
    if not reasoning or not isinstance(message.get("content"), str):
        return message
    out = {k: v for k, v in message.items() if k != "reasoning_content"}
    chunks: list[dict[str, str]] = [{"type": "thinking", "thinking": reasoning}]
    if message["content"]:
        chunks.append({"type": "text", "text": message["content"]})
    out["content"] = chunks
    return out


class ChatTemplate:
    def __init__(self, source: str | None, *, bos_token: str = "", eos_token: str = "") -> None:
        self.source = source or CHATML
        self.bos_token = bos_token
        self.eos_token = eos_token
        self._thinking_chunks = reads_thinking_chunks(self.source)
        try:
            self._template = _compile(self.source)
        except TemplateError as exc:
            raise ValueError(f"the model's chat template does not compile: {exc}") from exc

    def render(
        self,
        messages: list[dict[str, Any]],
        *,
        add_generation_prompt: bool = True,
        tools: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> str:
        if self._thinking_chunks:
            messages = [_with_thinking_chunk(m) for m in messages]
        try:
            return self._template.render(
                messages=messages,
                add_generation_prompt=add_generation_prompt,
                tools=tools,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
                **extra,
            )
        except TemplateRenderError:
            raise
        except SecurityError as exc:
            raise TemplateRenderError(
                f"the chat template tried an unsafe operation: {exc}"
            ) from exc
        except Exception as exc:  # the template is foreign code: any failure is the input's
            raise TemplateRenderError(f"the chat template failed on these messages: {exc}") from exc
