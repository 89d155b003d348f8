"""A real `hearth serve` process killed mid-batch, then started again on the same
database: the requests that were running are errored with the reason, the ones not yet
run are run, and the batch ends; nothing it had finished is lost."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import anthropic
import pytest

from tests.conftest import MODEL
from tests.e2e.test_anthropic_batches import LONG, ended
from tests.e2e.test_responses_restart import Served

pytestmark = pytest.mark.timeout(900)

N = 6


def _claude(served: Served) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=f"http://127.0.0.1:{served.port}", api_key="unused", max_retries=0
    )


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_batch_cut_by_a_restart_finishes_after_it(tmp_path: Path, sig: signal.Signals) -> None:
    first = Served(tmp_path, None)  # --parallel 2: two requests of the batch run at once
    try:
        claude = _claude(first)
        requests = [
            {
                "custom_id": f"r{i}",
                "params": {
                    "model": MODEL,
                    "max_tokens": 60,
                    "temperature": 0,
                    "messages": [{"role": "user", "content": LONG}],
                },
            }
            for i in range(N)
        ]
        batch = claude.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        deadline = time.monotonic() + 120
        while claude.messages.batches.retrieve(batch.id).request_counts.succeeded < 1:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        first.stop(sig)  # a crash, or a clean stop: either way two requests were running

    second = Served(tmp_path, None)
    try:
        claude = _claude(second)
        done = ended(claude, batch.id, timeout=300)
        counts = done.request_counts
        assert counts.succeeded + counts.errored == N and counts.processing == 0
        assert 1 <= counts.errored <= 2 and counts.succeeded >= N - 2
        results = {r.custom_id: r.result for r in claude.messages.batches.results(batch.id)}
        assert sorted(results) == [f"r{i}" for i in range(N)]
        for result in results.values():
            if result.type == "errored":
                assert result.error.error.type == "api_error"
                assert "server stopped" in result.error.error.message
            else:
                assert result.type == "succeeded" and result.message.usage.output_tokens > 0
        claude.close()
    finally:
        second.stop(signal.SIGTERM)
