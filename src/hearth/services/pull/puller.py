"""The pull itself: choose the files, download what is missing, verify, then move in."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hearth.core.errors import Conflict, HearthError, InvalidRequest
from hearth.core.model_spec import valid_model_name
from hearth.engine.models_folder import PARTIAL, read_manifest, write_manifest
from hearth.services.pull.hub import Hub, HubUnavailable
from hearth.services.pull.progress import Progress, Report
from hearth.services.pull.quants import SPLIT, Choice, RepoFile, choose
from hearth.services.pull.reference import DEFAULT_QUANT, parse

# A file name the Hub lists becomes a path here: one plain name, nothing else.
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,250}\.gguf$", re.IGNORECASE)
_CHUNK = 1 << 20


class DiskFull(HearthError):
    status = 507
    type = "insufficient_storage"


class PullStopped(Exception):
    """The caller stopped the pull (a client went away); the partial file is kept."""


@dataclass(frozen=True, slots=True)
class Pulled:
    name: str
    repo: str
    quant: str
    path: Path  # the first part: what llama.cpp opens
    files: tuple[Path, ...]
    size: int


def pull(
    text: str,
    models_dir: Path,
    *,
    name: str | None = None,
    taken: Callable[[str], bool] = lambda _: False,
    report: Report = lambda _: None,
    stop: threading.Event | None = None,
    hub: Hub | None = None,
) -> Pulled:
    """Download `user/repo[:QUANT]` into `models_dir`; `taken(name)`: whether the name
    is served already by something else (a configured model)."""
    ref = parse(text)
    if name is not None and not valid_model_name(name):
        raise InvalidRequest(f"invalid model name {name!r}", param="name")
    hub = hub or Hub()
    report(Progress("pulling manifest"))
    revision, listing = hub.files(ref.repo)
    choice = choose(ref.repo, listing, ref.quant)
    if not choice.asked:
        report(Progress(f"{ref.repo} has no {DEFAULT_QUANT}; pulling {choice.quant}, the nearest"))
    name = name or f"{ref.repo.split('/', 1)[1]}:{choice.quant}".lower()
    if taken(name):
        raise Conflict(f"{name!r} is a configured model; pull under another name (--name)")
    targets = _targets(ref.repo, choice, models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(models_dir)
    owner = next((f for f, e in manifest.items() if e.get("name") == name), None)
    if owner is not None and owner != targets[0][1].name:
        raise Conflict(f"{name!r} names another pulled model ({owner}); choose another --name")
    partial = models_dir / PARTIAL
    todo = [(f, path) for f, path in targets if not _already(path, f)]
    _check_space(models_dir, partial, todo)
    staged = []
    for f, path in todo:
        part = partial / f"{_digest(f).replace(':', '-')}.part"
        _fetch(hub, ref.repo, revision, f, part, report, stop)
        staged.append((part, path))
    report(Progress("writing manifest"))
    first = targets[0][1]
    manifest[first.name] = {
        "name": name,
        "repo": ref.repo,
        "quant": choice.quant,
        "revision": revision,
        "files": {path.name: _digest(f) for f, path in targets},
    }
    write_manifest(models_dir, manifest)
    # The first part last: the folder serves a split model once its first part is there.
    for part, path in sorted(staged, key=lambda s: s[1] == first):
        os.replace(part, path)
    report(Progress("success"))
    paths = tuple(path for _, path in targets)
    return Pulled(name, ref.repo, choice.quant, first, paths, choice.size)


def _targets(repo: str, choice: Choice, models_dir: Path) -> list[tuple[RepoFile, Path]]:
    """Each file with the name it gets in the folder (its name in the repo, sans folders)."""
    out = []
    for f in choice.files:
        *folders, file_name = f.path.split("/")
        if (
            not _FILE_NAME.match(file_name)
            or ".." in file_name
            or any(part in ("", ".", "..") for part in folders)
        ):
            raise HubUnavailable(f"{repo} lists a file Hearth will not write: {f.path!r}")
        out.append((f, models_dir / file_name))
    match = SPLIT.search(out[0][1].name)
    if match is not None and int(match.group(2)) != len(out):
        raise HubUnavailable(
            f"{repo}: {choice.quant} is split into {int(match.group(2))} parts but "
            f"{len(out)} are there"
        )
    return out


def _digest(f: RepoFile) -> str:
    return f"sha256:{f.sha256}" if f.sha256 else f"sha1:{f.blob_id}"


def _already(path: Path, f: RepoFile) -> bool:
    """A file pulled before, whole (verified when it was moved in)."""
    try:
        return path.stat().st_size == f.size
    except OSError:
        return False


def _check_space(models_dir: Path, partial: Path, todo: list[tuple[RepoFile, Path]]) -> None:
    need = 0
    for f, _ in todo:
        part = partial / f"{_digest(f).replace(':', '-')}.part"
        need += f.size - (part.stat().st_size if part.exists() else 0)
    free = shutil.disk_usage(models_dir).free
    if need > free:
        raise DiskFull(
            f"not enough disk space in {models_dir}: the download needs {_size(need)}, "
            f"{_size(free)} is free"
        )


def _fetch(
    hub: Hub,
    repo: str,
    revision: str,
    f: RepoFile,
    part: Path,
    report: Report,
    stop: threading.Event | None,
) -> None:
    digest = _digest(f)
    part.parent.mkdir(parents=True, exist_ok=True)
    try:
        with part.open("ab") as out:
            _lock(out, f.path)
            have = out.seek(0, os.SEEK_END)
            if have > f.size:  # not this file after all: start over
                out.truncate(0)
                have = 0
            hub.download(repo, revision, f, out, have, _meter(f, have, report, stop))
            out.flush()  # read back below, while still locked
            report(Progress("verifying sha256 digest", digest, f.size, f.size))
            if not _verified(part, f):
                part.unlink(missing_ok=True)
                raise HubUnavailable(
                    f"{f.path} from {repo} does not match the hash the hub lists for it "
                    "(damaged in transit); nothing was kept: pull again"
                )
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            part.unlink(missing_ok=True)  # nothing half-written stays to fill the disk
            raise DiskFull(
                f"the disk filled up while downloading {f.path} into {part.parent.parent}; "
                "nothing was kept: free some space and pull again"
            ) from None
        raise


def _lock(out: BinaryIO, path: str) -> None:
    """One download per file at a time, across processes (a server and `hearth pull`)."""
    try:
        fcntl.flock(out, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise Conflict(f"{path} is being pulled already; wait for that pull to finish") from None


def _meter(
    f: RepoFile, have: int, report: Report, stop: threading.Event | None
) -> Callable[[int], None]:
    """Reports f's progress from `have` bytes on; stops the download once `stop` is set."""
    digest = _digest(f)
    status = f"pulling {digest.split(':', 1)[1][:12]}"
    done = have
    report(Progress(status, digest, f.size, done))

    def on_bytes(n: int) -> None:
        nonlocal done
        if stop is not None and stop.is_set():
            raise PullStopped(f"the pull of {f.path} was stopped")
        done += n
        report(Progress(status, digest, f.size, done))

    return on_bytes


def _verified(path: Path, f: RepoFile) -> bool:
    if f.sha256:
        h = hashlib.sha256()
    elif f.blob_id:
        h = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    else:
        return path.stat().st_size == f.size
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest() == (f.sha256 or f.blob_id)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
