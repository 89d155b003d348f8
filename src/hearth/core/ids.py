"""Identifiers and timestamps in the shapes the APIs use."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    """An OpenAI-style id: `chatcmpl-…`, `resp_…`; 24 random hex digits after the prefix."""
    return f"{prefix}{secrets.token_hex(12)}"


def unix_now() -> int:
    return int(time.time())
