"""Stage presets: what each stage trains and freezes, and the official learning-rate schedule."""

from __future__ import annotations

import copy

import pytest
import torch

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.training.stages import (
    STAGE_PRESETS,
    apply_stage,
    learning_rate_factor,
    stage_preset,
)


@pytest.mark.parametrize("stage", list(STAGE_PRESETS))
def test_apply_stage_trains_its_modules_only(tiny_pipeline, stage):
    bundle = copy.deepcopy(tiny_pipeline.bundle)
    preset = apply_stage(bundle, stage)
    trained = {name.split(".")[0] for name, _ in bundle.trainable_named_parameters()}
    assert trained == set(preset.trainable)
    for name in ("vq_model", "mask_transformer_ts", "res_transformer_aux", "text_encoder"):
        module = getattr(bundle, name)
        assert module.training == (name in preset.trainable)
        assert all(p.requires_grad == (name in preset.trainable) for p in module.parameters())
    assert "text_encoder" in bundle._save_ckpt_modules and "vq_model" in bundle._save_ckpt_modules


def test_unknown_stage_and_missing_module(tiny_pipeline):
    with pytest.raises(InvalidInputError, match="vq, mask, res, length"):
        stage_preset("lora")
    bundle = copy.deepcopy(tiny_pipeline.bundle)
    bundle.length_estimator = None
    with pytest.raises(InvalidInputError, match="length_estimator"):
        apply_stage(bundle, "length")


def _official_lrs(iterations, *, vq):
    """The official loop, spelled out: warm-up set by hand, then MultiStepLR stepping after
    each iteration (the VQ's only once the warm-up is over)."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=1.0)
    milestones = [5, 8] if vq else [6]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, 0.1)
    lrs = []
    for it in range(1, iterations + 1):
        if it < 4:
            for group in opt.param_groups:
                group["lr"] = 1.0 * (it + 1) / 5
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if not vq or it >= 4:
            sched.step()
    return lrs


@pytest.mark.parametrize("vq", [True, False])
def test_learning_rate_factor_follows_the_official_loop(vq):
    base = STAGE_PRESETS["vq" if vq else "mask"]
    preset = type(base)(
        name=base.name,
        trainable=base.trainable,
        warmup_iters=4,
        milestones=(5, 8) if vq else (6,),
        decay_after_warmup=vq,
    )
    ours = [learning_rate_factor(it, preset) for it in range(1, 16)]
    assert ours == pytest.approx(_official_lrs(15, vq=vq), rel=1e-12)
    with pytest.raises(InvalidInputError, match="from 1"):
        learning_rate_factor(0, preset)
