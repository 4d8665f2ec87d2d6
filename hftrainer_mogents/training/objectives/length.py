"""The length estimator's objective: cross-entropy of the token count from the caption.

The upstream repository has no driver for it; its trainer (``LengthEstTrainer``, shared with
MoMask) classifies ``m_lens // 4`` from frozen CLIP text features, with Adam (lr 1e-4) and the
gradient norm clipped at 0.5 (the optimiser settings live in the stage preset).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from hftrainer_mogents.config import UNIT_LENGTH
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.training.objectives.common import batch_tensors, text_features
from hftrainer_mogents.training.objectives.draws import Draws

__all__ = ["length_objective"]


def length_objective(
    bundle: Any, batch: Mapping[str, Any], draws: Draws
) -> dict[str, torch.Tensor]:
    """``{"loss", "acc"}``: CE of ``length // 4`` over the estimator's classes, top-1 accuracy.

    Draws nothing (``draws`` is accepted for the common signature).
    """
    estimator = bundle.length_estimator
    if estimator is None:
        raise InvalidInputError(
            "this artifact has no length estimator: the 'length' stage needs one (an artifact "
            "with a length_estimator/ component)"
        )
    _, lengths, captions = batch_tensors(batch, bundle.device, captions=True)
    target = lengths // UNIT_LENGTH
    classes = estimator.config.output_size
    if int(target.max()) >= classes:
        raise InvalidInputError(
            f"a motion of {int(lengths.max())} frames is {int(target.max())} tokens; the length "
            f"estimator has {classes} classes (at most {UNIT_LENGTH * (classes - 1)} frames)"
        )
    feats = text_features(bundle, captions).to(next(estimator.parameters()).dtype)
    logits = estimator(feats).float()
    loss = F.cross_entropy(logits, target)
    acc = (logits.argmax(-1) == target).float().mean().detach()
    return {"loss": loss, "acc": acc}
