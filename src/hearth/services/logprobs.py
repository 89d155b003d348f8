"""Token log-probabilities as JSON: the entry shape OpenAI's chat and Responses APIs and
Ollama share."""

from __future__ import annotations

from typing import Any

from hearth.engine.types import TokenLogprob


def logprob_entries(entries: list[TokenLogprob] | tuple[TokenLogprob, ...]) -> list[dict[str, Any]]:
    return [
        {
            "token": e.token,
            "logprob": e.logprob,
            "bytes": list(e.bytes),
            "top_logprobs": [
                {"token": t.token, "logprob": t.logprob, "bytes": list(t.bytes)} for t in e.top
            ],
        }
        for e in entries
    ]
