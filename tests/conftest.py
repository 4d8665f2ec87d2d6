"""Shared pytest fixtures.

``fixtures_dir`` finds the official-format reference data (``../shared/fixtures`` beside the
repository, or ``$MOGENTS_FIXTURES``). When it is absent, tests that need it are skipped with the
reason, except under ``MOGENTS_REQUIRE_FIXTURES=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

# huggingface_hub reads these when it is imported: set them before any test imports it, so no
# test touches the user's cache, and nothing phones home.
_HF_HOME = tempfile.mkdtemp(prefix="mogents-test-hf-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_CACHE"] = os.path.join(_HF_HOME, "hub")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
# parametrize a test over these to run it on the CPU and, where there is one, on a GPU
DEVICES = ["cpu", pytest.param("cuda", marks=requires_cuda)]


def _find_fixtures() -> Path | None:
    env = os.environ.get("MOGENTS_FIXTURES")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "fixtures")
    for path in candidates:
        if path.is_dir():
            return path
    return None


def require_fixture(path: Path) -> Path:
    """Skip (or fail under MOGENTS_REQUIRE_FIXTURES=1) when ``path`` does not exist."""
    if path.exists():
        return path
    reason = f"fixture {path} not found"
    if os.environ.get("MOGENTS_REQUIRE_FIXTURES") == "1":
        pytest.fail(f"{reason} (MOGENTS_REQUIRE_FIXTURES=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The shared fixtures folder (read-only: copy into ``tmp_path`` before modifying)."""
    found = _find_fixtures()
    if found is None:
        reason = (
            "shared fixtures not found: put them at ../shared/fixtures beside the repository "
            "or point MOGENTS_FIXTURES at them"
        )
        if os.environ.get("MOGENTS_REQUIRE_FIXTURES") == "1":
            pytest.fail(f"{reason} (MOGENTS_REQUIRE_FIXTURES=1)")
        pytest.skip(reason)
    return found


@pytest.fixture(scope="session")
def tiny_root(fixtures_dir: Path) -> Path:
    """The official-format tiny MoGenTS release (read-only)."""
    return require_fixture(fixtures_dir / "mogents_tiny")


@pytest.fixture(scope="session")
def tiny_artifact(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny release converted once into an artifact folder (treat as read-only; copy it into
    ``tmp_path`` before changing it)."""
    from hftrainer_mogents.convert.official import OfficialLayout, convert_official

    out = tmp_path_factory.mktemp("artifact") / "mogents_tiny"
    layout = OfficialLayout(weights_root=tiny_root / "logs", length_root=tiny_root / "checkpoints")
    convert_official(layout, out, clip=tiny_root / "clip" / "ViT-B-32-tiny.pt")
    return out


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_artifact: Path):
    """A CPU pipeline on the tiny artifact (shared: do not move or cast it)."""
    from hftrainer_mogents.pipeline import MoGenTSPipeline

    pipe = MoGenTSPipeline.from_pretrained(tiny_artifact, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe
