"""Hub loading through huggingface_hub's own code, with only the HTTP transport mocked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub import constants as hub_constants
from huggingface_hub.utils import _http as hub_http

from hftrainer_mogents import artifact
from hftrainer_mogents.bundle import MoGenTSBundle
from hftrainer_mogents.errors import ArtifactNotFoundError, HubUnavailableError

httpx = pytest.importorskip("httpx2")

REPO = "someone/mogents-tiny"
COMMITS = {"main": "1" * 40, "v1": "2" * 40}


class FakeHub:
    """Serves one repo from a local artifact folder; records every request."""

    def __init__(self, folder: Path) -> None:
        self.files = {p.name: p.read_bytes() for p in folder.iterdir()}
        # files a hub repo may hold that are not part of the artifact
        self.files["README.md"] = b"# card"
        self.files["legacy_vq.pt"] = b"\0" * 64
        self.requests: list[tuple[str, str]] = []
        self.down = False

    def handler(self, request):
        self.requests.append((request.method, request.url.path))
        if self.down:
            raise httpx.ConnectError("network unreachable", request=request)
        parts = request.url.path.strip("/").split("/")
        if parts[:2] == ["api", "models"]:
            repo = "/".join(parts[2:4])
            if repo != REPO:
                return httpx.Response(
                    404, headers={"X-Error-Code": "RepoNotFound"}, json={"error": "no"}
                )
            if "revision" in parts:
                rev = parts[parts.index("revision") + 1]
                if rev not in COMMITS:
                    return httpx.Response(
                        404, headers={"X-Error-Code": "RevisionNotFound"}, json={"error": "no"}
                    )
                siblings = [{"rfilename": name} for name in self.files]
                return httpx.Response(
                    200, json={"id": REPO, "sha": COMMITS[rev], "siblings": siblings}
                )
            if "tree" in parts:
                return httpx.Response(
                    200,
                    json=[
                        {
                            "type": "file",
                            "path": n,
                            "size": len(d),
                            "oid": hashlib.sha1(d).hexdigest(),
                        }
                        for n, d in self.files.items()
                    ],
                )
        if "resolve" in parts:
            i = parts.index("resolve")
            name = "/".join(parts[i + 2 :])
            data = self.files.get(name)
            if data is None:
                return httpx.Response(404, headers={"X-Error-Code": "EntryNotFound"})
            headers = {
                "X-Repo-Commit": parts[i + 1],
                "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                "Content-Length": str(len(data)),
            }
            return httpx.Response(
                200, headers=headers, content=b"" if request.method == "HEAD" else data
            )
        return httpx.Response(404)

    def downloaded(self) -> set[str]:
        return {p.rsplit("/", 1)[-1] for m, p in self.requests if m == "GET" and "/resolve/" in p}


@pytest.fixture
def hub(tiny_artifact):
    fake = FakeHub(tiny_artifact)
    # the hub's own client with only the transport replaced (its request hook enforces offline mode)
    huggingface_hub.set_client_factory(
        lambda: httpx.Client(
            transport=httpx.MockTransport(fake.handler),
            event_hooks={"request": [hub_http.hf_request_event_hook]},
        )
    )
    try:
        yield fake
    finally:
        huggingface_hub.set_client_factory(hub_http.default_client_factory)


def test_download_only_artifact_files_at_the_revision(hub, tmp_path, tiny_artifact):
    bundle = MoGenTSBundle.from_pretrained(REPO, revision="v1", cache_dir=tmp_path)
    assert hub.downloaded() == set(artifact.ARTIFACT_PATTERNS)  # no README, no legacy .pt
    assert ("GET", f"/api/models/{REPO}/revision/v1") in hub.requests
    resolved = [p for m, p in hub.requests if "/resolve/" in p]
    assert resolved and all(f"/resolve/{COMMITS['v1']}/" in p for p in resolved)
    local = MoGenTSBundle.from_pretrained(tiny_artifact)
    for (name, a), (_, b) in zip(bundle.components(), local.components()):
        for key, value in a.state_dict().items():
            assert torch.equal(value, b.state_dict()[key]), f"{name}.{key}"


def test_offline_mode_serves_the_cache(hub, tmp_path, monkeypatch):
    MoGenTSBundle.from_pretrained(REPO, cache_dir=tmp_path)
    hub.requests.clear()
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    bundle = MoGenTSBundle.from_pretrained(REPO, cache_dir=tmp_path)
    assert bundle.mask_transformer_ts is not None
    assert hub.requests == []  # nothing went to the network


def test_offline_mode_with_empty_cache_says_how_to_proceed(hub, tmp_path, monkeypatch):
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubUnavailableError) as info:
        MoGenTSBundle.from_pretrained(REPO, revision="v1", cache_dir=tmp_path)
    message = str(info.value)
    assert REPO in message and "'v1'" in message
    assert "local artifact folder" in message and "local_files_only=True" in message


def test_unreachable_hub_falls_back_to_cache(hub, tmp_path):
    MoGenTSBundle.from_pretrained(REPO, cache_dir=tmp_path)
    hub.down = True
    MoGenTSBundle.from_pretrained(REPO, cache_dir=tmp_path)  # served from the cache
    with pytest.raises(HubUnavailableError, match="cannot be reached"):
        MoGenTSBundle.from_pretrained(REPO, revision="v1", cache_dir=tmp_path)


def test_local_files_only_never_calls_the_network(hub, tmp_path):
    with pytest.raises(HubUnavailableError, match="local_files_only=True"):
        MoGenTSBundle.from_pretrained(REPO, local_files_only=True, cache_dir=tmp_path)
    assert hub.requests == []


def test_unknown_repo_and_revision(hub, tmp_path):
    with pytest.raises(ArtifactNotFoundError, match="not found or is not accessible"):
        MoGenTSBundle.from_pretrained("someone/nope", cache_dir=tmp_path)
    with pytest.raises(ArtifactNotFoundError, match="revision 'v9' does not exist"):
        MoGenTSBundle.from_pretrained(REPO, revision="v9", cache_dir=tmp_path)


def test_not_a_path_nor_a_repo_id(tmp_path):
    with pytest.raises(ArtifactNotFoundError, match="neither an artifact folder nor a hub repo id"):
        MoGenTSBundle.from_pretrained(str(tmp_path / "missing" / "deeper" / "x"))
    with pytest.raises(ArtifactNotFoundError, match="has no mogents_config.json"):
        MoGenTSBundle.from_pretrained(tmp_path)


def test_misspelled_local_path_says_there_is_no_such_folder(hub, tmp_path, monkeypatch):
    """'art/tinyx' is also a valid repo id: the error says first that no such folder exists."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "art").mkdir()
    with pytest.raises(ArtifactNotFoundError) as err:
        MoGenTSBundle.from_pretrained("art/tinyx", cache_dir=tmp_path / "cache")
    message = str(err.value)
    assert message.startswith(f"there is no local folder 'art/tinyx' (relative to {tmp_path})")
    assert "not found or is not accessible" in message  # the hub's answer follows
    with pytest.raises(HubUnavailableError, match="^there is no local folder 'art/tinyx'"):
        MoGenTSBundle.from_pretrained(
            "art/tinyx", local_files_only=True, cache_dir=tmp_path / "cache"
        )
