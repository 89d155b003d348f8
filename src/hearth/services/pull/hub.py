"""The Hugging Face Hub, through `huggingface_hub`: a repo's files and one file's bytes.

`HF_ENDPOINT` (a mirror, or the tests' fake hub) and `HF_TOKEN` are read at each pull,
not when `huggingface_hub` was imported, so a server picks up neither stale. Downloads
are plain HTTP (`http_get`, which retries a dropped connection from where it stopped) into
a file Hearth names, so a pull that was stopped resumes where it stopped on the next run;
huggingface_hub's own download keeps no partial file across runs."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, BinaryIO

import httpx
from huggingface_hub import HfApi, constants, hf_hub_url
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import http_get
from huggingface_hub.utils import build_hf_headers

from hearth.core.errors import Forbidden, HearthError, NotFound
from hearth.services.pull.quants import RepoFile

DEFAULT_ENDPOINT = "https://huggingface.co"
# http_get reads the body in pieces of this size (10 MiB by default): the unit of its
# progress updates and of what a stopped download keeps. 1 MiB: a smooth bar, little lost.
constants.DOWNLOAD_CHUNK_SIZE = 1 << 20


class HubUnavailable(HearthError):
    """The Hub (or the network to it) failed: a gateway's error, worth a retry."""

    status = 502
    type = "hub_unavailable"


class Hub:
    def __init__(self, endpoint: str | None = None, token: str | None = None) -> None:
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self.token = token if token is not None else os.environ.get("HF_TOKEN") or None
        # No token means none, not the one `huggingface-cli login` stored: HF_TOKEN decides.
        self._api = HfApi(endpoint=self.endpoint, token=self.token or False)

    def files(self, repo: str) -> tuple[str, list[RepoFile]]:
        """The commit `main` is at, and the repo's files with their sizes and hashes."""
        with self._errors(repo):
            info = self._api.model_info(repo, files_metadata=True)
        files = [
            RepoFile(
                path=s.rfilename,
                size=s.lfs.size if s.lfs is not None else s.size or 0,
                sha256=s.lfs.sha256 if s.lfs is not None else None,
                blob_id=s.blob_id,
            )
            for s in info.siblings or []
        ]
        return info.sha or "main", files

    def download(
        self,
        repo: str,
        revision: str,
        f: RepoFile,
        into: BinaryIO,
        have: int,
        on_bytes: Callable[[int], None],
    ) -> None:
        """Append f's bytes from `have` on to `into`; `on_bytes(n)` as they come."""
        url = hf_hub_url(repo, f.path, revision=revision, endpoint=self.endpoint)
        headers = build_hf_headers(token=self.token or False)
        with self._errors(repo, f.path):
            http_get(
                url,
                into,
                resume_size=have,
                headers=headers,
                expected_size=f.size,
                tqdm_class=functools.partial(_Meter, on_bytes),  # type: ignore[arg-type]
            )

    def _errors(self, repo: str, path: str | None = None) -> _HubErrors:
        return _HubErrors(self.endpoint, repo, path)


class _HubErrors:
    """huggingface_hub's and httpx's exceptions as one line each."""

    def __init__(self, endpoint: str, repo: str, path: str | None) -> None:
        self.endpoint, self.repo, self.path = endpoint, repo, path

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if exc is None:
            return
        where = f"{self.repo} on {self.endpoint}"
        if isinstance(exc, GatedRepoError):
            raise Forbidden(
                f"{where} is gated: accept its terms on its page, then set HF_TOKEN"
            ) from None
        if isinstance(exc, RepositoryNotFoundError):
            raise NotFound(
                f"repository {where} not found (a private one needs HF_TOKEN set to a token "
                "that may read it)"
            ) from None
        if isinstance(exc, RevisionNotFoundError):
            raise NotFound(f"{where} has no main branch") from None
        if isinstance(exc, HfHubHTTPError):
            status = exc.response.status_code if exc.response is not None else "?"
            raise HubUnavailable(
                f"{where}: the hub answered {status}{self._what()}; run the same pull again "
                "to resume"
            ) from None
        if isinstance(exc, httpx.TransportError | OSError) and not _disk(exc):
            raise HubUnavailable(
                f"cannot reach {self.endpoint} ({type(exc).__name__}){self._what()}; "
                "run the same pull again to resume"
            ) from None

    def _what(self) -> str:
        return f" while downloading {self.path}" if self.path else ""


def _disk(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno is not None


class _Meter:
    """Stands in for huggingface_hub's tqdm bar: passes the byte counts on."""

    def __init__(self, on_bytes: Callable[[int], None], **_: Any) -> None:
        self._on_bytes = on_bytes

    def __enter__(self) -> _Meter:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def update(self, n: int | float | None = 1) -> None:
        self._on_bytes(int(n or 0))
