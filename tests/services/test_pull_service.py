"""services/pull against the fake Hub (tests/fakehub.py): files that look like GGUF,
not models — loading a pulled model is the e2e tests' part."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.core.errors import Conflict, HearthError, InvalidRequest, NotFound
from hearth.engine.models_folder import MANIFEST, PARTIAL, read_manifest
from hearth.services.pull import Progress, pull
from hearth.services.pull.hub import HubUnavailable
from hearth.services.pull.puller import DiskFull
from tests.fakehub import FakeHub, gguf_bytes

MB = 1 << 20
SMALL = gguf_bytes(300_000)
BIG = gguf_bytes(3 * MB + 12345, seed=1)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    hub = FakeHub().start()
    hub.add(
        "fake/tiny-GGUF",
        {
            "tiny-Q4_K_M.gguf": SMALL,
            "tiny-Q8_0.gguf": BIG,
            "Q6_K/tiny-Q6_K-00001-of-00002.gguf": gguf_bytes(1000, seed=2),
            "Q6_K/tiny-Q6_K-00002-of-00002.gguf": b"rest of it",
            "mmproj-tiny-f16.gguf": SMALL,
            "README.md": b"# tiny",
        },
    )
    hub.add("fake/odd-GGUF", {"odd-q5_k_m.gguf": SMALL, "odd-IQ2_M.gguf": SMALL})
    hub.add("fake/private-GGUF", {"p-Q4_K_M.gguf": SMALL}, private=True)
    hub.add("fake/text-only", {"model.safetensors": SMALL})
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    yield hub
    hub.stop()


def test_pulls_the_default_quant_verified_and_recorded(hub: FakeHub, tmp_path: Path) -> None:
    seen: list[Progress] = []
    pulled = pull("hf.co/fake/tiny-GGUF", tmp_path, report=seen.append)
    assert pulled.name == "tiny-gguf:q4_k_m" and pulled.quant == "Q4_K_M"
    assert pulled.path == tmp_path / "tiny-Q4_K_M.gguf"
    assert pulled.path.read_bytes() == SMALL
    assert read_manifest(tmp_path)["tiny-Q4_K_M.gguf"]["name"] == "tiny-gguf:q4_k_m"
    statuses = [p.status for p in seen]
    assert statuses[0] == "pulling manifest" and statuses[-3:] == [
        "verifying sha256 digest",
        "writing manifest",
        "success",
    ]
    done = [p.completed for p in seen if p.digest and p.status.startswith("pulling ")]
    assert done[0] == 0 and done[-1] == len(SMALL)
    assert not list((tmp_path / PARTIAL).iterdir())  # nothing left half-done


def test_quant_is_matched_case_insensitively_and_named(hub: FakeHub, tmp_path: Path) -> None:
    pulled = pull("fake/tiny-GGUF:q8_0", tmp_path, name="mine")
    assert (pulled.name, pulled.quant) == ("mine", "Q8_0")
    assert pulled.path.read_bytes() == BIG


def test_the_nearest_quant_when_the_default_is_missing(hub: FakeHub, tmp_path: Path) -> None:
    seen: list[Progress] = []
    pulled = pull("fake/odd-GGUF", tmp_path, report=seen.append)
    assert pulled.quant == "q5_k_m" and pulled.name == "odd-gguf:q5_k_m"
    assert any("has no Q4_K_M; pulling q5_k_m" in p.status for p in seen)


def test_a_split_model_comes_whole_and_is_named_by_its_first_part(
    hub: FakeHub, tmp_path: Path
) -> None:
    pulled = pull("fake/tiny-GGUF:Q6_K", tmp_path)
    assert [p.name for p in pulled.files] == [
        "tiny-Q6_K-00001-of-00002.gguf",
        "tiny-Q6_K-00002-of-00002.gguf",
    ]
    assert (tmp_path / "tiny-Q6_K-00002-of-00002.gguf").read_bytes() == b"rest of it"
    assert pulled.path == tmp_path / "tiny-Q6_K-00001-of-00002.gguf"
    assert list(read_manifest(tmp_path)) == ["tiny-Q6_K-00001-of-00002.gguf"]


def test_a_missing_quant_lists_those_there(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"has no Q2_K file; it has: Q4_K_M, Q6_K, Q8_0$"):
        pull("fake/tiny-GGUF:Q2_K", tmp_path)


def test_repo_missing_or_without_gguf(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"repository fake/nothing on .* not found"):
        pull("fake/nothing", tmp_path)
    with pytest.raises(NotFound, match="fake/text-only has no GGUF file"):
        pull("fake/text-only", tmp_path)


def test_a_private_repo_needs_the_token(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(NotFound, match="HF_TOKEN"):
        pull("fake/private-GGUF", tmp_path)
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(NotFound):
        pull("fake/private-GGUF", tmp_path)
    monkeypatch.setenv("HF_TOKEN", hub.token)
    assert pull("fake/private-GGUF", tmp_path).path.read_bytes() == SMALL


def test_an_interrupted_download_resumes_where_it_stopped(hub: FakeHub, tmp_path: Path) -> None:
    hub.cut_after(2 * MB + 100)
    with pytest.raises(HubUnavailable, match="run the same pull again to resume"):
        pull("fake/tiny-GGUF:Q8_0", tmp_path)
    assert not (tmp_path / "tiny-Q8_0.gguf").exists()
    assert "tiny-Q8_0.gguf" not in read_manifest(tmp_path)
    kept = next((tmp_path / PARTIAL).iterdir()).stat().st_size
    assert 0 < kept < len(BIG)
    hub.restore()
    pulled = pull("fake/tiny-GGUF:Q8_0", tmp_path)
    assert pulled.path.read_bytes() == BIG
    assert hub.starts("tiny-Q8_0.gguf") == [0, kept]  # the second run fetched the rest


def test_a_damaged_download_is_not_kept(hub: FakeHub, tmp_path: Path) -> None:
    hub.tamper = True
    with pytest.raises(HubUnavailable, match="does not match the hash"):
        pull("fake/tiny-GGUF", tmp_path)
    assert not (tmp_path / "tiny-Q4_K_M.gguf").exists()
    assert not list((tmp_path / PARTIAL).iterdir())


def test_network_gone(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.stop()
    with pytest.raises(HubUnavailable, match=r"cannot reach http://127\.0\.0\.1:\d+"):
        pull("fake/tiny-GGUF", tmp_path)


def test_disk_full_leaves_nothing(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hearth.services.pull.hub as hub_module

    real = hub_module.http_get

    def filling(url: str, temp_file, **kwargs) -> None:  # type: ignore[no-untyped-def]
        class Full:
            def write(self, chunk: bytes) -> int:
                temp_file.write(chunk[:10])
                raise OSError(errno.ENOSPC, "No space left on device")

        real(url, Full(), **kwargs)

    monkeypatch.setattr(hub_module, "http_get", filling)
    with pytest.raises(DiskFull, match="disk filled up"):
        pull("fake/tiny-GGUF", tmp_path)
    assert not (tmp_path / "tiny-Q4_K_M.gguf").exists()
    assert not list((tmp_path / PARTIAL).iterdir())
    assert read_manifest(tmp_path) == {}


def test_too_little_space_is_said_before_downloading(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hearth.services.pull.puller as puller

    monkeypatch.setattr(puller.shutil, "disk_usage", lambda _: type("U", (), {"free": 1000}))
    with pytest.raises(DiskFull, match=r"needs 300\.0 KB, 1\.0 KB is free"):
        pull("fake/tiny-GGUF", tmp_path)
    assert hub.fetches == []


@pytest.mark.parametrize(
    "reference",
    ["fake", "fake/tiny-GGUF/extra", "../etc/passwd", "fake/..", "fake/a..b", "fake/tiny:..",
     "fake/tiny:Q4/../../x", "fake/tiny:", "-x/y", "fake /tiny", "https://evil/x/y"],
)  # fmt: skip
def test_bad_references(hub: FakeHub, tmp_path: Path, reference: str) -> None:
    with pytest.raises(InvalidRequest):
        pull(reference, tmp_path)
    assert hub.fetches == [] and not (tmp_path / MANIFEST).exists()


def test_a_file_name_from_the_hub_that_escapes_is_refused(hub: FakeHub, tmp_path: Path) -> None:
    hub.add("fake/evil-GGUF", {"../../evil-Q4_K_M.gguf": SMALL, "x/.hidden-Q8_0.gguf": SMALL})
    with pytest.raises(HearthError, match="will not write"):
        pull("fake/evil-GGUF", tmp_path)
    with pytest.raises(HearthError, match="will not write"):
        pull("fake/evil-GGUF:Q8_0", tmp_path)
    assert not (tmp_path.parent / "evil-Q4_K_M.gguf").exists()


def test_a_name_taken_by_a_configured_model(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(Conflict, match="configured model"):
        pull("fake/tiny-GGUF", tmp_path, taken={"tiny-gguf:q4_k_m"}.__contains__)
    assert hub.fetches == []


def test_a_second_pull_of_the_same_model_downloads_nothing(hub: FakeHub, tmp_path: Path) -> None:
    pull("fake/tiny-GGUF", tmp_path)
    again = pull("fake/tiny-GGUF", tmp_path)
    assert again.path.read_bytes() == SMALL
    assert len(hub.starts("tiny-Q4_K_M.gguf")) == 1


def test_one_download_of_a_file_at_a_time(hub: FakeHub, tmp_path: Path) -> None:
    import fcntl
    import hashlib

    part = tmp_path / PARTIAL / f"sha256-{hashlib.sha256(SMALL).hexdigest()}.part"
    part.parent.mkdir()
    with part.open("ab") as other:  # another process pulling it
        fcntl.flock(other, fcntl.LOCK_EX)
        with pytest.raises(Conflict, match="being pulled already"):
            pull("fake/tiny-GGUF", tmp_path)
    assert pull("fake/tiny-GGUF", tmp_path).path.read_bytes() == SMALL


async def test_leaving_the_progress_stream_stops_the_download(hub: FakeHub, tmp_path: Path) -> None:
    import asyncio

    from hearth.services.pull import events

    hub.pause = 0.2  # 16 pieces: three seconds for the whole file
    steps = events(
        lambda report, stop: pull("fake/tiny-GGUF:Q8_0", tmp_path, report=report, stop=stop)
    )
    async for p in steps:
        if p.completed:
            break
    await steps.aclose()
    await asyncio.sleep(4)  # past when the whole file would have come
    assert not (tmp_path / "tiny-Q8_0.gguf").exists()
    part = next((tmp_path / PARTIAL).iterdir())
    assert 0 < part.stat().st_size < len(BIG)  # kept for the next pull
