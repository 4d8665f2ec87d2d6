"""One batch from text features to motions, over a bundle: the two execution modes, the token
decoding (mask transformers for the base layer, then residual transformers for every quantizer
layer, in the 1D aux stream and the 2D spatial-temporal grid) and the VQ decoding.

The sampling loops themselves are :func:`~hftrainer_mogents.modeling.sampling.masked_decode` and
:func:`~hftrainer_mogents.modeling.sampling.residual_decode`; here they are wired to the bundle's
networks, with classifier-free guidance and (fast mode, CUDA) graph replay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hftrainer_mogents.config import (
    MAX_MOTION_LENGTH,
    MIN_MOTION_LENGTH,
    N_JOINT_GROUPS,
    UNIT_LENGTH,
)
from hftrainer_mogents.errors import NonFiniteOutputError
from hftrainer_mogents.generation_config import GenerationConfig
from hftrainer_mogents.modeling.residual_transformer import scrambled_spatial_index
from hftrainer_mogents.modeling.sampling import (
    Draws,
    lengths_to_padding_mask,
    masked_decode,
    residual_decode,
    sample_lengths,
)
from hftrainer_mogents.utils.precision import full_fp32

if TYPE_CHECKING:
    from hftrainer_mogents.bundle import MoGenTSBundle

__all__ = [
    "RES_TOPK_THRES",
    "check_finite",
    "decode_by_length",
    "decode_motion",
    "decode_tokens",
    "generate_fast",
    "generate_reference",
]

logger = logging.getLogger(__name__)

# upstream's residual generate() is always called with its default top-k threshold, whatever topkr
RES_TOPK_THRES = 0.9

# how a guided forward runs: ``run(key, fn, *tensors)`` (a CUDAGraphCache, or run_eagerly)
Runner = Callable[..., torch.Tensor]
# the (B, 512) text condition, called once per transformer (as upstream encodes the text)
TextFeature = Callable[[], torch.Tensor]


# ---------------------------------------------------------------------- the two modes


def generate_reference(
    bundle: MoGenTSBundle,
    texts: list[str],
    frames: list[int] | None,
    generator: torch.Generator,
    config: GenerationConfig,
    features: torch.Tensor | None = None,
) -> dict[str, Any]:
    """The official order: (lengths) -> mask aux -> mask ts -> res aux -> res ts -> decode,
    one generator, text encoded by each transformer as upstream does.

    Returns:
        :func:`split_samples` of the batch.
    """
    draws = Draws.reference(generator)

    def encode() -> torch.Tensor:
        # upstream encodes the text inside each transformer (identical results)
        return bundle.encode_text(texts) if features is None else features

    if frames is None:
        token_lens = estimate_lengths(bundle, encode(), draws, clamp=False)
    else:
        token_lens = torch.tensor([f // UNIT_LENGTH for f in frames], device=bundle.device)
    ids_aux, ids_ts = decode_tokens(
        bundle, token_lens, draws, config, encode, reference=True, graphs=run_eagerly
    )
    motion = bundle.denormalize(decode_motion(bundle, ids_aux, ids_ts)).cpu().numpy()
    return split_samples(motion, token_lens, ids_aux, ids_ts)


def generate_fast(
    bundle: MoGenTSBundle,
    texts: list[str],
    frames: list[int] | None,
    generators: list[torch.Generator],
    config: GenerationConfig,
    features: torch.Tensor | None = None,
    *,
    graphs: Runner,
) -> dict[str, Any]:
    """Fast mode: the text encoded once, batched guidance, one generator per sample and each
    sample computed as if alone (``graphs`` replays the guided forwards).

    Returns:
        :func:`split_samples` of the batch.
    """
    draws = Draws.per_sample(generators)
    # encode text once (each distinct text once)
    cond = encode_unique(bundle, texts) if features is None else features
    if frames is None:
        token_lens = estimate_lengths(bundle, cond, draws, clamp=True)
    else:
        token_lens = torch.tensor([f // UNIT_LENGTH for f in frames], device=bundle.device)
    ids_aux, ids_ts = decode_tokens(
        bundle, token_lens, draws, config, lambda: cond, reference=False, graphs=graphs
    )
    motion = bundle.denormalize(decode_by_length(bundle, token_lens, ids_aux, ids_ts))
    return split_samples(motion.cpu().numpy(), token_lens, ids_aux, ids_ts)


def run_eagerly(key: Any, fn: Any, *tensors: torch.Tensor) -> torch.Tensor:
    """The pass-through twin of :class:`CUDAGraphCache` (reference mode: eager, in order)."""
    return fn(*tensors)


def encode_unique(bundle: MoGenTSBundle, texts: list[str]) -> torch.Tensor:
    """CLIP features of ``texts``, each distinct text encoded once (evaluation repeats prompts)."""
    unique = list(dict.fromkeys(texts))
    features = bundle.encode_text(unique)
    if len(unique) == len(texts):
        return features
    index = {text: i for i, text in enumerate(unique)}
    return features[torch.tensor([index[t] for t in texts], device=features.device)]


def estimate_lengths(
    bundle: MoGenTSBundle, cond: torch.Tensor, draws: Draws, *, clamp: bool
) -> torch.Tensor:
    """Token lengths sampled from the length estimator (softmax, one draw per text).

    Upstream does not guard a sampled 0 (generation then fails): reference mode raises it to
    1 token; fast mode brings every length into [40, 196] frames like given lengths.
    """
    estimator = bundle.length_estimator
    logits = estimator(cond.to(next(estimator.parameters()).dtype)).float()
    token_lens = sample_lengths(torch.softmax(logits, dim=-1), draws)
    low, high = (MIN_MOTION_LENGTH, MAX_MOTION_LENGTH) if clamp else (UNIT_LENGTH, 10**9)
    fixed = token_lens.clamp(low // UNIT_LENGTH, high // UNIT_LENGTH)
    changed = (fixed != token_lens).nonzero().squeeze(1).tolist()
    for i in changed:
        logger.warning(
            "estimated length of text %d: %d tokens -> %d (%d frames)",
            i,
            int(token_lens[i]),
            int(fixed[i]),
            int(fixed[i]) * UNIT_LENGTH,
        )
    return fixed


# ---------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class _Batch:
    """What the two decoding stages of one batch share."""

    bundle: MoGenTSBundle
    token_lens: torch.Tensor  # (B,) int64, token steps per sample
    pad_steps: torch.Tensor  # (B, T) bool, True = padding
    draws: Draws
    config: GenerationConfig
    text_feature: TextFeature
    run: Runner
    reference: bool


def decode_tokens(
    bundle: MoGenTSBundle,
    token_lens: torch.Tensor,
    draws: Draws,
    config: GenerationConfig,
    text_feature: TextFeature,
    *,
    reference: bool,
    graphs: Runner,
    source: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Base tokens then residual layers of both streams; ``text_feature()`` gives the (B, 512)
    condition (called once per transformer, as upstream encodes the text).

    Args:
        reference: the official, batch-coupled computation (eager, whatever ``graphs``).
        graphs: how fast mode runs the guided forwards (a
            :class:`~hftrainer_mogents.utils.cuda_graphs.CUDAGraphCache`, or :func:`run_eagerly`).
        source: (editing) ``(ids_aux (B, T, Q), ids_ts (B, T, 6, Q), editable (B, T) bool)``;
            the steps that are not editable keep the source's ids in every layer of both streams.

    Returns:
        ``ids_aux (B, T, Q)`` and ``ids_ts (B, T, 6, Q)`` int64, -1 = no code.
    """
    bsz, t = token_lens.shape[0], int(token_lens.max())
    j, q = N_JOINT_GROUPS, bundle.config.vq.num_quantizers
    batch = _Batch(
        bundle=bundle,
        token_lens=token_lens,
        pad_steps=lengths_to_padding_mask(token_lens, t),  # (B, T)
        draws=draws,
        config=config,
        text_feature=text_feature,
        # every tensor a forward reads is an argument of ``run``, every other setting in its key
        run=run_eagerly if reference else graphs,
        reference=reference,
    )
    edit = _edit_constraints(source, j, q)
    base_aux, base_ts = _base_tokens(batch, edit)
    ids_aux, ids_ts = _residual_tokens(batch, base_aux, base_ts, edit)
    return ids_aux, ids_ts.view(bsz, t, j, q)


def _edit_constraints(
    source: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None, j: int, q: int
) -> dict[str, dict[str, Any]]:
    """The decoding loops' editing arguments per stream: ``init_ids``/``editable`` for the mask
    transformers (start from the source's base layer), ``keep_ids``/``keep`` for the residual
    ones (kept steps keep every layer). Empty dicts without a source."""
    if source is None:
        return {"mask_aux": {}, "mask_ts": {}, "res_aux": {}, "res_ts": {}}
    src_aux, src_ts, editable = source
    bsz, t = editable.shape
    editable_ts = editable[:, :, None].expand(bsz, t, j).reshape(bsz, t * j)
    src_ts_flat = src_ts.reshape(bsz, t * j, q)  # (B, T, 6, Q) -> (B, T * 6, Q)
    return {
        "mask_aux": {"init_ids": src_aux[..., 0], "editable": editable},
        "mask_ts": {"init_ids": src_ts_flat[..., 0], "editable": editable_ts},
        "res_aux": {"keep_ids": src_aux, "keep": ~editable},
        "res_ts": {"keep_ids": src_ts_flat, "keep": ~editable_ts},
    }


def _base_tokens(
    batch: _Batch, edit: dict[str, dict[str, Any]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The base quantizer layer of both streams from the mask transformers: ``(B, T)`` aux and
    ``(B, T * 6)`` spatial-temporal ids."""
    bundle, config, run, pad_steps = batch.bundle, batch.config, batch.run, batch.pad_steps
    bsz, t, j = pad_steps.shape[0], pad_steps.shape[1], N_JOINT_GROUPS
    batched, cs = not batch.reference, config.cond_scale
    mask_aux, mask_ts = bundle.mask_transformer_aux, bundle.mask_transformer_ts
    sampling = dict(
        timesteps=config.time_steps,
        draws=batch.draws,
        temperature=config.temperature,
        topk_filter_thres=config.topkr,
        gumbel_sample=config.gumbel_sample,
    )

    def mask_aux_fn(ids, cond, pad):
        return mask_aux.forward_with_cond_scale(ids, cond, pad, cs, batched=batched)

    def mask_ts_fn(ids, cond, pad):
        return mask_ts.forward_with_cond_scale(ids.view(bsz, t, j), cond, pad, cs, batched=batched)

    c = batch.text_feature()
    base_aux = masked_decode(
        lambda ids: run(("mask_aux", cs), mask_aux_fn, ids, c, pad_steps),
        batch.token_lens,
        n_j=1,
        mask_id=mask_aux.mask_id,
        pad_id=mask_aux.pad_id,
        **sampling,
        **edit["mask_aux"],
    )
    c = batch.text_feature()
    base_ts = masked_decode(
        lambda ids: run(("mask_ts", cs), mask_ts_fn, ids, c, pad_steps),
        batch.token_lens,
        n_j=j,
        mask_id=mask_ts.mask_id,
        pad_id=mask_ts.pad_id,
        **sampling,
        **edit["mask_ts"],
    )
    return base_aux, base_ts


def _residual_tokens(
    batch: _Batch, base_aux: torch.Tensor, base_ts: torch.Tensor, edit: dict[str, dict[str, Any]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every quantizer layer of both streams from the residual transformers, given the base
    layer: ``(B, T, Q)`` aux and ``(B, T * 6, Q)`` spatial-temporal ids."""
    bundle, config, run, pad_steps = batch.bundle, batch.config, batch.run, batch.pad_steps
    bsz, t, j = pad_steps.shape[0], pad_steps.shape[1], N_JOINT_GROUPS
    reference, rcs = batch.reference, config.res_cond_scale
    batched = not reference
    res_aux, res_ts = bundle.res_transformer_aux, bundle.res_transformer_ts
    residual = dict(
        draws=batch.draws,
        temperature=config.res_temperature,
        topk_filter_thres=RES_TOPK_THRES,
        num_quantizers=bundle.config.vq.num_quantizers,
    )

    def res_aux_fn(layer):
        def fn(hist, cond, pad):
            return res_aux.forward_with_cond_scale(hist, layer, cond, pad, rcs, batched=batched)

        return fn

    def res_ts_fn(layer):
        def fn(hist, cond, pad, index):
            return res_ts.forward_with_cond_scale(
                hist, layer, cond, pad, rcs, batched=batched, joints=j, scramble_index=index
            )

        return fn

    c = batch.text_feature()
    ids_aux = residual_decode(
        lambda hist, layer: run(("res_aux", layer, rcs), res_aux_fn(layer), hist, c, pad_steps),
        res_aux.embed_ids,
        base_aux,
        pad_steps,
        pad_id=res_aux.pad_id,
        mask_id=None,
        **residual,
        **edit["res_aux"],
    )
    c = batch.text_feature()
    pad_ts = pad_steps[:, :, None].expand(bsz, t, j).reshape(bsz, t * j)
    index = scrambled_spatial_index(batch.token_lens, t, j, batch_coupled=reference)
    ids_ts = residual_decode(
        lambda hist, layer: run(
            ("res_ts", layer, rcs), res_ts_fn(layer), hist, c, pad_steps, index
        ),
        res_ts.embed_ids,
        base_ts,
        pad_ts,
        pad_id=res_ts.pad_id,
        mask_id=res_ts.mask_id,
        clip_per_sample=not reference,
        **residual,
        **edit["res_ts"],
    )
    return ids_aux, ids_ts


# ---------------------------------------------------------------------- motions


def decode_by_length(
    bundle: MoGenTSBundle, token_lens: torch.Tensor, ids_aux: torch.Tensor, ids_ts: torch.Tensor
) -> torch.Tensor:
    """Normalised (B, 4T, 263) float32 motions, padded with zeros; each length group is
    decoded at its own length: the decoder's convolutions would otherwise see other samples'
    padding."""
    t_max = int(token_lens.max())
    motion = torch.zeros(
        len(token_lens),
        t_max * UNIT_LENGTH,
        bundle.config.vq.input_width,
        device=bundle.device,
    )
    for length in torch.unique(token_lens).tolist():
        rows = (token_lens == length).nonzero().squeeze(1)
        y = decode_motion(bundle, ids_aux[rows, :length], ids_ts[rows, :length])
        motion[rows, : length * UNIT_LENGTH] = y.float()
    return motion


def decode_motion(
    bundle: MoGenTSBundle, ids_aux: torch.Tensor, ids_ts: torch.Tensor
) -> torch.Tensor:
    """Token ids -> normalised (B, 4T, 263) motion in the decoder's dtype; float32 decoders
    run without TF32 on CUDA (:func:`~hftrainer_mogents.utils.precision.full_fp32`)."""
    with full_fp32():
        return bundle.vq_model.forward_decoder(ids_aux, ids_ts)[1]


def split_samples(
    motion: np.ndarray, token_lens: torch.Tensor, ids_aux: torch.Tensor, ids_ts: torch.Tensor
) -> dict[str, Any]:
    """Cut the padded batch into per-sample motions, lengths and token ids."""
    lens = [int(n) for n in token_lens.tolist()]
    ids_aux_np, ids_ts_np = ids_aux.cpu().numpy(), ids_ts.cpu().numpy()
    return {
        "motions": [
            np.ascontiguousarray(motion[i, : n * UNIT_LENGTH], dtype=np.float32)
            for i, n in enumerate(lens)
        ],
        "lengths": [n * UNIT_LENGTH for n in lens],
        "tokens": [
            {"ids_aux": ids_aux_np[i, :n], "ids_ts": ids_ts_np[i, :n]} for i, n in enumerate(lens)
        ],
    }


def check_finite(motions: list[np.ndarray], texts: list[str], start: int = 0) -> None:
    """Refuse a batch's motions if any holds NaN or infinite values.

    Args:
        motions: the batch's motions, in order.
        texts: their prompts.
        start: the index of the batch's first prompt in the call.

    Raises:
        NonFiniteOutputError: naming every such prompt (index and text).
    """
    bad = [i for i, m in enumerate(motions) if not np.isfinite(m).all()]
    if not bad:
        return
    shown = ", ".join(f"{start + i} ({texts[i]!r})" for i in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    raise NonFiniteOutputError(
        f"the model produced NaN or infinite values for prompt{'s' if len(bad) > 1 else ''} "
        f"{shown}{more}; nothing is "
        "returned for this call. The weights are broken or overflow in this dtype: check the "
        "artifact, or load it in float32 (dtype='float32', CLI --dtype float32)"
    )
