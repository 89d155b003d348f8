"""A stand-in pool member for measuring the proxy hop: an OpenAI-style server that answers
every streamed chat after a fixed delay (no model, no decoding), so that the front's own
cost is not lost in a real member's prefill time, which varies by more than the hop.

Raw asyncio HTTP/1.1 with keep-alive and chunked SSE, as vLLM and llama-server send it:
a role-and-text chunk, a second chunk 5 ms later, the usage chunk, `[DONE]`, the body's
end. GET /v1/models and /health answer for the front's start-up and health checks.

    python bench/standin_member.py PORT [DELAY_MS]   # prints "ready" once listening
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

MODEL = "bench"
MODELS = json.dumps(
    {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "bench"}]}
).encode()


def sse(data: Any) -> bytes:
    payload = b"data: " + (data if isinstance(data, bytes) else json.dumps(data).encode())
    payload += b"\n\n"
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def reply() -> tuple[bytes, bytes]:
    """The stream's first write (headers and first chunk) and its rest."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": int(time.time())}
    base["model"] = MODEL

    def chunk(delta: dict[str, str], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return sse({**base, "choices": [choice]})

    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    head += b"transfer-encoding: chunked\r\n\r\n"
    first = head + chunk({"role": "assistant", "content": "Hi"}, None)
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
    rest = chunk({"content": "!"}, "length") + sse({**base, "choices": [], "usage": usage})
    return first, rest + sse(b"[DONE]") + b"0\r\n\r\n"


async def serve_one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
) -> None:
    try:
        while True:  # requests on one keep-alive connection, until the client closes it
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            path = head[0].split(" ")[1]
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            if path.endswith("/chat/completions"):
                await asyncio.sleep(delay)
                first, rest = reply()
                writer.write(first)
                await writer.drain()
                await asyncio.sleep(0.005)
                writer.write(rest)
            else:
                body = MODELS if "models" in path else b'{"status":"ok"}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(body), body)
                )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int, delay: float) -> None:
    server = await asyncio.start_server(lambda r, w: serve_one(r, w, delay), "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2] if len(sys.argv) > 2 else 20) / 1000))
