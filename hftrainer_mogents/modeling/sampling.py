"""Token sampling for MoGenTS: schedules, top-k filtering, categorical and Gumbel-max draws, and
the two decoding loops (masked iterative decoding of the base layer, residual decoding of the
other quantizer layers) as functions of tensors and random generators.

Two ways to draw random numbers:

- ``Draws.reference(generator)``: one generator consumed in exactly the official order and with
  the official tensor ops (``Categorical(p).sample()`` = ``torch.multinomial`` over all rows;
  ``zeros_like(logits).uniform_()`` for Gumbel noise), so ``torch.Generator().manual_seed(S)``
  draws what the official code draws after ``torch.manual_seed(S)``. Upstream's logits are
  permuted views of ``(B, V, N)`` tensors: the categorical draws run over the re-normalised
  ``(B * N, V)`` rows, but the Gumbel noise tensor inherits the permuted strides, so its uniforms
  are filled in ``(B, V, N)`` memory order; both are reproduced.
- ``Draws.per_sample(generators)``: one generator per sample, each drawing only for its own valid
  positions, so a sample's tokens do not depend on what else is in the batch.

Shapes: ``B`` batch, ``T`` token steps, ``n_j`` tokens per step (1 aux, 6 ts), ``N = T * n_j``
positions, ``V`` vocabulary of a head.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "cosine_schedule",
    "top_k_count",
    "top_k_filter",
    "lengths_to_padding_mask",
    "Draws",
    "masked_decode",
    "residual_decode",
    "sample_lengths",
]


def cosine_schedule(t: torch.Tensor) -> torch.Tensor:
    """Fraction of tokens to (re-)mask at progress ``t`` in [0, 1]: ``cos(t * pi / 2)``."""
    return torch.cos(t * math.pi * 0.5)


def top_k_count(vocab: int, thres: float) -> int:
    """Number of logits kept: ``ceil((1 - thres) * vocab)`` in float64, as upstream (so
    ``thres=0.9, vocab=30`` keeps 3: ``1 - 0.9`` is 0.09999999999999998)."""
    return max(1, math.ceil((1 - thres) * vocab))


def top_k_filter(logits: torch.Tensor, thres: float) -> torch.Tensor:
    """Keep the ``top_k_count`` largest logits along the last axis, set the rest to ``-inf``.

    Args:
        logits: (..., V).

    Returns:
        (..., V), same dtype.
    """
    k = top_k_count(logits.shape[-1], thres)
    values, index = logits.topk(k, dim=-1)
    return torch.full_like(logits, float("-inf")).scatter_(-1, index, values)


def lengths_to_padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, max_len) bool, True at padded positions."""
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]


def _gumbel(uniform: torch.Tensor) -> torch.Tensor:
    """Gumbel noise from U(0, 1) draws, with upstream's clamping of both logs at 1e-20."""
    return -torch.log((-torch.log(uniform.clamp(min=1e-20))).clamp(min=1e-20))


@dataclass
class Draws:
    """Source of randomness for the decoding loops (see the module docstring).

    Attributes:
        generator: the single generator of reference draws, or None.
        generators: one generator per sample for per-sample draws, or None.
    """

    generator: torch.Generator | None = None
    generators: Sequence[torch.Generator] | None = None

    @classmethod
    def reference(cls, generator: torch.Generator | None) -> Draws:
        """Official-order draws from one generator (None = torch's default generator)."""
        return cls(generator=generator)

    @classmethod
    def per_sample(cls, generators: Sequence[torch.Generator]) -> Draws:
        """Independent draws from one generator per sample."""
        return cls(generators=list(generators))

    @property
    def is_reference(self) -> bool:
        return self.generators is None

    def valid_counts(self, valid: torch.Tensor) -> list[int] | None:
        """Valid positions per sample of a (B, N) bool mask, read once per decoding loop (one
        host sync instead of one per draw); None for reference draws, which do not need them."""
        return None if self.is_reference else valid.sum(1).tolist()

    def _uniform_rows(self, shape: tuple[int, ...], counts: Sequence[int], device: torch.device):
        """(B, N, *rest) float32 U(0,1); sample b draws only its first ``counts[b]`` positions
        (padding always trails), in order."""
        out = torch.zeros(shape, device=device)
        for b, (gen, n) in enumerate(zip(self.generators, counts)):
            if n:
                out[b, :n] = torch.rand((n, *shape[2:]), generator=gen, device=gen.device)
        return out

    def categorical(self, probs: torch.Tensor, counts: Sequence[int] | None) -> torch.Tensor:
        """One id per position from ``probs`` (B, N, V) (rows need not be normalised).

        Reference draws use ``torch.multinomial`` on the re-normalised rows, over every
        position (as ``Categorical(probs).sample()`` does); per-sample draws invert the CDF with
        one uniform per valid position. ``counts``: :meth:`valid_counts` of the (B, N) mask.

        Returns:
            (B, N) int64.
        """
        b, n, v = probs.shape
        if self.is_reference:
            p = probs / probs.sum(-1, keepdim=True)
            return torch.multinomial(p.reshape(-1, v), 1, True, generator=self.generator).view(b, n)
        cdf = probs.float().cumsum(-1)  # (B, N, V)
        u = self._uniform_rows((b, n), counts, probs.device) * cdf[..., -1]
        ids = torch.searchsorted(cdf, u.unsqueeze(-1), right=True).squeeze(-1)
        return ids.clamp_(max=v - 1)

    def gumbel_argmax(
        self, logits: torch.Tensor, temperature: float, counts: Sequence[int] | None
    ) -> torch.Tensor:
        """``argmax(logits / max(temperature, 1e-10) + gumbel)`` over the last axis.

        Args:
            logits: (B, N, V) (``-inf`` where filtered).
            counts: :meth:`valid_counts` of the (B, N) mask; per-sample draws cover only the
                valid positions.

        Returns:
            (B, N) int64.
        """
        if self.is_reference:
            # upstream's logits are a permuted view of a (B, V, N) tensor and zeros_like keeps
            # those strides, so uniform_ fills the noise in (B, V, N) memory order
            b, n, v = logits.shape
            uniform = torch.zeros(b, v, n, device=logits.device).uniform_(
                0, 1, generator=self.generator
            )
            uniform = uniform.transpose(1, 2)
        else:
            uniform = self._uniform_rows(tuple(logits.shape), counts, logits.device)
        return (logits / max(temperature, 1e-10) + _gumbel(uniform).to(logits.dtype)).argmax(-1)


LogitsFn = Callable[[torch.Tensor], torch.Tensor]


def masked_decode(
    logits_fn: LogitsFn,
    token_lens: torch.Tensor,
    *,
    n_j: int,
    mask_id: int,
    pad_id: int,
    timesteps: int,
    draws: Draws,
    temperature: float = 1.0,
    topk_filter_thres: float = 0.9,
    gumbel_sample: bool = False,
    init_ids: torch.Tensor | None = None,
    editable: torch.Tensor | None = None,
) -> torch.Tensor:
    """Masked iterative decoding of the base-layer ids (upstream ``MaskTransformer*.generate``).

    Start with every valid token masked; at step ``s`` of ``timesteps`` re-mask the
    ``max(1, round(cos(pi/2 * s/(S-1)) * len * n_j))`` tokens with the lowest confidence, predict
    them, and keep the softmax probability of each new id (unfiltered logits) as its confidence.

    Args:
        logits_fn: (B, N) ids -> (B, N, V) guided logits (the transformer with CFG applied).
        token_lens: (B,) int64 valid steps per sample (>= 1).
        n_j: tokens per step (1 aux, 6 ts).
        mask_id, pad_id: special ids of the transformer.
        timesteps: decoding steps (>= 1).
        draws: random draws (reference order or per sample).
        temperature: divides logits for Gumbel sampling; with categorical sampling upstream
            divides the probabilities and re-normalises, so it has no effect (reproduced).
        topk_filter_thres: top-k threshold (0.9 keeps the top 10 %).
        gumbel_sample: Gumbel-max instead of categorical sampling.
        init_ids: (B, N) ids to start from (editing); only read where ``editable`` is False.
        editable: (B, N) bool, True where a token may be (re-)generated; the others keep
            ``init_ids`` through every step (never re-masked), and the schedule counts only the
            editable tokens. Both None (default): every valid token is generated (the loop above,
            unchanged bit for bit).

    Returns:
        (B, N) int64 ids, -1 at padded positions.
    """
    device = token_lens.device
    b = token_lens.shape[0]
    t = int(token_lens.max())
    pad_steps = lengths_to_padding_mask(token_lens, t)  # (B, T)
    padding = pad_steps[:, :, None].expand(b, t, n_j).reshape(b, t * n_j)  # (B, N)
    counts = draws.valid_counts(~padding)
    if (init_ids is None) != (editable is None):
        raise ValueError("init_ids and editable go together: give both or neither")
    if editable is None:
        ids = torch.where(padding, pad_id, mask_id)
        scores = torch.where(padding, 1e5, 0.0)  # float32
        n_free = None
    else:
        editable = editable & ~padding
        ids = torch.where(padding, pad_id, torch.where(editable, mask_id, init_ids))
        scores = torch.where(editable, 0.0, 1e5)  # kept tokens rank last: never re-masked
        n_free = editable.sum(1)  # (B,)
    for timestep in torch.linspace(0, 1, timesteps, device=device):
        ratio = cosine_schedule(timestep)
        if n_free is None:
            num_masked = torch.round(ratio * token_lens * n_j).clamp(min=1)  # (B,)
        else:
            num_masked = torch.round(ratio * n_free).clamp(min=1)
        ranks = scores.argsort(dim=1).argsort(dim=1)
        is_mask = ranks < num_masked.unsqueeze(-1)
        if editable is not None:  # clamp(min=1) must not reach a kept token
            is_mask &= editable
        ids = torch.where(is_mask, mask_id, ids)

        logits = logits_fn(ids).float()  # (B, N, V)
        filtered = top_k_filter(logits, topk_filter_thres)
        if gumbel_sample:
            pred = draws.gumbel_argmax(filtered, temperature, counts)
        else:
            pred = draws.categorical(F.softmax(filtered, dim=-1) / temperature, counts)
        ids = torch.where(is_mask, pred, ids)

        scores = logits.softmax(dim=-1).gather(2, pred.unsqueeze(-1)).squeeze(-1)
        scores = scores.masked_fill(~is_mask, 1e5)
    return torch.where(padding, -1, ids)


def residual_decode(
    logits_fn: Callable[[torch.Tensor, int], torch.Tensor],
    embed_fn: Callable[[torch.Tensor, int], torch.Tensor],
    base_ids: torch.Tensor,
    padding: torch.Tensor,
    *,
    num_quantizers: int,
    pad_id: int,
    mask_id: int | None,
    draws: Draws,
    temperature: float = 1.0,
    topk_filter_thres: float = 0.9,
    clip_per_sample: bool = False,
    keep_ids: torch.Tensor | None = None,
    keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """Residual decoding of quantizer layers 1 .. Q-1 (upstream ``ResidualTransformer*.generate``).

    Layer ``q``'s ids are drawn (Gumbel-max after top-k) from the logits given the running sum of
    the embeddings of layers ``< q``; padded positions hold ``pad_id``.

    Args:
        logits_fn: ((B, N, C) history, layer) -> (B, N, V) guided logits.
        embed_fn: ((B, N) ids, layer) -> (B, N, C) embeddings with that layer's table.
        base_ids: (B, N) int64 base-layer ids, -1 at padding.
        padding: (B, N) bool, True at padded positions.
        num_quantizers: Q.
        pad_id: the residual model's padding id.
        mask_id: the ts model's mask id, or None (aux).
        draws: random draws.
        clip_per_sample: where upstream clips the *whole batch* to ``[0, mask_id)`` when any id
            equals ``mask_id`` (turning -1 padding into code 0), apply the rule to each sample
            alone instead.
        keep_ids: (B, N, Q) ids to keep (editing), read where ``keep`` is True.
        keep: (B, N) bool: these positions hold ``keep_ids`` in every layer (the base layer
            included); the history the later layers see is built from the kept ids. Draws are
            made for every valid position as without editing, so the other positions' draws do
            not depend on which are kept.

    Returns:
        (B, N, Q) int64 ids, -1 where the id is the padding id (no code).
    """
    if (keep_ids is None) != (keep is None):
        raise ValueError("keep_ids and keep go together: give both or neither")
    if keep is not None:
        keep = keep & ~padding
        base_ids = torch.where(keep, keep_ids[..., 0], base_ids)
    counts = draws.valid_counts(~padding)
    ids = torch.where(padding, pad_id, base_ids)
    layers = [ids]
    history: torch.Tensor | None = None
    for layer in range(1, num_quantizers):
        emb = embed_fn(ids, layer - 1)
        history = emb if history is None else history + emb
        logits = logits_fn(history, layer).float()
        pred = draws.gumbel_argmax(top_k_filter(logits, topk_filter_thres), temperature, counts)
        if keep is not None:
            pred = torch.where(keep, keep_ids[..., layer], pred)
        ids = torch.where(padding, pad_id, pred)
        layers.append(ids)
    out = torch.stack(layers, dim=-1)  # (B, N, Q)
    out = torch.where(out == pad_id, -1, out)
    if mask_id is not None:
        if clip_per_sample:
            hit = (out == mask_id).flatten(1).any(1)[:, None, None]  # (B, 1, 1)
            out = torch.where(hit, out.clamp(0, mask_id - 1), out)
        elif bool((out == mask_id).any()):
            out = out.clamp(0, mask_id - 1)
    return out


def sample_lengths(probs: torch.Tensor, draws: Draws) -> torch.Tensor:
    """One class per row of ``probs`` (B, C) (the length estimator's softmax): reference draws
    use ``Categorical(probs).sample()``'s multinomial, per-sample draws invert the CDF.

    Returns:
        (B,) int64.
    """
    valid = torch.ones(probs.shape[0], 1, dtype=torch.bool, device=probs.device)
    return draws.categorical(probs[:, None, :], draws.valid_counts(valid))[:, 0]
