"""create_app(settings): routers, middleware, lifespan. Nothing else."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response

from hearth import __version__
from hearth.api import auth, health, ui, ws
from hearth.api.admin import admin_router
from hearth.api.anthropic import anthropic_router
from hearth.api.anthropic.messages import batch_message
from hearth.api.assistants import assistants_router
from hearth.api.drain import Drain, DrainGate
from hearth.api.errors import anthropic_error_body, install_error_handlers
from hearth.api.key_limits import KeyLimitGate
from hearth.api.limits import BodyLimit
from hearth.api.metrics import HttpMetrics
from hearth.api.metrics import router as metrics_router
from hearth.api.ollama import ollama_router
from hearth.api.openai import openai_router
from hearth.api.responses import responses_router
from hearth.api.state import AppState
from hearth.api.streaming import ClientGone
from hearth.core.config import Settings
from hearth.engine.loader import build_registry, models_folder
from hearth.engine.meter import Meters
from hearth.engine.registry import ModelRegistry
from hearth.services.assistants import AssistantsService
from hearth.services.batches import BatchesService
from hearth.services.conversations import ConversationsService
from hearth.services.keys import Keyring
from hearth.services.limits import Limiter
from hearth.services.metrics import Metrics
from hearth.services.responses import ResponsesService
from hearth.services.usage import UsageRecorder
from hearth.store import Store

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    registry: ModelRegistry | None = None,
    *,
    preload: bool = True,
) -> FastAPI:
    """The ASGI app. Tests pass their own registry (e.g. of fake backends)."""
    registry = registry if registry is not None else build_registry(settings)
    store = Store(settings.store_url)
    conversations = ConversationsService(store)
    responses = ResponsesService(store, registry, conversations)
    assistants = AssistantsService(store, registry)
    limiter = Limiter(store.rate_limits)
    batches = BatchesService(
        store,
        functools.partial(batch_message, registry),
        anthropic_error_body,
        concurrency=settings.parallel,  # at most a model's slots (when it is loaded)
        limiter=limiter,
        registry=registry,
    )

    async def stop_jobs() -> None:
        await responses.close()
        await assistants.close()
        await batches.close()

    state = AppState(
        settings=settings,
        registry=registry,
        keyring=Keyring(settings.api_keys, store.api_keys),
        store=store,
        conversations=conversations,
        responses=responses,
        assistants=assistants,
        batches=batches,
        drain=Drain(stop_jobs),
        usage=UsageRecorder(store.usage),
        limiter=limiter,
        models_folder=models_folder(settings, registry),
    )
    if settings.metrics:
        state.metrics = Metrics(registry, max_tokens=settings.ctx_size)
    registry.meter = Meters(state.usage, *([state.metrics] if state.metrics else []))
    # A revoke stops the key's background responses and runs too, not only its streams.
    responses.jobs.watch = assistants.runs.jobs.watch = state.keyring.watch
    batches.jobs.watch = state.keyring.watch

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await state.store.upgrade()
        state.usage.start()
        await state.responses.start()
        await state.assistants.start()
        if preload:
            await state.registry.preload()
        # After the preload: the folder's models load on first use, however many.
        state.models_folder.scan()
        state.registry.load_catalog()  # aliases of the folder's models too
        state.models_folder.start()
        state.registry.start_reaper()
        # After the models: the batches a dead server left go on running from here.
        await state.batches.start()
        try:
            yield
        finally:
            await stop_jobs()
            await state.models_folder.close()
            await state.registry.close()
            await state.usage.close()  # the last requests' usage, before the store goes
            await state.limiter.close()  # the last token charges, before the store closes
            await state.store.close()

    app = FastAPI(
        title="Hearth",
        version=__version__,
        lifespan=lifespan,
        docs_url=auth.DOCS_URL,
        openapi_url=auth.OPENAPI_URL,
        redoc_url=None,
    )
    app.state.hearth = state
    install_error_handlers(app)

    @app.exception_handler(ClientGone)
    async def _gone(request: object, exc: ClientGone) -> Response:
        return Response(status_code=499)

    app.include_router(health.router)
    app.include_router(openai_router())
    app.include_router(anthropic_router())
    app.include_router(responses_router())
    app.include_router(assistants_router())
    app.include_router(ollama_router())
    app.include_router(ws.router)
    app.include_router(admin_router())
    app.mount(ui.UI_PREFIX, ui.assets(), name="ui")
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    # Inside the auth gate (it knows whose limits apply), outside the body limit: a
    # request over a limit is refused before its body is read.
    app.add_middleware(KeyLimitGate, limiter=state.limiter)
    # Outside the body limit: a request without a key is refused before its body is read.
    app.add_middleware(auth.AuthGate, keyring=state.keyring, settings=settings)
    # Outside the auth gate: during a shutdown every newcomer gets the same 503.
    app.add_middleware(DrainGate, drain=state.drain)
    if settings.cors_origins:
        # Outside the gates: a browser's preflight carries no key, and a refusal (401, 413,
        # a draining 503) must reach the page with these headers to be readable there.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],  # the SDKs send their own (x-stainless-*, anthropic-*)
            expose_headers=["Retry-After", "request-id"],
        )
    if state.metrics is not None:
        app.include_router(metrics_router)
        app.add_middleware(HttpMetrics, metrics=state.metrics)  # outermost: added last
    return app
