"""Derived models (Ollama's `create`): what a profile adds to a request, in one place for
every surface. A profile fills only what the client left unset."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import fields, replace

from hearth.engine.catalog import Profile
from hearth.engine.types import ChatMessage, GenerationRequest, SamplingParams

SAMPLING_FIELDS = frozenset(f.name for f in fields(SamplingParams))
# Option names a profile may carry: the sampling fields plus these two.
PROFILE_OPTIONS = SAMPLING_FIELDS | {"max_tokens", "stop"}


def with_profile(
    request: GenerationRequest, profile: Profile, explicit: Collection[str]
) -> GenerationRequest:
    """`explicit`: the option names (engine spelling) the client set itself."""
    if profile.empty:
        return request
    options = {k: v for k, v in profile.options.items() if k not in explicit}
    sampling = replace(
        request.sampling, **{k: v for k, v in options.items() if k in SAMPLING_FIELDS}
    )
    stop = tuple(options["stop"]) if "stop" in options else request.stop
    max_tokens = options.get("max_tokens", request.max_tokens)
    messages = request.messages
    if profile.system and messages is not None and all(m.role != "system" for m in messages):
        messages = (ChatMessage("system", profile.system), *messages)
    return replace(
        request,
        sampling=sampling,
        stop=stop,
        max_tokens=max_tokens,
        messages=messages,
        template=request.template or profile.template,
    )
