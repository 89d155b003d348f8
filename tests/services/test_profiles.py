"""Derived models' profiles: what they fill in of a request the client left unset."""

from __future__ import annotations

from hearth.engine.catalog import Profile
from hearth.engine.types import ChatMessage, GenerationRequest, SamplingParams
from hearth.services.profiles import PROFILE_OPTIONS, with_profile

USER = (ChatMessage("user", "hi"),)


def chat(messages: tuple[ChatMessage, ...] = USER, **kw: object) -> GenerationRequest:
    return GenerationRequest(model="m", messages=messages, **kw)  # type: ignore[arg-type]


def test_an_empty_profile_changes_nothing() -> None:
    request = chat(max_tokens=5)
    assert with_profile(request, Profile(), explicit=()) is request


def test_options_fill_what_the_client_left_unset() -> None:
    profile = Profile(options={"temperature": 0.2, "top_k": 7, "max_tokens": 9, "stop": ["x"]})
    out = with_profile(chat(), profile, explicit=())
    assert out.sampling.temperature == 0.2 and out.sampling.top_k == 7
    assert out.sampling.top_p == SamplingParams().top_p  # not in the profile: the default
    assert out.max_tokens == 9
    assert out.stop == ("x",)


def test_what_the_client_set_wins_over_the_profile() -> None:
    profile = Profile(options={"temperature": 0.2, "top_k": 7, "max_tokens": 9, "stop": ["x"]})
    request = chat(sampling=SamplingParams(temperature=1.5), max_tokens=3, stop=("y",))
    out = with_profile(request, profile, explicit={"temperature", "max_tokens", "stop"})
    assert out.sampling.temperature == 1.5 and out.max_tokens == 3 and out.stop == ("y",)
    assert out.sampling.top_k == 7  # the client did not set this one


def test_a_value_set_to_the_default_still_counts_as_set() -> None:
    """`explicit` names what the client sent, whatever its value."""
    profile = Profile(options={"temperature": 0.2})
    out = with_profile(chat(), profile, explicit={"temperature"})
    assert out.sampling.temperature == SamplingParams().temperature


def test_the_system_prompt_is_added_only_where_there_is_none() -> None:
    profile = Profile(system="Be brief.")
    out = with_profile(chat(), profile, explicit=())
    assert out.messages == (ChatMessage("system", "Be brief."), *USER)
    own = (ChatMessage("system", "Be long."), *USER)
    assert with_profile(chat(messages=own), profile, explicit=()).messages == own
    # a raw prompt has no messages to add it to
    raw = GenerationRequest(model="m", prompt="hi")
    assert with_profile(raw, profile, explicit=()).prompt == "hi"
    assert with_profile(raw, profile, explicit=()).messages is None


def test_the_requests_own_template_wins_over_the_profiles() -> None:
    profile = Profile(template="{{ profile }}")
    assert with_profile(chat(), profile, explicit=()).template == "{{ profile }}"
    own = chat(template="{{ own }}")
    assert with_profile(own, profile, explicit=()).template == "{{ own }}"


def test_profile_options_are_the_sampling_fields_plus_length_and_stop() -> None:
    assert {"temperature", "top_p", "seed", "logit_bias", "max_tokens", "stop"} <= PROFILE_OPTIONS
    assert "model" not in PROFILE_OPTIONS and "messages" not in PROFILE_OPTIONS
