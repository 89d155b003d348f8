"""Counting a prompt's tokens where the engine cannot be asked: an estimate."""

from __future__ import annotations

import json
import math
from typing import Any

from hearth.engine.types import GenerationRequest

# The prompt estimate where no member counts tokens (/tokenize): about four bytes of
# English text per token in the BPE vocabularies of current models, plus a few tokens
# of template per message. It only feeds context checks and key limits before a
# request; the usage every reply reports is the upstream's own count.
BYTES_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text.encode()) / BYTES_PER_TOKEN)


def estimate_prompt(request: GenerationRequest) -> int:
    if request.prompt_ids is not None:
        return len(request.prompt_ids)
    if request.messages is None:
        return estimate_tokens(request.prompt or "")
    total = 0
    for m in request.messages:
        parts = [m.content or "", *(c.name + c.arguments for c in m.tool_calls)]
        total += TOKENS_PER_MESSAGE + estimate_tokens("".join(parts))
    if request.calls_tools:
        tools = [(t.name, t.description, t.parameters) for t in request.tools]
        total += estimate_tokens(json.dumps(tools))
    return total


def count_of(reply: Any) -> int | None:
    if not isinstance(reply, dict):
        return None
    if isinstance(reply.get("count"), int):
        return int(reply["count"])
    tokens = reply.get("tokens")
    return len(tokens) if isinstance(tokens, list) else None
