"""A fake Hugging Face Hub: the part of its HTTP API `huggingface_hub` uses to list a model
repo's files and download one, on 127.0.0.1:<free port>, in a thread.

    GET  /api/models/{repo}[/revision/{rev}][?blobs=true]  the repo and its files (siblings,
                                                           with size and LFS sha256)
    HEAD /{repo}/resolve/{rev}/{file}                      ETag, X-Repo-Commit, X-Linked-*
    GET  /{repo}/resolve/{rev}/{file}                      the bytes; `Range: bytes=N-` resumes

Every file is served over plain HTTP: no X-Xet-* header ever goes out, so the client
downloads what it is sent. A private repo answers 401 (as the Hub does, with
X-Error-Code: RepoNotFound) unless the request carries the token. `cut_after(n)` makes the
next file download stop after n bytes and the hub answer 503 until `restore()` — a network
that goes away mid-download; `tamper` damages every file in transit. Every GET of a file
is logged with the byte it started at.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class Repo:
    files: dict[str, bytes]
    private: bool = False
    lfs: bool = True  # LFS files carry a sha256; others only a git blob id


@dataclass
class Fetch:
    repo: str
    file: str
    start: int  # the first byte asked for (0 without a Range header)


@dataclass
class FakeHub:
    token: str = "hf_fake_token"
    repos: dict[str, Repo] = field(default_factory=dict)
    fetches: list[Fetch] = field(default_factory=list)
    tamper: bool = False  # serve every file with its last byte changed
    pause: float = 0.0  # seconds between the pieces of a file: a slow network
    _cut: int | None = None
    _down: bool = False

    def __post_init__(self) -> None:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeHub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, repo: str, files: dict[str, bytes], *, private: bool = False) -> None:
        self.repos[repo] = Repo(files, private)

    def cut_after(self, n: int) -> None:
        self._cut = n

    def restore(self) -> None:
        self._cut, self._down = None, False

    def starts(self, file: str) -> list[int]:
        return [f.start for f in self.fetches if f.file == file]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet tests
        pass

    # ---- replies ---------------------------------------------------------------------

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, value: object) -> None:
        self._send(200, json.dumps(value).encode(), {"Content-Type": "application/json"})

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(status, body, {"X-Error-Code": code, "X-Error-Message": message})

    # ---- routing ---------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def _route(self) -> None:
        if self.hub._down:
            self._send(503, b"down")
            return
        path = unquote(urlsplit(self.path).path)
        api = re.match(r"^/api/models/([^/]+/[^/]+)(?:/revision/[^/]+)?/?$", path)
        if api:
            repo = self._repo(api.group(1))
            if repo is not None:
                self._listing(api.group(1), repo)
            return
        resolve = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if resolve:
            repo = self._repo(resolve.group(1))
            if repo is not None:
                self._file(resolve.group(1), repo, resolve.group(3))
            return
        self._error(404, "EntryNotFound", "Not found")

    def _repo(self, name: str) -> Repo | None:
        repo = self.hub.repos.get(name)
        authorized = self.headers.get("Authorization") == f"Bearer {self.hub.token}"
        if repo is None or (repo.private and not authorized):
            # The Hub says the same for a repo that does not exist and one it hides.
            self._error(401, "RepoNotFound", "Repository not found")
            return None
        return repo

    def _listing(self, name: str, repo: Repo) -> None:
        siblings = []
        for path, data in repo.files.items():
            sibling: dict[str, object] = {"rfilename": path, "size": len(data)}
            sibling["blobId"] = _blob_id(data)
            if repo.lfs:
                sibling["lfs"] = {"sha256": _sha256(data), "size": len(data), "pointerSize": 134}
            siblings.append(sibling)
        self._json(
            {
                "id": name,
                "modelId": name,
                "sha": COMMIT,
                "private": repo.private,
                "siblings": siblings,
            }
        )

    def _file(self, name: str, repo: Repo, file: str) -> None:
        data = repo.files.get(file)
        if data is None:
            self._error(404, "EntryNotFound", f"{file} does not exist")
            return
        etag = f'"{_sha256(data) if repo.lfs else _blob_id(data)}"'
        headers = {"ETag": etag, "X-Repo-Commit": COMMIT, "Accept-Ranges": "bytes"}
        if repo.lfs:
            headers |= {"X-Linked-Etag": etag, "X-Linked-Size": str(len(data))}
        if self.command == "HEAD":
            self.send_response(200)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return
        start, status = 0, 200
        match = _RANGE.match(self.headers.get("Range", ""))
        if match:
            start, status = int(match.group(1)), 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self.hub.fetches.append(Fetch(name, file, start))
        body = data[start:]
        if self.hub.tamper and body:
            body = body[:-1] + bytes([body[-1] ^ 1])
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.hub._cut
        if cut is not None:
            # Half the body, then the connection goes, and the hub with it.
            self.hub._cut, self.hub._down = None, True
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        # In pieces, so a streamed progress report has several steps to show.
        step = max(1, len(body) // 16)
        for offset in range(0, len(body), step):
            self.wfile.write(body[offset : offset + step])
            time.sleep(self.hub.pause)


def gguf_bytes(size: int, seed: int = 0) -> bytes:
    """Bytes that start like a GGUF file (what the models folder checks), not a model."""
    block = hashlib.sha256(str(seed).encode()).digest()
    return (b"GGUF" + block * (size // len(block) + 1))[:size]
