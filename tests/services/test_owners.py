"""Telling a dead server's responses from a live one's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from hearth.services.jobs.owners import STALE_AFTER, orphan_judge, this_process


def test_owner_ids_name_this_process_uniquely() -> None:
    first, second = this_process(), this_process()
    assert first.startswith(f"{socket.gethostname()}:{os.getpid()}:") and first != second


def test_a_dead_process_on_this_host_is_an_orphan_at_once() -> None:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = f"{socket.gethostname()}:{done.stdout.strip()}:abcd"
    judge = orphan_judge(now=1000.0)
    assert judge(dead, 999.0)
    assert not judge(this_process(), 999.0)  # alive and beating


def test_an_earlier_process_with_this_pid_is_an_orphan_at_once() -> None:
    """A restarted server in a container often gets its predecessor's pid."""
    earlier = f"{socket.gethostname()}:{os.getpid()}:0ther:abcd"
    judge = orphan_judge(now=1000.0)
    assert judge(earlier, 999.0)
    assert not judge(this_process(), 999.0)  # another service of this very process


def test_a_server_elsewhere_is_an_orphan_once_its_heartbeat_is_stale() -> None:
    judge = orphan_judge(now=1000.0)
    assert not judge("other-host:1:ab", 1000.0 - STALE_AFTER + 1)
    assert judge("other-host:1:ab", 1000.0 - STALE_AFTER - 1)
    assert judge(None, None)
