"""Message Batches (the Anthropic API): stored batches of /v1/messages requests, run in
the background on the job engine (services/jobs) at batch priority, a few at a time."""

from hearth.services.batches.service import BatchesService

__all__ = ["BatchesService"]
