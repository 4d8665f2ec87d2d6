"""Config dataclasses and mogents_config.json (opt.txt parsing: tests/test_convert.py)."""

from __future__ import annotations

import logging

import pytest

from hftrainer_mogents.config import (
    FORMAT,
    MoGenTSConfig,
    TextEncoderConfig,
    VQConfig,
)
from hftrainer_mogents.errors import ArtifactFormatError

# the zoo's published config blocks (research/hftrainer_seed_system.md, section 1.2)
SEED_DOC = {
    "model_type": "mogents",
    "format": "hftrainer-mogents-v1",
    "clip_version": "ViT-B/32",
    "has_length_estimator": True,
    "components": {
        "clip": {"name": "ViT-B/32", "stored_in_artifact": True, "path": "clip.safetensors"}
    },
    "config": {
        "vq": {
            "dataset_name": "humanml3d",
            "code_dim1d": 512,
            "nb_code1d": 512,
            "code_dim2d": 1024,
            "nb_code2d": 256,
            "down_t": 2,
            "stride_t": 2,
            "width": 512,
            "depth": 3,
            "dilation_growth_rate": 3,
            "vq_act": "relu",
            "vq_norm": None,
            "num_quantizers": 6,
            "shared_codebook": False,
            "quantize_dropout_prob": 0.2,
            "mu": 0.99,
        },
        "mask": {
            "latent_dim": 384,
            "ff_size": 1024,
            "n_layers": 8,
            "n_heads": 6,
            "dropout": 0.2,
            "cond_drop_prob": 0.1,
            "clip_dim": 512,
            "attnj": True,
            "attnt": True,
        },
        "res": {
            "latent_dim": 384,
            "ff_size": 1024,
            "n_layers": 8,
            "n_heads": 6,
            "dropout": 0.2,
            "cond_drop_prob": 0.01,
            "clip_dim": 512,
            "attnj": True,
            "attnt": True,
            "share_weight": True,
        },
        "length": {"input_size": 512, "output_size": 50},
    },
}


def test_seed_document_parses_to_the_defaults(caplog):
    with caplog.at_level(logging.WARNING):
        config = MoGenTSConfig.from_json_dict(SEED_DOC)
    assert config == MoGenTSConfig()
    assert config.vq.input_width == 263 and config.vq.joints_num == 22
    assert "config.vq" not in caplog.text  # complete blocks: no warning


def test_json_round_trip():
    config = MoGenTSConfig(vq=VQConfig(width=32, nb_code1d=7), length=None)
    doc = config.to_json_dict()
    assert doc["format"] == FORMAT and doc["has_length_estimator"] is False
    assert MoGenTSConfig.from_json_dict(doc) == config


def test_tolerant_blocks_warn(caplog):
    doc = {**SEED_DOC, "config": {**SEED_DOC["config"], "vq": {"width": 64, "future_knob": 1}}}
    with caplog.at_level(logging.WARNING):
        config = MoGenTSConfig.from_json_dict(doc)
    assert config.vq.width == 64 and config.vq.depth == 3
    assert "future_knob" in caplog.text and "missing" in caplog.text


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [("format", "hftrainer-mogents-v9", "not supported"), ("model_type", "momask", "model_type")],
)
def test_wrong_format_is_refused(key, value, match):
    with pytest.raises(ArtifactFormatError, match=match):
        MoGenTSConfig.from_json_dict({**SEED_DOC, key: value})


def test_kit_widths():
    kit = VQConfig(dataset_name="kit")
    assert kit.input_width == 251 and kit.joint_pad == (1, 2)


def test_text_encoder_config_from_state_dict():
    import torch

    sd = {
        "ln_final.weight": torch.zeros(64),
        "text_projection": torch.zeros(64, 512),
        "positional_embedding": torch.zeros(77, 64),
        "token_embedding.weight": torch.zeros(49408, 64),
        "transformer.resblocks.0.ln_1.weight": torch.zeros(64),
        "transformer.resblocks.1.ln_1.weight": torch.zeros(64),
    }
    cfg = TextEncoderConfig.from_state_dict(sd, dtype="float32")
    assert (cfg.width, cfg.heads, cfg.layers, cfg.embed_dim, cfg.dtype) == (
        64,
        1,
        2,
        512,
        "float32",
    )
    with pytest.raises(ArtifactFormatError, match="ln_final.weight"):
        TextEncoderConfig.from_state_dict({})


def test_humanml3d_numbers_are_declared_once():
    """The representation and the body model use config's numbers, not copies of them."""
    from hftrainer_mogents import config
    from hftrainer_mogents.motion import hml263
    from hftrainer_mogents.motion.smpl135 import body_model

    assert (hml263.DIM_HML263, hml263.NUM_JOINTS, hml263.FPS) == (263, 22, 20)
    assert hml263.DIM_HML263 is config.DIM_POSE and hml263.FPS is config.FPS
    assert hml263.NUM_JOINTS is config.NUM_JOINTS is body_model.NUM_JOINTS
    assert hml263.FOOT_CONTACT.stop == config.DIM_POSE == VQConfig().input_width
    assert body_model.SMPL_PARENTS[: hml263.NUM_JOINTS] == hml263.PARENTS
    assert body_model.SMPL_PARENTS[hml263.NUM_JOINTS :] == [20, 21]  # the hands, on the wrists
