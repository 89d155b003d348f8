"""Which GGUF file(s) of a repo hold the quantisation asked for.

GGUF repos name their files after the quantisation (`Qwen2.5-0.5B-Instruct-Q4_K_M.gguf`,
sometimes in a folder of that name), and a large one is split into parts
(`…-Q8_0-00001-of-00003.gguf`) that llama.cpp loads together from the first. Vision
projectors (`mmproj-*.gguf`) are not models of their own."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hearth.core.errors import NotFound
from hearth.services.pull.reference import DEFAULT_QUANT

_QUANT = re.compile(
    r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]{1,3})*|BF16|F16|F32|TQ\d_0|MXFP4)(?![A-Za-z0-9])",
    re.IGNORECASE,
)
SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
# Nearest to Q4_K_M first: what to take when the repo lacks it (size and quality alike).
_NEAREST = [
    "Q4_K_M", "Q4_K_S", "Q4_K_L", "Q4_K_XL", "IQ4_XS", "IQ4_NL", "Q4_0", "Q4_1",
    "Q5_K_M", "Q5_K_S", "Q5_K_L", "Q5_0", "Q5_1", "Q3_K_L", "Q3_K_M", "Q3_K_XL",
    "Q6_K", "Q6_K_L", "IQ3_M", "IQ3_XS", "Q3_K_S", "Q8_0", "Q2_K_L", "Q2_K", "IQ2_M",
    "BF16", "F16", "F32",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class RepoFile:
    path: str  # in the repo
    size: int
    sha256: str | None  # an LFS file's
    blob_id: str | None  # git's sha1 of a file stored in git itself


@dataclass(frozen=True, slots=True)
class Choice:
    quant: str  # as the repo spells it
    files: tuple[RepoFile, ...]  # the parts in order; the first is what llama.cpp opens
    asked: bool  # False: not the quant asked for, the nearest the repo has

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def quant_of(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1]
    found = _QUANT.findall(SPLIT.sub(".gguf", name)) or _QUANT.findall(path)
    return found[-1] if found else None


def _models(files: list[RepoFile]) -> dict[str, list[RepoFile]]:
    """GGUF models by quantisation (upper-cased), their parts in order."""
    by_quant: dict[str, list[RepoFile]] = {}
    for f in files:
        name = f.path.rsplit("/", 1)[-1]
        if not name.lower().endswith(".gguf") or name.lower().startswith("mmproj"):
            continue
        quant = quant_of(f.path) or SPLIT.sub("", name).removesuffix(".gguf")
        by_quant.setdefault(quant.upper(), []).append(f)
    for parts in by_quant.values():
        parts.sort(key=lambda f: f.path)
    return by_quant


def choose(repo: str, files: list[RepoFile], quant: str | None) -> Choice:
    models = _models(files)
    if not models:
        raise NotFound(f"{repo} has no GGUF file: Hearth runs GGUF models (look for a -GGUF repo)")
    wanted = (quant or DEFAULT_QUANT).upper()
    if wanted in models:
        return Choice(quant_of(models[wanted][0].path) or wanted, tuple(models[wanted]), True)
    if quant is not None:
        raise NotFound(
            f"{repo} has no {quant} file; it has: {', '.join(sorted(models, key=_rank))}"
        )
    nearest = min(models, key=_rank)
    return Choice(quant_of(models[nearest][0].path) or nearest, tuple(models[nearest]), False)


def _rank(quant: str) -> tuple[int, str]:
    return (_NEAREST.index(quant) if quant in _NEAREST else len(_NEAREST), quant)
