"""The one engine for background work (Responses background jobs, Assistants runs, and
what comes next): a job's event log (events.py), the job itself (job.py), the table of a
server's jobs with its heartbeat and recovery (table.py), and owner ids (owners.py)."""

from hearth.services.jobs.events import EventLog
from hearth.services.jobs.job import EndedElsewhere, Job
from hearth.services.jobs.table import JobTable

__all__ = ["EndedElsewhere", "EventLog", "Job", "JobTable"]
