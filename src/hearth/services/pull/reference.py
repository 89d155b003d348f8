"""What `hearth pull` and Ollama's /api/pull are given: `user/repo[:QUANT]`, optionally
behind `hf.co/` (Ollama's spelling) or `huggingface.co/`. Checked strictly: it becomes a
URL path and, through the quant, picks a file name, so nothing else gets through."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hearth.core.errors import InvalidRequest

DEFAULT_QUANT = "Q4_K_M"
HOSTS = ("hf.co/", "huggingface.co/")
# The Hub's own rule for names: letters, digits, - _ . ; no leading or doubled dots.
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_REPO = re.compile(rf"^{_PART}/{_PART}$")
_QUANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{0,31}$")


@dataclass(frozen=True, slots=True)
class Reference:
    repo: str  # user/repo, as the Hub spells it
    quant: str | None  # as asked for; None: the default


def is_hub_name(name: str) -> bool:
    """Whether a model name asks for a download (Ollama's `hf.co/...`)."""
    return name.lower().startswith(HOSTS)


def parse(text: str) -> Reference:
    ref = text.strip()
    for host in HOSTS:
        if ref.lower().startswith(host):
            ref = ref[len(host) :]
            break
    repo, colon, quant = ref.partition(":")
    if not _REPO.match(repo) or ".." in repo:
        raise InvalidRequest(
            f"{text!r} is not a Hugging Face model repo: expected user/repo[:QUANT], "
            "e.g. bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M",
            param="model",
        )
    if colon and not _QUANT.match(quant):
        raise InvalidRequest(
            f"{quant!r} is not a quantisation such as Q4_K_M or Q8_0", param="model"
        )
    # Ollama's tag for "whatever is default"
    return Reference(repo, None if quant.lower() in ("", "latest") else quant)
