"""Items, the unit of the Responses and Conversations APIs: input checked and normalised
to the stored shape (with ids), and items turned into the engine's chat messages.

Stored shapes (what GET returns):
  message               {id, type: "message", role, status, content: [parts]}
  function_call         {id, type, call_id, name, arguments, status}
  function_call_output  {id, type, call_id, output, status}
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import replace
from typing import Any

from hearth.core.errors import InvalidRequest
from hearth.core.ids import new_id
from hearth.engine.types import ChatMessage, ToolCall

_INPUT_ROLES = {"user", "system", "developer"}
_TEXT_PARTS = {"input_text", "output_text", "text"}
_ID_PREFIX = {
    "message": "msg_",
    "function_call": "fc_",
    "function_call_output": "fco_",
    "reasoning": "rs_",
}


def check_metadata(metadata: Any, param: str = "metadata") -> dict[str, str]:
    """OpenAI's metadata rules: at most 16 pairs, keys up to 64 characters, string values
    up to 512."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidRequest(f"'{param}' must be an object of string values.", param=param)
    if len(metadata) > 16:
        raise InvalidRequest(f"'{param}' may hold at most 16 pairs.", param=param)
    for key, value in metadata.items():
        if len(key) > 64:
            raise InvalidRequest(f"'{param}' keys are at most 64 characters.", param=param)
        if not isinstance(value, str) or len(value) > 512:
            raise InvalidRequest(
                f"'{param}.{key}' must be a string of at most 512 characters.",
                param=f"{param}.{key}",
            )
    return dict(metadata)


def output_text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def assistant_message(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    """The stored shape of the model's reply, as a response's output and a chat turn keep it."""
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [output_text_part(text)],
    }


def reasoning_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    """A reasoning model's thinking, as the Responses API shows it (no summary is made)."""
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
        "status": status,
    }


def normalize_input(value: Any, param: str = "input") -> list[dict[str, Any]]:
    """A string (one user message) or a list of items → stored items, each with an id."""
    if isinstance(value, str):
        return [_message({"role": "user", "content": value}, param)]
    if not isinstance(value, list):
        raise InvalidRequest(f"'{param}' must be a string or a list of items.", param=param)
    items = [normalize_item(item, f"{param}[{i}]") for i, item in enumerate(value)]
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item["id"] in seen:
            raise _duplicate(item["id"], f"{param}[{i}].id")
        seen.add(item["id"])
    return items


def refuse_known_ids(items: list[dict[str, Any]], known: Collection[str], param: str) -> None:
    """New items may not reuse the id of an item their conversation already holds."""
    for i, item in enumerate(items):
        if item["id"] in known:
            raise _duplicate(item["id"], f"{param}[{i}].id")


def _duplicate(item_id: str, param: str) -> InvalidRequest:
    return InvalidRequest(
        f"Duplicate item found with id {item_id}. Remove duplicate items from your input "
        "and try again.",
        param=param,
    )


def normalize_item(item: Any, param: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidRequest(f"'{param}' must be an object.", param=param)
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        return _message(item, param)
    if kind == "function_call_output":
        return {
            "id": _item_id(item, kind, param),
            "type": kind,
            "call_id": _string(item, "call_id", param),
            "output": _output(item.get("output"), f"{param}.output"),
            "status": "completed",
        }
    if kind == "function_call":
        return {
            "id": _item_id(item, kind, param),
            "type": kind,
            "call_id": _string(item, "call_id", param),
            "name": _string(item, "name", param),
            "arguments": _string(item, "arguments", param),
            "status": "completed",
        }
    if kind == "reasoning":
        # An earlier turn's reasoning, sent back as clients do: kept with the turn, left
        # out of the prompt (reasoning templates drop earlier turns' thinking too).
        content = item.get("content")
        parts = content if isinstance(content, list) else []
        text = "".join(p.get("text", "") for p in parts if isinstance(p, dict))
        return reasoning_item(_item_id(item, kind, param), text)
    if kind is None:
        raise InvalidRequest(f"Missing required parameter: '{param}.type'.", param=f"{param}.type")
    raise InvalidRequest(
        f"Invalid value for '{param}.type': {json.dumps(kind)[:60]} is not supported; use "
        "'message', 'function_call', 'function_call_output' or 'reasoning'.",
        param=f"{param}.type",
    )


def _item_id(item: dict[str, Any], kind: str, param: str) -> str:
    given = item.get("id")
    if given is None:
        return new_id(_ID_PREFIX[kind])
    if not isinstance(given, str) or not 0 < len(given) <= 64:
        raise InvalidRequest(f"'{param}.id' must be a string id.", param=f"{param}.id")
    return given


def _string(item: dict[str, Any], key: str, param: str) -> str:
    value = item.get(key)
    if value is None:
        raise InvalidRequest(
            f"Missing required parameter: '{param}.{key}'.", param=f"{param}.{key}"
        )
    if not isinstance(value, str):
        raise InvalidRequest(f"'{param}.{key}' must be a string.", param=f"{param}.{key}")
    return value


def _output(value: Any, param: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(_part_text(part, f"{param}[{i}]") for i, part in enumerate(value))
    raise InvalidRequest(f"'{param}' must be a string or a list of text parts.", param=param)


def _message(item: dict[str, Any], param: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in _INPUT_ROLES | {"assistant"}:
        raise InvalidRequest(
            f"Invalid value for '{param}.role': use 'user', 'system', 'developer' or 'assistant'.",
            param=f"{param}.role",
        )
    content = item.get("content")
    if isinstance(content, str):
        texts = [content]
    elif isinstance(content, list):
        texts = [_part_text(p, f"{param}.content[{i}]") for i, p in enumerate(content)]
    else:
        raise InvalidRequest(
            f"'{param}.content' must be a string or a list of content parts.",
            param=f"{param}.content",
        )
    if role == "assistant":
        parts = [output_text_part(t) for t in texts]
    else:
        parts = [{"type": "input_text", "text": t} for t in texts]
    return {
        "id": _item_id(item, "message", param),
        "type": "message",
        "role": role,
        "status": "completed",
        "content": parts,
    }


def _part_text(part: Any, param: str) -> str:
    if not isinstance(part, dict):
        raise InvalidRequest(f"'{param}' must be a content part object.", param=param)
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidRequest(f"'{param}.text' must be a string.", param=f"{param}.text")
        return text
    raise InvalidRequest(
        f"Invalid value for '{param}.type': {json.dumps(kind)[:60]} is not supported by this "
        "server; only text parts ('input_text', 'output_text').",
        param=f"{param}.type",
    )


def item_text(item: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for part in item.get("content", []))


def to_messages(items: list[dict[str, Any]]) -> list[ChatMessage]:
    """Stored items → chat messages for the template; function calls join the assistant
    message before them (its text, if any), as chat templates expect."""
    messages: list[ChatMessage] = []
    for item in items:
        kind = item["type"]
        if kind == "message":
            role = "system" if item["role"] == "developer" else item["role"]
            messages.append(ChatMessage(role=role, content=item_text(item)))
        elif kind == "function_call_output":
            messages.append(
                ChatMessage(role="tool", content=item["output"], tool_call_id=item["call_id"])
            )
        elif kind == "function_call":
            call = ToolCall(id=item["call_id"], name=item["name"], arguments=item["arguments"])
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant" and last.tool_calls:
                messages[-1] = replace(last, tool_calls=(*last.tool_calls, call))
            else:
                messages.append(ChatMessage(role="assistant", tool_calls=(call,)))
    return messages
