"""The dual-stream RVQ-VAE against the official code's outputs (fixtures/mogents_tiny)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_fixture

from hftrainer_mogents.config import VQConfig
from hftrainer_mogents.convert.official_opts import (
    parse_opt_txt,
    select_vq_state_dict,
    vq_config_from_opt,
)
from hftrainer_mogents.convert.safe_pickle import torch_load_weights_only
from hftrainer_mogents.errors import ArtifactFormatError, InvalidInputError
from hftrainer_mogents.modeling.quantizer import ResidualQuantizer, dequantize, residual_quantize
from hftrainer_mogents.modeling.rvq_vae import (
    RVQVAE,
    joint_grid_to_motion,
    joints_from_width,
    motion_to_joint_grid,
)
from hftrainer_mogents.utils.io import load_state_dict_strict

ATOL = 1e-5
VQ_RUN = Path("mogents_tiny/logs/humanml3d/pretrain_vq")
MANIFEST = "research/mogents_state_dict_manifest.json"  # beside the fixtures folder
TINY = VQConfig(
    width=16, depth=2, nb_code1d=8, code_dim1d=8, nb_code2d=8, code_dim2d=8, num_quantizers=3
)


def assert_close(actual: torch.Tensor, expected: np.ndarray, name: str, atol: float = ATOL) -> None:
    actual = actual.detach().float().numpy()
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    diff = float(np.abs(actual - expected).max())
    assert diff <= atol, f"{name}: max abs diff {diff:.3g} > {atol:g}"


@pytest.fixture(scope="module")
def vq_state_dict(fixtures_dir):
    ckpt = torch_load_weights_only(
        require_fixture(fixtures_dir / VQ_RUN / "model/net_best_fid.tar")
    )
    return select_vq_state_dict(ckpt, source="net_best_fid.tar")


@pytest.fixture(scope="module")
def vq_opt(fixtures_dir):
    return parse_opt_txt(require_fixture(fixtures_dir / VQ_RUN / "opt.txt"))


@pytest.fixture(scope="module")
def vq(vq_state_dict, vq_opt):
    model = RVQVAE(vq_config_from_opt(vq_opt, vq_state_dict))
    load_state_dict_strict(model, vq_state_dict, source="net_best_fid.tar")
    return model.eval()


@pytest.fixture(scope="module")
def modules(fixtures_dir):
    with np.load(require_fixture(fixtures_dir / "mogents_tiny/modules.npz")) as data:
        return {k: data[k] for k in data.files}


def test_vq_state_dict_key_fallback(vq_state_dict):
    assert select_vq_state_dict({"net": vq_state_dict, "ep": 3}) is vq_state_dict
    with pytest.raises(ArtifactFormatError, match=r"no VQ weights .* has \['ep', 'estimator'\]"):
        select_vq_state_dict({"estimator": {}, "ep": 1}, source="finest.tar")


def test_config_from_opt_matches_fixture(vq_opt, vq_state_dict):
    config = vq_config_from_opt(vq_opt, vq_state_dict)
    assert config == VQConfig(
        width=32, depth=2, nb_code1d=32, code_dim1d=16, nb_code2d=16, code_dim2d=24,
        num_quantizers=4, vq_norm=None,
    )  # fmt: skip
    assert vq_opt["vq_norm"] == "None" and config.vq_norm is None


@pytest.mark.parametrize(
    ("option", "value", "shown"),
    [
        ("width", 64, "encoder1d.model.0.weight has shape (32, 263, 3)"),
        ("nb_code2d", 256, "quantizer2d.layers.0.codebook has shape (16, 24)"),
        ("code_dim1d", 512, "quantizer1d.layers.0.codebook has shape (32, 16)"),
        ("num_quantizers", 6, "4 tensors quantizer1d.layers.{i}.codebook"),
        ("depth", 3, "2 blocks encoder1d.model.2.1.model.{k}.conv1.weight"),
        ("down_t", 3, "2 strided stages"),
        ("stride_t", 3, "encoder1d.model.2.0.weight has shape (32, 32, 4)"),
        ("dataset_name", "kit", "encoder1d.model.0.weight has shape (32, 263, 3)"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else None,
)
def test_config_from_opt_disagreement_names_option_value_and_shape(
    vq_opt, vq_state_dict, option, value, shown
):
    with pytest.raises(ArtifactFormatError) as err:
        vq_config_from_opt({**vq_opt, option: value}, vq_state_dict, source="pretrain_vq/opt.txt")
    message = str(err.value)
    assert f"option {option}: {value!r}" in message and shown in message
    assert "pretrain_vq/opt.txt" in message


def test_config_from_opt_rejects_bad_values_and_fills_missing_from_shapes(
    vq_opt, vq_state_dict, caplog
):
    with pytest.raises(ArtifactFormatError, match="vq_norm: 'GN'"):
        vq_config_from_opt({**vq_opt, "vq_norm": "GN"}, vq_state_dict)
    with pytest.raises(ArtifactFormatError, match="width: '32' should be a int"):
        vq_config_from_opt({**vq_opt, "width": "32"}, vq_state_dict)
    partial = {k: v for k, v in vq_opt.items() if k not in ("width", "nb_code1d", "mu")}
    with caplog.at_level(logging.WARNING):
        config = vq_config_from_opt(partial, vq_state_dict)
    assert (config.width, config.nb_code1d, config.mu) == (32, 32, 0.99)
    assert "['mu']" in caplog.text  # only the option no tensor determines is reported


@pytest.mark.parametrize("layers", ["full", "base"])
def test_forward_decoder_matches_official(vq, modules, layers):
    ids_aux = torch.from_numpy(modules["vq_dec_ids_aux"])
    ids_ts = torch.from_numpy(modules["vq_dec_ids_ts"])
    if layers == "base":
        ids_aux, ids_ts = ids_aux[..., :1], ids_ts[..., :1]
    with torch.inference_mode():
        y_aux, y = vq.forward_decoder(ids_aux, ids_ts)
    assert_close(y_aux, modules[f"vq_dec_{layers}_out_aux"], f"vq_dec_{layers}_out_aux")
    assert_close(y, modules[f"vq_dec_{layers}_out"], f"vq_dec_{layers}_out")


@pytest.mark.parametrize("name", ["generate_ts10", "generate_estlen_ts18"])
def test_forward_decoder_matches_generation_outputs(vq, fixtures_dir, name):
    with np.load(require_fixture(fixtures_dir / f"mogents_tiny/{name}.npz")) as data:
        ids_aux, ids_ts, expected = data["res_ids_aux"], data["res_ids_ts"], data["motion_norm"]
    with torch.inference_mode():
        _, y = vq.forward_decoder(torch.from_numpy(ids_aux), torch.from_numpy(ids_ts))
    assert_close(y, expected, f"{name}:motion_norm")


def test_joint_grid_matches_official(modules):
    grid = motion_to_joint_grid(torch.from_numpy(modules["vq_enc_in_motion"]))
    np.testing.assert_array_equal(grid.numpy(), modules["vq_enc_in_grid"])


def test_encode_matches_official_ids_exactly(vq, modules):
    motion = torch.from_numpy(modules["vq_enc_in_motion"])
    with torch.inference_mode():
        ids_aux, ids_ts = vq.encode(motion, motion_to_joint_grid(motion))
    assert ids_aux.dtype == ids_ts.dtype == torch.int64
    np.testing.assert_array_equal(ids_aux.numpy(), modules["vq_enc_ids_aux"])
    np.testing.assert_array_equal(ids_ts.numpy(), modules["vq_enc_ids_ts"])


def test_dequantize_against_layer_by_layer_sum():
    gen = torch.Generator().manual_seed(0)
    codebooks = [torch.randn(5, 3, generator=gen) for _ in range(4)]
    ids = torch.randint(-1, 5, (2, 7, 3), generator=gen)  # q = 3 < Q = 4: layer 3 missing
    ids[0, 0] = -1  # a step without any code
    expected = torch.zeros(2, 7, 3)
    for layer in range(3):
        codes = codebooks[layer][ids[..., layer].clamp(min=0)]
        expected += torch.where(ids[..., layer, None] >= 0, codes, 0.0)
    out = dequantize(ids, codebooks)
    torch.testing.assert_close(out, expected)
    assert torch.equal(out[0, 0], torch.zeros(3))
    with pytest.raises(InvalidInputError, match="5 quantizer layers"):
        dequantize(torch.zeros(1, 5, dtype=torch.long), codebooks)
    # an out-of-range code (e.g. a mask or pad id left in) must not read the next layer's table
    for bad in (5, -2):
        with pytest.raises(InvalidInputError, match=r"\[-1, 5\)"):
            dequantize(torch.tensor([[0, bad]]), codebooks)


def test_residual_quantize_against_brute_force():
    gen = torch.Generator().manual_seed(1)
    codebooks = [torch.randn(16, 4, generator=gen) / (i + 1) for i in range(3)]
    x = torch.randn(2, 5, 4, generator=gen)
    residual, expected = x.clone(), []
    for codebook in codebooks:
        index = ((residual[..., None, :] - codebook) ** 2).sum(-1).argmin(-1)  # (2, 5)
        residual = residual - codebook[index]
        expected.append(index)
    ids = residual_quantize(x, codebooks)
    assert torch.equal(ids, torch.stack(expected, -1))
    # quantising and dequantising leaves exactly the final residual
    torch.testing.assert_close(x - dequantize(ids, codebooks), residual)


def test_shared_codebook_lists_every_layer():
    quantizer = ResidualQuantizer(4, 2, 3, shared_codebook=True)
    assert list(quantizer.state_dict()) == [f"layers.{i}.codebook" for i in range(3)]
    assert quantizer.codebooks[0] is quantizer.codebooks[2]


def test_grid_scatter_places_every_feature():
    """Scatter layout from the spec table, computed here slice by slice."""
    joints = 22
    grid = torch.arange(joints * 12, dtype=torch.float32).view(1, joints, 12)
    motion = joint_grid_to_motion(grid)[0]
    g = grid[0]
    assert motion.shape == (263,)
    assert torch.equal(motion[0:4], g[0, 0:4])
    assert torch.equal(motion[259:263], g[0, 4:8])
    assert torch.equal(motion[4:67], g[1:, 0:3].reshape(-1))
    assert torch.equal(motion[67:193], g[1:, 3:9].reshape(-1))
    assert torch.equal(motion[193:259], g[:, 9:12].reshape(-1))
    # the grid carries every non-root feature: building it and scattering back loses only the root
    # and the foot contacts
    feats = torch.randn(3, 263)
    back = joint_grid_to_motion(motion_to_joint_grid(feats))
    assert torch.equal(back[:, 4:259], feats[:, 4:259])
    assert not back[:, :4].any() and not back[:, 259:].any()


def test_joints_from_width():
    assert joints_from_width(263) == 22 and joints_from_width(251) == 21
    with pytest.raises(InvalidInputError, match="feature width 262"):
        joints_from_width(262)


def test_kit_variant_shapes():
    config = TINY.replace(dataset_name="kit")
    torch.manual_seed(0)
    model = RVQVAE(config).eval()
    assert model.linear_out.weight.shape == (251, 502)
    motion = torch.randn(2, 16, 251)
    grid = motion_to_joint_grid(motion)
    assert grid.shape == (2, 16, 21, 12)
    with torch.inference_mode():
        ids_aux, ids_ts = model.encode(motion, grid)
        y_aux, y = model.forward_decoder(ids_aux, ids_ts)
    assert ids_aux.shape == (2, 4, 3) and ids_ts.shape == (2, 4, 6, 3)
    assert y_aux.shape == y.shape == (2, 16, 251)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vq_norm": "GN"}, "vq_norm 'GN' is not supported"),
        ({"vq_act": "tanh"}, "vq_act 'tanh' is not one of"),
        ({"down_t": 3}, "to 3 groups; the 2D stream needs 6"),
    ],
    ids=["norm", "activation", "down_t"],
)
def test_unsupported_configs_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        RVQVAE(TINY.replace(**change))


def test_decoder_rejects_mismatched_streams():
    model = RVQVAE(TINY).eval()
    with pytest.raises(InvalidInputError, match=r"ids_ts \(1, 3, 6, 1\)"):
        model.forward_decoder(
            torch.zeros(1, 4, 1, dtype=torch.long), torch.zeros(1, 3, 6, 1).long()
        )


def test_decoding_does_not_depend_on_the_batch(vq, modules):
    ids_aux = torch.from_numpy(modules["vq_dec_ids_aux"])
    ids_ts = torch.from_numpy(modules["vq_dec_ids_ts"])
    with torch.inference_mode():
        _, both = vq.forward_decoder(ids_aux, ids_ts)
        _, second = vq.forward_decoder(ids_aux[1:], ids_ts[1:])
    torch.testing.assert_close(second[0], both[1], atol=ATOL, rtol=0)


def test_released_layout_on_meta_device(fixtures_dir):
    """Default config = the released model: every key, shape and dtype of the manifest, in order."""
    manifest = json.loads(require_fixture(fixtures_dir.parent / MANIFEST).read_text())["vq_model"]
    with torch.device("meta"):
        model = RVQVAE(VQConfig())
    state = model.state_dict()
    assert list(state) == list(manifest)
    for key, tensor in state.items():
        spec = manifest[key]
        assert list(tensor.shape) == spec["shape"], key
        assert str(tensor.dtype).removeprefix("torch.") == spec["dtype"], key
    assert sum(t.numel() for t in state.values()) == 116_964_476


def test_strict_load_errors_name_key_and_shapes(vq_state_dict):
    state = dict(RVQVAE(TINY).state_dict())
    state["quantizer1d.layers.0.codebook"] = torch.zeros(32, 16)
    state["quantizer1d.layers.3.codebook"] = torch.zeros(8, 8)
    del state["linear_out.bias"]
    with pytest.raises(ArtifactFormatError) as err:
        load_state_dict_strict(RVQVAE(TINY), state, source="net_best_fid.tar")
    message = str(err.value)
    assert message.startswith("net_best_fid.tar: ")
    assert "quantizer1d.layers.0.codebook: (32, 16) in the file, (8, 8) in the model" in message
    assert "unexpected keys: quantizer1d.layers.3.codebook" in message
    assert "missing keys: linear_out.bias" in message
    # the fixture's weights into a model of the wrong size: many problems, a bounded message
    with pytest.raises(ArtifactFormatError, match=r"\(and \d+ more\)"):
        load_state_dict_strict(RVQVAE(TINY), vq_state_dict, source="net_best_fid.tar")


def test_bfloat16_smoke(vq, modules):
    """Weights cast once to bf16: finite and within a loose bound of fp32 (bf16 keeps ~3 digits;
    measured max diff ~0.03 on outputs of magnitude ~3.5)."""
    ids_aux = torch.from_numpy(modules["vq_dec_ids_aux"])
    ids_ts = torch.from_numpy(modules["vq_dec_ids_ts"])
    model = RVQVAE(vq.config).eval()
    model.load_state_dict(vq.state_dict())
    model.to(torch.bfloat16)
    with torch.inference_mode():
        y_aux, y = model.forward_decoder(ids_aux, ids_ts)
        motion = torch.from_numpy(modules["vq_enc_in_motion"]).bfloat16()
        ids = model.encode(motion, motion_to_joint_grid(motion))
    assert y.dtype == y_aux.dtype == torch.bfloat16
    assert torch.isfinite(y).all()
    expected = modules["vq_dec_full_out"]
    scale = float(np.abs(expected).max())
    assert_close(y, expected, "bf16 vq_dec_full_out", atol=0.05 * scale)
    assert ids[0].shape == (2, 4, 4) and ids[1].shape == (2, 4, 6, 4)
