"""The typed application state and the dependencies routes declare to reach it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from hearth.api.drain import Drain
from hearth.core.config import Settings
from hearth.engine.models_folder import ModelsFolder
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


@dataclass
class AppState:
    settings: Settings
    registry: ModelRegistry
    keyring: Keyring
    store: Store
    conversations: ConversationsService
    responses: ResponsesService
    assistants: AssistantsService
    batches: BatchesService
    drain: Drain
    usage: UsageRecorder
    limiter: Limiter
    models_folder: ModelsFolder
    started_at: float = field(default_factory=time.time)
    metrics: Metrics | None = None  # None with --no-metrics


async def get_state(request: HTTPConnection) -> AppState:
    """For HTTP routes and WebSocket routes alike. Async although it awaits nothing:
    FastAPI runs a plain function dependency in a worker thread, a thread handoff on
    every request."""
    state: AppState = request.app.state.hearth
    return state


State = Annotated[AppState, Depends(get_state)]
