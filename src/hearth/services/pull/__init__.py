"""Pull a GGUF model from Hugging Face into the models folder (engine/models_folder.py).

    pull("bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M", models_dir, report=print)

The file(s) of the quantisation asked for are downloaded under the folder's `.partial/`
(named by their hash: a stopped pull resumes into the same file), each checked against
the hash the Hub lists (sha256 for LFS files), recorded in the folder's manifest under the
model's name, and only then renamed into the folder, the first part of a split model last:
the folder sees a model whole or not at all. Progress goes to `report` as Ollama's pull
statuses. Blocking: servers run it in a thread (`events()`).
"""

from __future__ import annotations

from hearth.services.pull.progress import Progress, events
from hearth.services.pull.puller import Pulled, PullStopped, pull

__all__ = ["Progress", "PullStopped", "Pulled", "events", "pull"]
