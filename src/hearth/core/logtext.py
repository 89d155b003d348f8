"""Prompt and reply text in log lines: quoted only when the operator asked for it
(`--log-prompts`). Logs are kept, shipped and read by more people than the API's
clients; what people asked a model is theirs.

A log call passes the text wrapped, `log.warning("... %s", Content(text))`; the record
is formatted when a handler emits it, so the choice holds wherever the call is made.
"""

from __future__ import annotations

_quoted = False


def quote_prompts(on: bool) -> None:
    """Process-wide, like the logging configuration it belongs to (set by `hearth serve`)."""
    global _quoted
    _quoted = on


class Content:
    """Prompt or reply text (str or the engine's bytes) as a log argument."""

    __slots__ = ("text",)

    def __init__(self, text: str | bytes) -> None:
        self.text = text

    def __str__(self) -> str:
        if _quoted:
            return repr(self.text)
        unit = "bytes" if isinstance(self.text, bytes) else "characters"
        return f"<{len(self.text)} {unit} of text; --log-prompts shows it>"

    __repr__ = __str__
