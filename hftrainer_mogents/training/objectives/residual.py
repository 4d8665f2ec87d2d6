"""The objective of the 1D and 2D residual transformers: predict one randomly chosen quantizer
layer of every token from the sum of the embeddings of the layers below it.

Per transformer (aux, then ts), as the official ``ResidualTransformer{,2D}.forward``:

1. the frozen VQ's ids of all ``Q`` layers, ``pad_id`` at padded steps in every layer;
2. one layer ``q`` in ``1 .. Q-1`` per sample from :func:`q_schedule` (one uniform draw per
   sample; layers near 1 are the most likely);
3. the history ``sum_{k<q} E_k[ids_k]`` from the transformer's own input tables (not the VQ's
   codebooks), the target ``ids_q``;
4. the CLIP condition zeroed per sample with ``cond_drop_prob`` (one Bernoulli per sample, drawn
   only in training mode and when the probability is positive, as upstream does);
5. the network with sample ``b``'s layer token ``one_hot(q_b)`` and output table ``W_{q_b}``;
   the pad (and, in 2D, mask) rows stay in the softmax. The 2D spatial stage adds its output
   back in upstream's scrambled layout: in reference mode the batch-coupled one of the official
   training (a sample reads other samples' entries), in default mode the per-sample rule (as
   generation's default mode: a sample's loss does not depend on the rest of its batch, so
   several processes holding slices of a batch give one process's losses);
6. cross-entropy over every valid token (``ignore_index = pad_id``; no masking), top-1 accuracy
   on the same tokens (means over the global batch's valid tokens under a shard of several
   processes: :func:`~.common.shard_mean`).

Draws, in order: aux uniform (B,), aux Bernoulli (B,), ts uniform (B,), ts Bernoulli (B,)
(each Bernoulli only when drawn, see 4.). The networks' dropout draws after each Bernoulli,
from torch's global generator (the positional-encoding dropout in train mode; upstream's encoder
layers also drop out, which :mod:`~hftrainer_mogents.modeling.layers` does not model).
Reference parity holds with dropout at zero. ``mode="default"`` draws the same numbers in the
same order as ``"reference"`` (they are already one draw per sample); under a shard of several
processes, each of these draws is per sample (the global batch's numbers, this process's rows).

Upstream trains the two transformers with two AdamW optimisers over disjoint parameters, each
stepping on its own loss; the returned ``loss`` is their sum, whose backward gives each
transformer the same gradient as its own loss does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.modeling.residual_transformer import scrambled_spatial_index
from hftrainer_mogents.training.objectives.common import (
    batch_tensors,
    drop_condition,
    encode_tokens,
    shard_mean,
    text_features,
)
from hftrainer_mogents.training.objectives.draws import Draws

__all__ = ["residual_objective", "q_schedule", "residual_history", "per_sample_layer_logits"]


def q_schedule(
    batch: int, draws: Draws, low: int, high: int, *, device: str | torch.device | None = None
) -> torch.Tensor:
    """The quantizer layer each sample trains on: ``round((1 - cos(u * pi / 2)) * (high - low -
    1)) + low`` with ``u ~ U(0, 1)``, one ``uniform_`` draw per sample (MoMask's ``q_schedule``,
    which the official residual training calls with ``low = 1, high = Q``).

    With ``Q = 6`` the layers 1..5 come with probabilities about .322/.248/.185/.165/.080.

    Args:
        batch: B (this process's samples).
        draws: the random source (one per-sample ``uniform_`` of shape (B,)).
        low: the smallest layer (1: layer 0 is the mask transformer's).
        high: the number of quantizer layers ``Q``; layers run up to ``high - 1``.
        device: where the result goes (default: the draws' device).

    Returns:
        (B,) int64 layers in ``[low, high - 1]``.
    """
    if high - low < 1:
        raise InvalidInputError(
            f"q_schedule needs high > low (high = the number of quantizer layers), got "
            f"low={low}, high={high}"
        )
    source = draws.generator.device if draws.generator is not None else device
    noise = draws.uniform_(torch.zeros(batch, device=source), 0.0, 1.0, per_sample=True)
    schedule = 1 - torch.cos(noise * math.pi * 0.5)
    layers = torch.round(schedule * (high - low - 1)).long() + low
    return layers if device is None else layers.to(device)


def residual_history(net: nn.Module, ids: torch.Tensor, layers: torch.Tensor) -> torch.Tensor:
    """Sum of the input-table embeddings of the layers below each sample's layer.

    Args:
        net: a residual transformer (its ``embed_ids`` tables, layers ``0 .. Q-2``).
        ids: (B, N, Q) int64 ids of every layer (``pad_id`` at padded positions).
        layers: (B,) int64 layer per sample, ``1 .. Q-1``.

    Returns:
        (B, N, C) ``sum_{k < layers[b]} E_k[ids[b, :, k]]``.
    """
    q = ids.shape[-1]
    history = None
    for k in range(q - 1):
        # samples whose layer is <= k stop accumulating here
        term = net.embed_ids(ids[..., k], k) * (layers > k).to(ids.device)[:, None, None]
        history = term if history is None else history + term
    return history


def per_sample_layer_logits(
    net: nn.Module,
    history: torch.Tensor,
    layers: torch.Tensor,
    cond: torch.Tensor,
    padding: torch.Tensor,
    **kwargs: Any,
) -> torch.Tensor:
    """``net``'s logits with one quantizer layer per sample (the official training forward):
    the residual transformers take a (B,) layer tensor, which gives sample ``b`` the layer token
    ``one_hot(layers[b])`` and the output table (and bias rule) of ``layers[b]``.

    Args:
        net: a residual transformer.
        history: (B, N, C) summed embeddings (:func:`residual_history`).
        layers: (B,) int64 layers, ``1 .. Q-1``.
        cond: (B, E) CLIP features (already dropped).
        padding: (B, T) bool, True at padded steps.
        **kwargs: passed to ``net`` (``joints=`` for the 2D network).

    Returns:
        (B, N, V) logits, sample ``b`` through the output table of ``layers[b]``.
    """
    return net(history, layers, cond, padding, **kwargs)


def _stream_loss(
    net: nn.Module,
    ids: torch.Tensor,
    padding: torch.Tensor,
    cond: torch.Tensor,
    draws: Draws,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, accuracy) of one residual transformer; ``ids`` (B, N, Q) with pads."""
    b, _, q = ids.shape
    device = ids.device
    layers = q_schedule(b, draws, 1, q, device=device)
    cond = drop_condition(cond, float(net.config.cond_drop_prob), draws, training=net.training)
    dtype = next(net.parameters()).dtype
    history = residual_history(net, ids, layers)
    logits = per_sample_layer_logits(
        net, history, layers, cond.to(dtype), padding, **kwargs
    ).float()  # (B, N, V)
    target = ids.gather(2, layers.view(b, 1, 1).expand(b, ids.shape[1], 1)).squeeze(2)
    total = F.cross_entropy(
        logits.transpose(1, 2), target, ignore_index=net.pad_id, reduction="sum"
    )
    valid = target != net.pad_id
    correct = (logits.argmax(-1) == target) & valid
    # means over the global batch's valid tokens (several processes hold different counts)
    loss = shard_mean(total, valid.sum(), draws)
    accuracy = shard_mean(correct.sum().float(), valid.sum(), draws).detach()
    return loss, accuracy


def residual_objective(
    bundle: Any, batch: Mapping[str, Any], draws: Draws
) -> dict[str, torch.Tensor]:
    """``{"loss", "loss_aux", "loss_ts", "acc_aux", "acc_ts"}`` of the two residual transformers.

    ``loss = loss_aux + loss_ts`` (with a graph; the parameters are disjoint, so its gradient
    is each transformer's own); the other entries are detached. Draw order: see the module.

    Args:
        bundle: a :class:`~hftrainer_mogents.bundle.MoGenTSBundle` (the frozen VQ and CLIP, the
            residual transformers).
        batch: ``{"captions", "motions" (B, L, 263), "lengths" (B,)}``.
        draws: the random source.
    """
    aux, ts = bundle.res_transformer_aux, bundle.res_transformer_ts
    if aux is None or ts is None:
        raise InvalidInputError(
            "the 'res' stage needs both residual transformers (res_transformer_aux/ and "
            "res_transformer_ts/ in the artifact)"
        )
    motions, lengths, captions = batch_tensors(batch, bundle.device, captions=True)
    tokens = encode_tokens(bundle.vq_model, motions, lengths, pad_aux=aux.pad_id, pad_ts=ts.pad_id)
    cond = text_features(bundle, captions)
    b, n, j, q = tokens.ts.shape
    loss_aux, acc_aux = _stream_loss(aux, tokens.aux, tokens.padding, cond, draws)
    scramble = scrambled_spatial_index(tokens.token_lengths, n, j, batch_coupled=draws.reference)
    loss_ts, acc_ts = _stream_loss(
        ts,
        tokens.ts.reshape(b, n * j, q),
        tokens.padding,
        cond,
        draws,
        joints=j,
        scramble_index=scramble,
    )
    return {
        "loss": loss_aux + loss_ts,
        "loss_aux": loss_aux.detach(),
        "loss_ts": loss_ts.detach(),
        "acc_aux": acc_aux,
        "acc_ts": acc_ts,
    }
