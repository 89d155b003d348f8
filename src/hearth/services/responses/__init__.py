"""The Responses API's service: stored responses, their jobs, their events."""

from hearth.services.responses.job import ResponseJob
from hearth.services.responses.params import ResponseParams
from hearth.services.responses.service import ResponsesService

__all__ = ["ResponseJob", "ResponseParams", "ResponsesService"]
