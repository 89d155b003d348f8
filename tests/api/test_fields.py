"""api/fields.py: one role check for the OpenAI and Ollama messages, each with its roles."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, ValidationError

from hearth.api.errors import validation_error
from hearth.api.fields import one_of
from hearth.api.ollama.schemas import Message as OllamaMessage
from hearth.api.openai.schemas import Message as OpenAIMessage


class Pick(BaseModel):
    colour: Annotated[str, one_of({"red", "blue"})]


def test_one_of_admits_its_values_and_names_them_when_refusing() -> None:
    assert Pick(colour="red").colour == "red"
    with pytest.raises(ValidationError) as info:
        Pick(colour="green")
    err = validation_error(info.value)
    assert err.param == "colour"
    assert err.message == (
        "Invalid value for 'colour': 'green' is not one of ['blue', 'red']. (got \"green\")"
    )


@pytest.mark.parametrize(
    ("model", "good", "bad"),
    [
        (OpenAIMessage, ["developer", "function", "tool"], ["ipython", "User"]),
        (OllamaMessage, ["system", "user", "assistant", "tool"], ["developer", "function"]),
    ],
)
def test_each_surface_keeps_its_own_roles(
    model: type[BaseModel], good: list[str], bad: list[str]
) -> None:
    for role in good:
        assert model.model_validate({"role": role, "content": "x"}).role == role  # type: ignore[attr-defined]
    for role in bad:
        with pytest.raises(ValidationError) as info:
            model.model_validate({"role": role, "content": "x"})
        assert validation_error(info.value).param == "role"


def test_one_of_documents_its_values_as_an_enum() -> None:
    schema = Pick.model_json_schema()["properties"]["colour"]
    assert schema["enum"] == ["blue", "red"] and schema["type"] == "string"
    role = OpenAIMessage.model_json_schema()["properties"]["role"]
    assert "developer" in role["enum"] and "ipython" not in role["enum"]
