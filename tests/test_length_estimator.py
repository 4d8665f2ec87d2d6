"""The length estimator against the official code's outputs (fixtures/mogents_tiny)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import require_fixture

from hftrainer_mogents.config import LengthEstimatorConfig
from hftrainer_mogents.convert.safe_pickle import torch_load_weights_only
from hftrainer_mogents.errors import ArtifactFormatError
from hftrainer_mogents.modeling.length_estimator import LengthEstimator
from hftrainer_mogents.utils.io import load_state_dict_strict

ATOL = 1e-5
CKPT = "mogents_tiny/checkpoints/humanml3d/length_estimator/model/finest.tar"


@pytest.fixture(scope="module")
def estimator(fixtures_dir):
    ckpt = torch_load_weights_only(require_fixture(fixtures_dir / CKPT))
    model = LengthEstimator(LengthEstimatorConfig())
    load_state_dict_strict(model, ckpt["estimator"], source="finest.tar")
    return model.eval()


@pytest.fixture(scope="module")
def modules(fixtures_dir):
    with np.load(require_fixture(fixtures_dir / "mogents_tiny/modules.npz")) as data:
        return {k: data[k] for k in ("clip_feat_fp16path", "len_est_logits")}


def test_logits_match_official(estimator, modules):
    with torch.inference_mode():
        logits = estimator(torch.from_numpy(modules["clip_feat_fp16path"]))
    expected = modules["len_est_logits"]
    assert logits.shape == expected.shape == (4, 50)
    diff = float(np.abs(logits.numpy() - expected).max())
    assert diff <= ATOL, f"len_est_logits: max abs diff {diff:.3g} > {ATOL:g}"


def test_generation_fixture_logits(estimator, fixtures_dir):
    """The estlen generation run's logits, from its own CLIP features (same path as modules)."""
    path = require_fixture(fixtures_dir / "mogents_tiny/generate_estlen_ts18.npz")
    with np.load(path) as data:
        probs = torch.from_numpy(data["len_est_probs"])
        logits = torch.from_numpy(data["len_est_logits"])
    torch.testing.assert_close(torch.softmax(logits, -1), probs, atol=1e-6, rtol=0)


def test_released_layout_on_meta_device(fixtures_dir):
    manifest_path = fixtures_dir.parent / "research/mogents_state_dict_manifest.json"
    manifest = json.loads(require_fixture(manifest_path).read_text())["estimator"]
    with torch.device("meta"):
        model = LengthEstimator(LengthEstimatorConfig())
    state = model.state_dict()
    assert list(state) == list(manifest)
    for key, tensor in state.items():
        assert list(tensor.shape) == manifest[key]["shape"], key
        assert str(tensor.dtype).removeprefix("torch.") == manifest[key]["dtype"], key
    assert sum(t.numel() for t in state.values()) == 435_122


def test_strict_load_error_names_key_and_shapes(estimator):
    state = dict(estimator.state_dict())
    state["output.11.weight"] = torch.zeros(49, 128)
    with pytest.raises(
        ArtifactFormatError,
        match=r"output\.11\.weight: \(49, 128\) in the file, \(50, 128\) in the model",
    ):
        load_state_dict_strict(LengthEstimator(LengthEstimatorConfig()), state, source="finest.tar")


def test_output_size_from_config():
    model = LengthEstimator(LengthEstimatorConfig(input_size=16, output_size=7)).eval()
    assert model(torch.randn(3, 16)).shape == (3, 7)


def test_bfloat16_smoke(estimator, modules):
    """Weights cast once to bf16: finite, within a loose bound of the fp32 logits (bf16 keeps ~3
    significant digits)."""
    model = LengthEstimator(estimator.config).eval()
    model.load_state_dict(estimator.state_dict())
    model.to(torch.bfloat16)
    with torch.inference_mode():
        logits = model(torch.from_numpy(modules["clip_feat_fp16path"]).bfloat16())
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits).all()
    expected = modules["len_est_logits"]
    diff = float(np.abs(logits.float().numpy() - expected).max())
    assert diff <= 0.05 * float(np.abs(expected).max()), f"bf16 max abs diff {diff:.3g}"
