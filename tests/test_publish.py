"""``mogents publish`` without the hub: offline, unreachable, a bad or foreign repo id, HTTP
errors. Only huggingface_hub's network calls (``HfApi.create_repo`` / ``upload_folder``) are
replaced; the offline case runs huggingface_hub's own code with ``HF_HUB_OFFLINE``."""

from __future__ import annotations

import huggingface_hub
import pytest
from click.testing import CliRunner
from huggingface_hub import constants as hub_constants
from huggingface_hub import errors as hub_errors

from hftrainer_mogents.cli import cli

httpx = pytest.importorskip("httpx2")
URL = "https://huggingface.co/api/repos/create"


def _response(status: int) -> object:
    return httpx.Response(status, request=httpx.Request("POST", URL))


@pytest.fixture
def calls(monkeypatch):
    """Which network calls were attempted (none reach a network)."""
    seen: list[str] = []

    def create_repo(self, repo_id, **kwargs):
        seen.append("create")
        raise AssertionError("no network call expected")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    return seen


def _publish(artifact, *extra):
    return CliRunner().invoke(cli, ["publish", str(artifact), *extra])


@pytest.mark.parametrize("repo_id", ["bad repo", "a/b/c", "-me/tiny"])
def test_bad_repo_id_is_refused_before_anything(tiny_artifact, calls, repo_id):
    result = _publish(tiny_artifact, "--repo-id", repo_id)
    assert result.exit_code == 1, result.output
    assert "InvalidInputError" in result.output and "--repo-id" in result.output
    assert "owner/name" in result.output and result.exception.__class__ is SystemExit
    assert calls == []


def test_offline_says_so(tiny_artifact, monkeypatch):
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    result = _publish(tiny_artifact, "--repo-id", "me/tiny", "--token", "t")
    assert result.exit_code == 1, result.output
    assert "HubUnavailableError" in result.output and "HF_HUB_OFFLINE" in result.output
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    ("failure", "where", "expected"),
    [
        (lambda: httpx.ConnectError("network unreachable"), "create_repo",
         ("HubUnavailableError", "cannot be reached")),
        (lambda: httpx.ConnectTimeout("timed out"), "upload_folder",
         ("HubUnavailableError", "cannot be reached")),
        (lambda: hub_errors.RepositoryNotFoundError("404", response=_response(404)),
         "create_repo", ("InvalidInputError", "--repo-id")),
        (lambda: hub_errors.HfHubHTTPError("403 Forbidden", response=_response(403)),
         "create_repo", ("InvalidInputError", "--token")),
        (lambda: hub_errors.HfHubHTTPError("502 Bad Gateway", response=_response(502)),
         "upload_folder", ("HubUnavailableError", "HTTP 502")),
        (lambda: hub_errors.LocalTokenNotFoundError("no token"), "create_repo",
         ("InvalidInputError", "--token")),
    ],
)  # fmt: skip
def test_hub_errors_become_typed_errors(tiny_artifact, monkeypatch, failure, where, expected):
    def create_repo(self, repo_id, **kwargs):
        if where == "create_repo":
            raise failure()

    def upload_folder(self, **kwargs):
        raise failure()

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    result = _publish(tiny_artifact, "--repo-id", "me/tiny", "--token", "t")
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    for text in expected:
        assert text in result.output, result.output
