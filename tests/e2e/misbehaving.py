"""Small HTTP servers that answer the OpenAI API badly, as pool members for the tests of
engine/upstream: real sockets on 127.0.0.1, each failing in one way."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Mode = Literal["malformed", "hangs", "fails", "cut", "busy"]

_CHUNK = {"object": "chat.completion.chunk", "model": "x"}


def _sse(delta: dict[str, object]) -> bytes:
    chunk = {**_CHUNK, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # health checks and the model list pass: only requests fail
        self._send(200, "application/json", b'{"status": "ok", "data": []}')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests += 1
        mode = self.server.mode
        if mode == "hangs":
            self.server.stopping.wait()
            return
        if mode == "busy":
            self.send_response(429)
            self.send_header("Retry-After", "7")
            self.send_header("Content-Type", "application/json")
            body = b'{"error": {"message": "too many requests", "type": "rate_limit"}}'
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if mode == "fails":
            page = b"<!DOCTYPE html><html><body><h1>500 Internal Server Error</h1></body></html>"
            self._send(500, "text/html", page)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        if mode == "malformed":
            self.wfile.write(b'data: {"choices": [{"index": 0, "delta": {"content": "Hi"\n\n')
        else:  # cut: two tokens, then the connection closes mid-stream
            self.wfile.write(_sse({"role": "assistant", "content": "Hello"}))
            self.wfile.write(_sse({"content": " there"}))
        self.wfile.flush()
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: Mode) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.requests = 0
        self.stopping = threading.Event()


class Misbehaving:
    """One server failing in `mode`, in a thread; `url` is its OpenAI base URL."""

    def __init__(self, mode: Mode) -> None:
        self.server = _Server(mode)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def requests(self) -> int:
        return self.server.requests

    def stop(self) -> None:
        self.server.stopping.set()
        self.server.shutdown()
        self.server.server_close()
