"""Getting models, end to end, against the fake Hub (tests/fakehub.py) serving the bundled
GGUF: `hearth pull` as a process (interrupted, resumed, then served), the `ollama`
client's pull with its progress, /api/delete, /admin/models/pull for admins only, and a
file dropped into the models folder listed without a restart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import openai
import pytest

import hearth
from hearth.engine.fake import FakeBackend
from tests.conftest import MODEL, LiveServer, make_settings, registry_of
from tests.fakehub import FakeHub, gguf_bytes

ADMIN = "sk-operator-pull"
MB = 1 << 20


@pytest.fixture(scope="module")
def hub(model_path: Path) -> Iterator[FakeHub]:
    hub = FakeHub().start()
    data = model_path.read_bytes()
    hub.add("fake/smol-GGUF", {"smol-Q4_K_M.gguf": data, "smol-Q8_0.gguf": data})
    hub.add("fake/small-GGUF", {"small-Q4_K_M.gguf": gguf_bytes(200_000)})
    yield hub
    hub.stop()


@pytest.fixture(autouse=True)
def endpoint(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)


def hearth_pull(*args: str, data_dir: Path, hub: FakeHub) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTH_", "HF_"))}
    env |= {"HEARTH_DATA_DIR": str(data_dir), "HF_ENDPOINT": hub.url}
    # The hearth under test, wherever the process starts.
    env["PYTHONPATH"] = str(Path(hearth.__file__).parents[1])
    return subprocess.run(
        [sys.executable, "-m", "hearth", "pull", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def chat(url: str, model: str) -> str:
    with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
        reply = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Say hi"}], max_tokens=8
        )
    return reply.choices[0].message.content or ""


def test_hearth_pull_resumes_verifies_and_the_model_is_served(hub: FakeHub, tmp_path: Path) -> None:
    hub.cut_after(30 * MB)
    first = hearth_pull("fake/smol-GGUF", data_dir=tmp_path, hub=hub)
    hub.restore()
    assert first.returncode == 2
    assert "run the same pull again to resume" in first.stderr
    assert first.stderr.count("\n") == 1  # one line
    second = hearth_pull("hf.co/fake/smol-GGUF", data_dir=tmp_path, hub=hub)
    assert second.returncode == 0, second.stderr
    starts = hub.starts("smol-Q4_K_M.gguf")
    assert len(starts) == 2 and starts[0] == 0 and 20 * MB < starts[1] <= 30 * MB
    assert "verifying sha256 digest" in second.stdout
    assert "as smol-gguf:q4_k_m" in second.stdout
    pulled = tmp_path / "models" / "smol-Q4_K_M.gguf"
    assert pulled.stat().st_size == hub.repos["fake/smol-GGUF"].files["smol-Q4_K_M.gguf"].__len__()

    missing = hearth_pull("fake/smol-GGUF:Q2_K", data_dir=tmp_path, hub=hub)
    assert missing.returncode == 2
    assert missing.stderr.strip().endswith("has no Q2_K file; it has: Q4_K_M, Q8_0")

    server = LiveServer(make_settings(tmp_path)).start()
    try:
        assert chat(server.url, "smol-gguf:q4_k_m")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(make_settings(tmp_path_factory.mktemp("pull-live"))).start()
    yield live
    live.stop()


def test_ollama_pull_streams_progress_then_chats_and_delete_removes_it(
    server: LiveServer, hub: FakeHub
) -> None:
    name = "hf.co/fake/smol-GGUF:Q8_0"
    with ollama.Client(host=server.url) as client:
        _pull_chat_delete(client, server, hub, name)


def _pull_chat_delete(client: ollama.Client, server: LiveServer, hub: FakeHub, name: str) -> None:
    steps = list(client.pull(name, stream=True))
    statuses = [s.status for s in steps]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    progress = [s for s in steps if s.status.startswith("pulling ") and s.total]
    done = [s.completed for s in progress]
    assert len(done) > 5 and done == sorted(done) and done[0] == 0
    assert (
        done[-1] == progress[-1].total == len(hub.repos["fake/smol-GGUF"].files["smol-Q8_0.gguf"])
    )
    assert progress[0].digest.startswith("sha256:")

    reply = client.chat(
        model=name, messages=[{"role": "user", "content": "Hi"}], options={"num_predict": 5}
    )
    assert reply.message.content
    assert name in [m.model for m in client.list().models]

    path = server.state.settings.models_folder / "smol-Q8_0.gguf"
    assert path.exists()
    client.delete(name)
    assert not path.exists()
    assert name not in [m.model for m in client.list().models]
    with pytest.raises(ollama.ResponseError):
        client.chat(model=name, messages=[{"role": "user", "content": "Hi"}])


def test_ollama_pull_errors(server: LiveServer) -> None:
    with ollama.Client(host=server.url) as client:
        _pull_errors(client)


def _pull_errors(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError, match="has no Q2_K file; it has: Q4_K_M, Q8_0"):
        list(client.pull("hf.co/fake/smol-GGUF:Q2_K", stream=True))
    with pytest.raises(ollama.ResponseError, match="not found"):
        client.pull("hf.co/fake/missing-GGUF", stream=False)
    with pytest.raises(ollama.ResponseError) as bad:
        client.pull("hf.co/fake/../../etc:Q4", stream=False)
    assert bad.value.status_code == 400
    # A served name still answers as before.
    assert client.pull(MODEL, stream=False).status == "success"


def test_a_file_dropped_into_the_folder_is_listed_without_a_restart(
    server: LiveServer, model_path: Path
) -> None:
    folder = server.state.settings.models_folder
    folder.mkdir(parents=True, exist_ok=True)
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0) as client:
        assert "dropped-in" not in [m.id for m in client.models.list()]
        # A copy: a link to the bundled model is that model, served already (not twice).
        shutil.copyfile(model_path, folder / ".copying")
        (folder / ".copying").rename(folder / "Dropped-In.gguf")
        listed = {m.id: m.model_dump() for m in client.models.list()}
        assert listed["dropped-in"]["state"] == "unloaded"
        assert listed["dropped-in"]["quantization"] == "Q4_1"
        assert listed["dropped-in"]["context_length"] == 8192
        assert listed["dropped-in"]["size"] == model_path.stat().st_size
        assert chat(server.url, "dropped-in")
        assert client.models.retrieve("dropped-in").model_dump()["state"] == "loaded"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("pull-keyed"), api_keys=[ADMIN])
    live = LiveServer(settings, registry_of(FakeBackend(MODEL))).start()
    yield live
    live.stop()


def test_pulling_needs_an_admin_key(keyed: LiveServer) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=keyed.url, timeout=60) as http:
        made = http.post("/admin/keys", json={"name": "user"}, headers=admin)
        user = {"Authorization": f"Bearer {made.json()['key']}"}
        body = {"model": "fake/small-GGUF"}
        assert http.post("/admin/models/pull", json=body).status_code == 401
        refused = http.post("/admin/models/pull", json=body, headers=user)
        assert refused.status_code == 403
        ollama_refused = http.post(
            "/api/pull", json={"model": "hf.co/fake/small-GGUF"}, headers=user
        )
        assert ollama_refused.status_code == 403
        bad = http.post("/admin/models/pull", json={"model": "fake/x:.."}, headers=admin)
        assert bad.status_code == 400 and "quantisation" in bad.json()["error"]["message"]
        bad_name = {"model": "fake/small-GGUF", "name": "../up"}
        refused_name = http.post("/admin/models/pull", json=bad_name, headers=admin)
        assert refused_name.status_code == 400 and refused_name.json()["error"]["param"] == "name"

        with http.stream("POST", "/admin/models/pull", json=body, headers=admin) as reply:
            assert reply.status_code == 200
            lines = [line for line in reply.iter_lines() if line]
        assert '"status":"success"' in lines[-1].replace(" ", "")
        assert (keyed.state.settings.models_folder / "small-Q4_K_M.gguf").exists()
        whole = http.post(
            "/admin/models/pull", json={**body, "stream": False}, headers=admin
        )  # pulled already: nothing to download, and one reply
        assert (whole.status_code, whole.json()) == (200, {"status": "success"})
        listed = http.get("/v1/models", headers=user).json()["data"]
        assert "small-gguf:q4_k_m" in [m["id"] for m in listed]

        missing = http.post(
            "/admin/models/pull", json={"model": "fake/nothing", "stream": False}, headers=admin
        )
        assert missing.status_code == 404 and "not found" in missing.json()["error"]["message"]
