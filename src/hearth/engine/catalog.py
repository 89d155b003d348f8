"""Names that clients create at run time (Ollama's copy and create), kept across restarts
in a JSON file in the data dir: aliases, and derived models that add a system prompt,
default sampling options or a chat template to a registered model."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Profile:
    """What a derived model changes about its base. `options` uses the engine's names:
    SamplingParams fields plus "max_tokens" and "stop"."""

    system: str | None = None
    template: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.system is None and self.template is None and not self.options


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    target: str
    profile: Profile = field(default_factory=Profile)


class Catalog:
    """Reads and writes `models.json`; writes go to a temp file renamed over the old one,
    so a crash mid-write never leaves a half-written catalog."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, CatalogEntry]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("ignoring unreadable model catalog %s: %s", self.path, exc)
            return {}
        out: dict[str, CatalogEntry] = {}
        for name, item in raw.get("models", {}).items():
            try:
                out[name] = CatalogEntry(item["target"], Profile(**item.get("profile", {})))
            except (KeyError, TypeError) as exc:
                log.error("ignoring bad catalog entry %r: %s", name, exc)
        return out

    def save(self, entries: dict[str, CatalogEntry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "models": {
                name: {"target": e.target, "profile": asdict(e.profile)}
                for name, e in entries.items()
            }
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=2))
        os.replace(tmp, self.path)
