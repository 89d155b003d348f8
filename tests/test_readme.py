"""The README is the user's manual: it must list every option and the two commands."""

import ast
import json
import re
from pathlib import Path

from hearth.core.config import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_every_option_is_in_the_table() -> None:
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "flag" in extra and extra["flag"] is None:  # a TOML table only: a row of its own
            table = f"`{extra['toml']}`"
            assert any(line.startswith(f"| {table}") for line in README.splitlines()), table
            continue
        flag = str(extra.get("flag", "--" + name.replace("_", "-")))
        row = next((line for line in README.splitlines() if line.startswith(f"| `{flag}")), None)
        assert row is not None, f"{flag} is missing from the README's options table"
        assert f"HEARTH_{name.upper()}" in row


def test_the_two_commands_open_the_readme() -> None:
    head = README[:800]
    assert "make run" in head and "make test" in head


# Every README example that generates text caps its output, so that pasting the tour
# against the bundled model (which rambles for thousands of tokens) finishes in seconds.

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
_CURL_BODY = re.compile(r"curl[^\n]*?(/v1/\S+|/api/\S+)[^\n]*?-d '(.*?)'", re.S)
# Routes that generate, and the fields that cap their output.
_CURL_LIMITS = {
    "/v1/chat/completions": ("max_tokens", "max_completion_tokens"),
    "/v1/completions": ("max_tokens",),
    "/v1/responses": ("max_output_tokens",),
    "/runs": ("max_completion_tokens",),
}


def _blocks(*languages: str) -> list[tuple[int, str]]:
    """The code blocks in these languages, each with the README line before its first."""
    return [
        (README.count("\n", 0, m.start(2)), m.group(2))
        for m in _FENCE.finditer(README)
        if m.group(1) in languages
    ]


def _dotted(node: ast.expr) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _python_limit(call: ast.Call) -> tuple[str, set[str]] | None:
    """What a generating call is, and the keywords any of which caps it; None if it does
    not generate. An Ollama client's `chat`/`generate` take `options={"num_predict": N}`."""
    name = _dotted(call.func)
    kwargs = {k.arg for k in call.keywords if k.arg}
    if name.endswith(("chat.completions.create", "chat.completions.parse")):
        return name, {"max_tokens", "max_completion_tokens"} & kwargs
    if name.endswith("completions.create"):
        return name, {"max_tokens"} & kwargs
    if name.endswith(("responses.create", "responses.stream")):
        return name, {"max_output_tokens"} & kwargs
    if ".runs.create" in name or ".create_and_run" in name:
        return name, {"max_completion_tokens"} & kwargs
    if name.split(".")[-1] in {"chat", "generate"}:  # ollama's client.chat(...)
        options = next((k.value for k in call.keywords if k.arg == "options"), None)
        keys = set()
        if isinstance(options, ast.Dict):
            keys = {k.value for k in options.keys if isinstance(k, ast.Constant)}
        return name, {"num_predict"} & keys
    return None


def _generating_examples() -> list[tuple[str, bool]]:
    found = []
    for start, code in _blocks("python"):
        for node in ast.walk(ast.parse(code)):
            line = start + getattr(node, "lineno", 0)
            if isinstance(node, ast.Call) and (what := _python_limit(node)) is not None:
                found.append((f"{what[0]}(…) at README line {line}", bool(what[1])))
            if isinstance(node, ast.Dict):  # a /v1/ws chat frame
                pairs = {
                    k.value: v
                    for k, v in zip(node.keys, node.values, strict=True)
                    if isinstance(k, ast.Constant)
                }
                frame_type = pairs.get("type")
                if isinstance(frame_type, ast.Constant) and frame_type.value == "chat":
                    found.append(
                        (f"/v1/ws chat frame at README line {line}", "max_tokens" in pairs)
                    )
    for start, code in _blocks("sh", "bash", "shell"):
        for m in _CURL_BODY.finditer(code):
            route, body = m.group(1), json.loads(m.group(2))
            where = f"curl {route} at README line {start + code.count(chr(10), 0, m.start()) + 1}"
            if route.startswith("/api/"):  # Ollama: options.num_predict
                found.append((where, "num_predict" in body.get("options", {})))
                continue
            for suffix, fields in _CURL_LIMITS.items():
                if route.endswith(suffix):
                    found.append((where, any(f in body for f in fields)))
    return found


def test_every_generating_example_caps_its_output() -> None:
    found = _generating_examples()
    names = " ".join(name for name, _ in found)
    # The checker must see the tour's surfaces, or it would pass by finding nothing.
    for surface in (
        "curl /v1/chat",
        "chat.completions.create",
        "responses.create",
        "create_and_run_poll",
        "runs.create_and_poll",
        "client.chat",
        "/v1/ws",
    ):
        assert surface in names, f"no README example of {surface} was found"
    uncapped = [name for name, ok in found if not ok]
    assert not uncapped, f"README examples that generate with no output limit: {uncapped}"
