"""Which server process runs a job, and how another one tells that it died.

Every job table has an owner id, "host:pid:incarnation:nonce", written on the rows its
jobs run, and it renews their heartbeat every HEARTBEAT_EVERY seconds. A queued or
running row is an orphan, to be marked failed, when its owner was on this host and that
process is gone (a restart finds its own crashed jobs at once, also under its
predecessor's pid), or when its heartbeat is older than STALE_AFTER (a server on another
host died). Replicas sharing PostgreSQL thus never fail each other's live jobs.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable

# Tells from a row's owner and heartbeat_at whether its server is gone.
Judge = Callable[[str | None, float | None], bool]

HEARTBEAT_EVERY = 10.0
STALE_AFTER = 60.0


# This process's incarnation: a server restarted in a container often gets the same pid.
_INCARNATION = secrets.token_hex(4)


def this_process() -> str:
    """host:pid:incarnation:nonce, one per service (several may share a process)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_INCARNATION}:{secrets.token_hex(4)}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def orphan_judge(now: float, stale_after: float = STALE_AFTER) -> Judge:
    host = socket.gethostname()

    def is_orphan(owner: str | None, heartbeat_at: float | None) -> bool:
        owner_host, _, rest = (owner or "").partition(":")
        pid, _, tail = rest.partition(":")
        if owner_host == host and pid.isdigit():
            if int(pid) == os.getpid():
                if tail.partition(":")[0] != _INCARNATION:
                    return True  # an earlier process that had this pid
            elif not _alive(int(pid)):
                return True
        return heartbeat_at is None or now - heartbeat_at > stale_after

    return is_orphan
