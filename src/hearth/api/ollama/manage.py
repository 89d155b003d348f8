"""POST /api/copy, DELETE /api/delete, POST /api/create, POST /api/pull.

Copy makes an alias, create a derived model (system prompt, default options, template
over a served model), both kept in the data dir across restarts; delete removes either,
and a model of the models folder with its files (one given with --model returns on
restart). Pull of `hf.co/USER/REPO[:QUANT]` downloads the GGUF into the models folder
and streams Ollama's progress lines (api/pulling.py); of a served name it succeeds with
the status lines clients wait for; of anything else it is a 404 that says how to add a
model. A key limited to some models sees only those here too, and may not copy, create,
delete or pull (403: the names are shared by every key)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from hearth.api import pulling
from hearth.api.documented import NDJSON_STREAM
from hearth.api.errors import ollama_error_body
from hearth.api.ollama.convert import profile_options, resolve_model
from hearth.api.ollama.replies import NDJSON
from hearth.api.ollama.schemas import CopyRequest, CreateRequest, DeleteRequest, PullRequest
from hearth.api.state import State
from hearth.api.streaming import EventStream, ndjson_line, ollama_ndjson_ending
from hearth.chat.templates import ChatTemplate
from hearth.core.config import valid_model_name
from hearth.core.errors import InvalidRequest, ModelNotFound
from hearth.engine.catalog import Profile
from hearth.services.pull.reference import is_hub_name

router = APIRouter()


def _new_name(name: str, param: str) -> str:
    name = name.removesuffix(":latest")
    if not valid_model_name(name):
        raise InvalidRequest(f"invalid model name {name!r}", param=param)
    return name


def _statuses(lines: list[str], stream: bool | None) -> Response:
    """Ollama's progress replies: NDJSON status lines ending in success, or just that."""
    if stream is False:
        return JSONResponse({"status": "success"})

    async def chunks() -> AsyncIterator[bytes]:
        for status in [*lines, "success"]:
            yield ndjson_line({"status": status})

    return EventStream(chunks(), media_type=NDJSON, ending=ollama_ndjson_ending)


@router.post("/copy", response_class=Response)  # 200 and no body, as Ollama answers
async def copy(body: CopyRequest, state: State) -> Response:
    source = resolve_model(state, body.source)
    state.registry.alias(_new_name(body.destination, "destination"), source)
    return Response(status_code=200)


@router.delete("/delete", response_class=Response)
async def delete(body: DeleteRequest, state: State) -> Response:
    name = body.model or body.name
    if not name:
        raise InvalidRequest("model is required", param="model")
    served = resolve_model(state, name)
    if state.models_folder.files(served) is not None:
        await state.models_folder.delete(served)  # its files too, or it would come back
    else:
        await state.registry.remove(served)
    return Response(status_code=200)


@router.post("/create", response_model=None, responses=NDJSON_STREAM)
async def create(body: CreateRequest, state: State) -> Response:
    refused = [
        f for f in ("files", "adapters", "quantize", "messages", "modelfile") if getattr(body, f)
    ]
    if refused:
        raise InvalidRequest(
            f"'{refused[0]}' is not supported: Hearth derives models from the ones it serves "
            "('from' with 'system', 'parameters' or 'template'); to add a GGUF file, start "
            "hearth with --model NAME=PATH.gguf",
            param=refused[0],
        )
    if not body.from_:
        raise InvalidRequest(
            "'from' is required: name a served model to derive this one from", param="from"
        )
    base = resolve_model(state, body.from_)
    state.registry.check_may_change()  # before the base is loaded for nothing
    if body.template is not None:
        try:
            ChatTemplate(body.template)
        except ValueError as exc:
            raise InvalidRequest(
                f"{exc}. Hearth's templates are Jinja, like those in GGUF files and Hugging "
                "Face tokenizer configs",
                param="template",
            ) from None
    backend = await state.registry.get(base)
    profile = Profile(
        system=body.system,
        template=body.template,
        options=profile_options(body.parameters, backend.info.context_length),
    )
    state.registry.alias(_new_name(body.model or body.name, "model"), base, profile)
    return _statuses(
        ["using existing layer", "creating new layer", "writing manifest"], body.stream
    )


@router.post("/pull", response_model=None, responses=NDJSON_STREAM)
async def pull(body: PullRequest, state: State) -> Response:
    name = body.model or body.name
    try:
        resolve_model(state, name)
    except ModelNotFound:
        if not is_hub_name(name):
            raise ModelNotFound(
                f"pull model manifest: {name!r} is not served here. Hearth pulls GGUF "
                "models from Hugging Face as hf.co/USER/REPO[:QUANT], or serves a local "
                "file given with --model NAME=/path/to/model.gguf"
            ) from None
        # Served under the name the client asked for: the one it will chat with.
        steps = pulling.start(state, name, _new_name(name, "model"))
        return await pulling.reply(steps, body.stream, ollama_error_body)
    return _statuses(
        ["pulling manifest", "verifying sha256 digest", "writing manifest"], body.stream
    )
