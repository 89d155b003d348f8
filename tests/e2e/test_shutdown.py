"""A real `hearth serve` process sent SIGTERM with streams running: newcomers get a 503
with Retry-After in their surface's shape, a stream that ends within the grace ends as
usual, the others end with their surface's error event (never cut mid-JSON), and the
process exits soon after the grace. (SIGKILL mid-job and a restart with every stored
object intact: test_responses_restart.py and test_assistants_restart.py.)"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import MODEL
from tests.e2e.test_responses_restart import Served

pytestmark = pytest.mark.timeout(300)

GRACE = 10.0
LONG = 4000  # tokens: far more than the bundled model writes in the grace
# Greedy: sampled at the default temperature the bundled model sometimes ends this story
# within ~350 tokens, inside the grace; greedy it loops past 1,500 (measured).
GREEDY = 0.0
PROMPT = [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]


class Call(threading.Thread):
    """One request in a thread, its reply kept line by line."""

    def __init__(self, url: str, body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.url, self.body = url, body
        self.lines: list[str] = []
        self.status: int | None = None
        self.first = threading.Event()
        self.error: BaseException | None = None
        self.ended = 0.0
        self.start()

    def run(self) -> None:
        try:
            with httpx.stream("POST", self.url, json=self.body, timeout=120) as reply:
                self.status = reply.status_code
                for line in reply.iter_lines():
                    if line.strip():
                        self.lines.append(line)
                        self.first.set()
        except BaseException as exc:  # seen by the test, never swallowed
            self.error = exc
        finally:
            self.ended = time.monotonic()
            self.first.set()

    def finish(self) -> list[str]:
        self.join(timeout=60)
        assert not self.is_alive(), "the reply never ended"
        assert self.error is None, self.error
        return self.lines


def _sse_payloads(lines: list[str]) -> list[Any]:
    """Every data line parsed: a line cut mid-JSON fails here."""
    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert data and data[-1] == "[DONE]", data[-3:]
    return [json.loads(item) for item in data[:-1]]


def _sse_events(lines: list[str]) -> list[Any]:
    return [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]


def _refused(reply: httpx.Response) -> None:
    assert reply.status_code == 503, reply.text
    assert int(reply.headers["retry-after"]) >= 1


def test_sigterm_drains_then_ends_streams(tmp_path: Path) -> None:
    served = Served(tmp_path, None, "--parallel", "6", "--shutdown-grace", str(GRACE))
    base = f"http://127.0.0.1:{served.port}"
    try:
        chat = f"{base}/v1/chat/completions"
        long_sse = Call(
            chat,
            {
                "model": MODEL,
                "messages": PROMPT,
                "max_tokens": LONG,
                "temperature": GREEDY,
                "stream": True,
            },
        )
        long_ndjson = Call(
            f"{base}/api/chat",
            {
                "model": MODEL,
                "messages": PROMPT,
                "options": {"num_predict": LONG, "temperature": GREEDY},
            },
        )
        long_response = Call(
            f"{base}/v1/responses",
            {
                "model": MODEL,
                "input": PROMPT,
                "max_output_tokens": LONG,
                "temperature": GREEDY,
                "stream": True,
            },
        )
        assistant = httpx.post(f"{base}/v1/assistants", json={"model": MODEL}).json()
        long_run = Call(
            f"{base}/v1/threads/runs",
            {
                "assistant_id": assistant["id"],
                "thread": {"messages": PROMPT},
                "max_completion_tokens": LONG,
                "temperature": GREEDY,
                "stream": True,
            },
        )
        for call in (long_sse, long_ndjson, long_response, long_run):
            assert call.first.wait(60) and call.error is None, call.error
        whole = Call(
            chat, {"model": MODEL, "messages": PROMPT, "max_tokens": LONG, "temperature": GREEDY}
        )
        time.sleep(0.5)  # the non-streamed one is running too
        short = Call(chat, {"model": MODEL, "messages": PROMPT, "max_tokens": 6, "stream": True})
        assert short.first.wait(60) and short.error is None, short.error
        signalled = time.monotonic()
        served.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)

        # Newcomers during the drain: a 503 in each surface's shape.
        body = {"model": MODEL, "messages": PROMPT, "max_tokens": 4}
        openai_refusal = httpx.post(chat, json=body, timeout=10)
        _refused(openai_refusal)
        assert openai_refusal.json()["error"]["code"] == "server_shutting_down"
        ollama_refusal = httpx.post(f"{base}/api/chat", json={"model": MODEL, "messages": PROMPT})
        _refused(ollama_refusal)
        assert isinstance(ollama_refusal.json()["error"], str)
        assert httpx.get(f"{base}/health", timeout=10).status_code == 503

        # The short stream ended as usual within the grace.
        chunks = _sse_payloads(short.finish())
        assert signalled < short.ended < signalled + GRACE
        assert all("error" not in chunk for chunk in chunks)
        assert chunks[-1]["choices"][0]["finish_reason"] in {"length", "stop"}

        # The long ones were ended at the grace with their error event, whole.
        chunks = _sse_payloads(long_sse.finish())
        assert len(chunks) > 2 and all("error" not in chunk for chunk in chunks[:-1])
        assert chunks[-1]["error"]["code"] == "server_shutting_down"
        lines = [json.loads(line) for line in long_ndjson.finish()]
        assert len(lines) > 2 and all("error" not in line for line in lines[:-1])
        assert isinstance(lines[-1]["error"], str) and "shut down" in lines[-1]["error"]
        # A streamed response ends as its job does: failed, saved so.
        events = _sse_events(long_response.finish())
        assert events[-1]["type"] == "response.failed"
        assert "stopped" in events[-1]["response"]["error"]["message"]
        # So does a streamed assistant run: failed, then the stream's `done`.
        lines = long_run.finish()
        assert lines[-2:] == ["event: done", "data: [DONE]"]
        run = _sse_events(lines[:-1])[-1]
        assert run["object"] == "thread.run" and run["status"] == "failed"
        assert "stopped" in run["last_error"]["message"]
        assert whole.finish() and whole.status == 503
        assert json.loads("".join(whole.lines))["error"]["code"] == "server_shutting_down"

        assert served.proc.wait(timeout=GRACE + 20) == 0
        assert time.monotonic() - signalled < GRACE + 10
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()
