"""The objective of the 1D (aux) and 2D (ts) mask transformers: cross-entropy of the hidden
base-layer tokens (the official ``MaskTransformer{,2D}.forward`` and its trainer).

A step tokenises the batch with the frozen VQ (eval mode, base layer ``[..., 0]``), reads the
captions with the frozen CLIP, masks the tokens (:mod:`.masking`), drops the condition of a
sample with the transformer's ``cond_drop_prob`` (training mode only, and, as upstream, no draw
at all when it is 0), and scores the hidden tokens. The aux transformer runs entirely before
the ts one, as the official trainer does, so reference mode reproduces its draw order:

1. aux: masking draws, then the condition-drop Bernoulli;
2. ts: masking draws (both levels), then the condition-drop Bernoulli.

Default mode draws the same way (from ``draws.generator`` when one is given); every draw is per
sample, so under a shard of several processes each is the global batch's (this process's
rows), and the cross-entropy is a mean over the global batch's hidden tokens: N processes give
one process's losses. Dropout inside the networks draws from torch's global generator
(reference parity holds with it set to 0).

The two transformers share no parameter, so the returned ``loss = loss_aux + loss_ts`` gives
each one exactly the gradient of its own loss (upstream steps two identical AdamW optimisers on
the two losses separately).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.training.objectives.common import (
    batch_tensors,
    drop_condition,
    encode_tokens,
    shard_mean,
    text_features,
)
from hftrainer_mogents.training.objectives.draws import Draws
from hftrainer_mogents.training.objectives.masking import mask_tokens_1d, mask_tokens_2d

__all__ = ["mask_objective", "masked_cross_entropy"]


def masked_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int, draws: Draws | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy and top-1 accuracy over the positions whose label is not ``ignore_index``,
    averaged over all of them in the batch (no label smoothing), as upstream's
    ``cal_performance``.

    A batch with no such position (every hidden token fell on padding) gives 0 for both, where
    upstream's mean of nothing is NaN; the loss then carries a zero gradient.

    Args:
        logits: (..., K) float logits.
        labels: (...) int64 targets in ``[0, K)`` or ``ignore_index``.
        ignore_index: the label of the positions left out.
        draws: the step's draws; under a shard of several processes the means are over the
            global batch's positions (:func:`~.common.shard_mean`).

    Returns:
        ``(loss, accuracy)``: scalar float32 loss with its graph, detached float32 accuracy.
    """
    flat = logits.reshape(-1, logits.shape[-1]).float()
    target = labels.reshape(-1)
    scored = target != ignore_index
    total = F.cross_entropy(flat, target, ignore_index=ignore_index, reduction="sum")
    correct = (flat.detach().argmax(-1) == target) & scored
    if draws is None:
        count = scored.sum().clamp(min=1)
        return total / count, correct.sum().float() / count
    return shard_mean(total, scored.sum(), draws), shard_mean(
        correct.sum().float(), scored.sum(), draws
    )


def _condition(net: nn.Module, cond: torch.Tensor, draws: Draws) -> torch.Tensor:
    return drop_condition(cond, float(net.config.cond_drop_prob), draws, training=net.training)


def mask_objective(bundle: Any, batch: Mapping[str, Any], draws: Draws) -> dict[str, torch.Tensor]:
    """The mask transformers' loss on a batch.

    Args:
        bundle: a :class:`~hftrainer_mogents.bundle.MoGenTSBundle` (its VQ and CLIP frozen).
        batch: ``{"captions", "motions" (B, L, 263) normalised, "lengths" (B,)}`` (the collate of
            :class:`~hftrainer_mogents.training.data.Text2MotionDataset`).
        draws: the random source (see the module docstring for the order).

    Returns:
        ``{"loss", "loss_aux", "loss_ts", "acc_aux", "acc_ts"}``: ``loss = loss_aux + loss_ts``
        with its graph; the parts detached.
    """
    aux, ts = bundle.mask_transformer_aux, bundle.mask_transformer_ts
    if aux is None or ts is None:
        raise InvalidInputError(
            "the 'mask' stage trains the 1D and 2D mask transformers; this bundle lacks "
            f"{'mask_transformer_aux' if aux is None else 'mask_transformer_ts'}"
        )
    motions, lengths, captions = batch_tensors(batch, bundle.device, captions=True)
    tokens = encode_tokens(bundle.vq_model, motions, lengths, pad_aux=aux.pad_id, pad_ts=ts.pad_id)
    cond = text_features(bundle, captions)

    inputs, labels = mask_tokens_1d(
        tokens.aux[..., 0],
        tokens.padding,
        mask_id=aux.mask_id,
        num_tokens=aux.num_tokens,
        draws=draws,
    )
    logits = aux(inputs, _condition(aux, cond, draws), tokens.padding)  # (B, T, K)
    loss_aux, acc_aux = masked_cross_entropy(logits, labels, aux.mask_id, draws)

    inputs, labels = mask_tokens_2d(
        tokens.ts[..., 0],
        tokens.padding,
        mask_id=ts.mask_id,
        num_tokens=ts.num_tokens,
        draws=draws,
    )
    logits = ts(inputs, _condition(ts, cond, draws), tokens.padding)  # (B, T*J, K)
    loss_ts, acc_ts = masked_cross_entropy(logits, labels, ts.mask_id, draws)

    return {
        "loss": loss_aux + loss_ts,
        "loss_aux": loss_aux.detach(),
        "loss_ts": loss_ts.detach(),
        "acc_aux": acc_aux,
        "acc_ts": acc_ts,
    }
