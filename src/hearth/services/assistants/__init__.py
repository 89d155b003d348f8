"""The Assistants API's service: assistants, threads, messages, and the run executor."""

from hearth.services.assistants.executor import RunJob
from hearth.services.assistants.service import AssistantsService

__all__ = ["AssistantsService", "RunJob"]
