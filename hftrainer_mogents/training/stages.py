"""Stage presets: what each training stage trains, freezes and how the official code optimises it.

| stage | trains | optimiser (official) | schedule (official) |
|---|---|---|---|
| ``vq`` | ``vq_model`` | AdamW lr 2e-4, betas (0.9, 0.99), wd 0 | warm-up 2000 its, x0.1 at 150k / 250k |
| ``mask`` | ``mask_transformer_aux``, ``mask_transformer_ts`` | AdamW 2e-4, (0.9, 0.99), wd 1e-5 | warm-up 2000, x0.1 at 1M |
| ``res`` | ``res_transformer_aux``, ``res_transformer_ts`` | as ``mask`` | as ``mask`` |
| ``length`` | ``length_estimator`` | Adam 1e-4, grad norm clipped at 0.5 | constant |

Everything else is frozen (``requires_grad`` off, kept in eval mode by the bundle's ``train``),
so fine-tuning a transformer never moves the VQ's codes. The official warm-up sets the learning
rate to ``lr * (it + 1) / (warmup + 1)`` for the 1-based iteration ``it < warmup`` and leaves it at
``lr * warmup / (warmup + 1)`` afterwards (:func:`learning_rate_factor`); the VQ's step decay only
starts counting once the warm-up is over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hftrainer_mogents.errors import InvalidInputError

__all__ = ["StagePreset", "STAGE_PRESETS", "stage_preset", "apply_stage", "learning_rate_factor"]


@dataclass(frozen=True)
class StagePreset:
    """One stage's trained modules and official optimisation settings.

    Attributes:
        name: ``vq``, ``mask``, ``res`` or ``length``.
        trainable: bundle attributes the stage trains; every other network is frozen.
        optimizer: host-style optimizer dict (``type`` a ``torch.optim`` class name).
        warmup_iters: linear warm-up length (0: none).
        milestones: iterations where the learning rate is multiplied by ``gamma``.
        gamma: the step decay factor.
        decay_after_warmup: True when the step decay counts iterations only after the warm-up
            (the VQ's scheduler), False when it counts from the first iteration.
        grad_clip: max gradient norm, or None.
        batch_size: the official per-process batch.
        notes: where the numbers come from.
    """

    name: str
    trainable: tuple[str, ...]
    optimizer: dict[str, Any] = field(default_factory=dict)
    warmup_iters: int = 0
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    decay_after_warmup: bool = False
    grad_clip: float | None = None
    batch_size: int = 64
    notes: str = ""


_TRANSFORMER_OPT = {"type": "AdamW", "lr": 2e-4, "betas": (0.9, 0.99), "weight_decay": 1e-5}

STAGE_PRESETS: dict[str, StagePreset] = {
    "vq": StagePreset(
        name="vq",
        trainable=("vq_model",),
        optimizer={"type": "AdamW", "lr": 2e-4, "betas": (0.9, 0.99), "weight_decay": 0.0},
        warmup_iters=2000,
        milestones=(150_000, 250_000),
        decay_after_warmup=True,
        batch_size=256,
        notes="train_vq.py / vq_option.py: batch 256 on one GPU, 50 epochs",
    ),
    "mask": StagePreset(
        name="mask",
        trainable=("mask_transformer_aux", "mask_transformer_ts"),
        optimizer=dict(_TRANSFORMER_OPT),
        warmup_iters=2000,
        milestones=(1_000_000,),
        batch_size=64,
        notes="train_t2m_transformer: README 4 processes x 384, the run script's comment 2 x 64",
    ),
    "res": StagePreset(
        name="res",
        trainable=("res_transformer_aux", "res_transformer_ts"),
        optimizer=dict(_TRANSFORMER_OPT),
        warmup_iters=2000,
        milestones=(1_000_000,),
        batch_size=64,
        notes="train_res_transformer: README 2 processes x 64, --share_weight",
    ),
    "length": StagePreset(
        name="length",
        trainable=("length_estimator",),
        optimizer={"type": "Adam", "lr": 1e-4},
        grad_clip=0.5,
        batch_size=64,
        notes="LengthEstTrainer / TrainLenEstOptions (shared with MoMask): batch 64, 300 epochs",
    ),
}


def stage_preset(stage: str) -> StagePreset:
    """The preset of ``stage``, with a typed error naming the choices."""
    if stage not in STAGE_PRESETS:
        raise InvalidInputError(
            f"unknown training stage {stage!r}; choose one of {', '.join(STAGE_PRESETS)}"
        )
    return STAGE_PRESETS[stage]


def apply_stage(bundle: Any, stage: str) -> StagePreset:
    """Make ``bundle`` train ``stage``: its modules require grad, every other network is frozen
    (no grad, eval mode under ``bundle.train()``); all networks stay saved.

    Returns:
        The stage's preset.
    """
    preset = stage_preset(stage)
    missing = [name for name in preset.trainable if getattr(bundle, name, None) is None]
    if missing:
        raise InvalidInputError(
            f"the '{stage}' stage trains {', '.join(missing)}, which this artifact does not have"
        )
    # imported here: the presets are read by the CLI's option lists, which must not load torch
    from hftrainer_mogents.bundle import COMPONENT_ATTRIBUTES

    present = [COMPONENT_ATTRIBUTES[component] for component, _ in bundle.components()]
    frozen = [name for name in present if name not in preset.trainable]
    for name in present:
        getattr(bundle, name).requires_grad_(name in preset.trainable)
    bundle._set_module_roles(trainable=list(preset.trainable), frozen=frozen, save=present)
    bundle.train()
    return preset


def learning_rate_factor(iteration: int, preset: StagePreset) -> float:
    """The official learning-rate multiplier at the 1-based ``iteration``.

    Warm-up: ``(it + 1) / (warmup + 1)`` while ``it < warmup``; the last warm-up value,
    ``warmup / (warmup + 1)``, then stays (the official code never sets the full rate back).
    Then ``gamma`` per milestone passed by the step scheduler, which steps after each
    iteration from the first one (transformers) or from the end of the warm-up (the VQ).
    """
    if iteration < 1:
        raise InvalidInputError(f"iterations count from 1, got {iteration}")
    warmup = preset.warmup_iters
    if iteration < warmup:
        return (iteration + 1) / (warmup + 1)
    base = warmup / (warmup + 1) if warmup else 1.0
    steps = iteration - warmup if preset.decay_after_warmup else iteration - 1
    passed = sum(1 for milestone in preset.milestones if steps >= milestone)
    return base * preset.gamma**passed
