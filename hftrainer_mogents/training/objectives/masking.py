"""Token masking of the mask transformers' training (pure tensor functions).

Each training step hides a random share of a sequence's valid tokens and asks the transformer to
predict them. The share is ``cosine_schedule(r)`` for ``r ~ U(0, 1)``, one ``r`` per sample; the
count ``round(n * share)``, at least 1, is taken over the *padded* length ``n``, and the chosen
positions that fall on padding are dropped (so a short motion may have none hidden). A hidden
token's input is then, BERT-style, a random id with probability 0.1, else ``mask_id`` with
probability 0.88, else left as it is: 10 % random, 79.2 % ``[MASK]``, 10.8 % unchanged.

The 2D (ts) grid is masked at two levels with one ``r``: whole time steps first (a random step
gets a random id in each of its slots), then single tokens among the steps left.

Every random number comes from a :class:`~.draws.Draws`, in the official order and shapes
(``Tensor.uniform_`` of (B,), ``rand`` of (B, n) for the permutation, a scalar-``p``
``bernoulli`` over the whole mask, ``randint`` of the ids' shape), in both modes: with
``Draws.seeded(s)`` the masks equal the official ones after ``torch.manual_seed(s)``. Every
draw's leading dim is the batch's samples (``per_sample``): under a shard of several processes
(default mode) each process gets its rows of the global batch's draw.
Labels hold the true id at hidden positions and ``mask_id`` (the loss's ignore index) elsewhere.
"""

from __future__ import annotations

import math

import torch

from hftrainer_mogents.training.objectives.draws import Draws

__all__ = [
    "REPLACE_PROBABILITY",
    "MASK_PROBABILITY",
    "cosine_schedule",
    "masked_count",
    "mask_tokens_1d",
    "mask_tokens_2d",
]

#: Share of the hidden tokens given a random id.
REPLACE_PROBABILITY = 0.1
#: Share of the remaining hidden tokens given ``mask_id`` (the rest keep their id).
MASK_PROBABILITY = 0.88


def cosine_schedule(t: torch.Tensor) -> torch.Tensor:
    """The masking schedule ``cos(t * pi / 2)``: the share of tokens hidden at time ``t`` in
    [0, 1] (1 at ``t = 0``, 0 at ``t = 1``; mean ``2 / pi`` for uniform ``t``)."""
    return torch.cos(t * math.pi * 0.5)


def masked_count(length: int, share: torch.Tensor) -> torch.Tensor:
    """``round(length * share)``, at least 1 (float, the shape of ``share``)."""
    return (length * share).round().clamp(min=1)


def _draw_device(draws: Draws, device: torch.device) -> torch.device:
    # a generator draws on its own device (the official draws on the batch's one, from the
    # global generator when none is given)
    return draws.generator.device if draws.generator is not None else device


def _draw_share(batch: int, draws: Draws, device: torch.device) -> torch.Tensor:
    """One masking share per sample, ``cosine_schedule(U(0, 1))``, (B,) float32."""
    r = draws.uniform_(torch.zeros(batch, device=_draw_device(draws, device)), per_sample=True)
    return cosine_schedule(r).to(device)


def _choose(share: torch.Tensor, valid: torch.Tensor, draws: Draws) -> torch.Tensor:
    """The hidden positions: the first ``masked_count(n, share)`` of a random permutation of
    each row's ``n`` positions, padding excluded. ``valid`` (B, n) bool."""
    b, n = valid.shape
    ranks = draws.batch_randperm(b, n, device=_draw_device(draws, valid.device), per_sample=True)
    return (ranks.to(valid.device) < masked_count(n, share)[:, None]) & valid


def _subset(mask: torch.Tensor, probability: float, draws: Draws) -> torch.Tensor:
    """Each True of ``mask`` kept with ``probability``.

    The official draw is ``torch.bernoulli(mask, p=probability)``: the scalar-``p`` kernel, whose
    stream differs from a tensor of probabilities' (:meth:`~.draws.Draws.bernoulli_like`).
    """
    source = mask.to(_draw_device(draws, mask.device))
    drawn = draws.bernoulli_like(source, probability, per_sample=True)
    return drawn.to(mask.device) & mask


def _hide(
    inputs: torch.Tensor,
    hidden: torch.Tensor,
    *,
    mask_id: int,
    num_tokens: int,
    draws: Draws,
) -> torch.Tensor:
    """The BERT rule on ``hidden`` (the shape of ``inputs``, or of its leading dims, then
    broadcast over the last): random ids, then ``mask_id``, drawn over all positions."""
    replace = _subset(hidden, REPLACE_PROBABILITY, draws)
    random_ids = draws.randint(
        num_tokens, tuple(inputs.shape), device=_draw_device(draws, inputs.device), per_sample=True
    ).to(inputs.device)
    inputs = torch.where(_spread(replace, inputs), random_ids, inputs)
    masked = _subset(hidden & ~replace, MASK_PROBABILITY, draws)
    return inputs.masked_fill(_spread(masked, inputs), mask_id)


def _spread(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``mask`` with trailing unit dims up to ``like``'s rank (a hidden time step covers all
    its slots)."""
    return mask.reshape(*mask.shape, *([1] * (like.dim() - mask.dim())))


def mask_tokens_1d(
    ids: torch.Tensor,
    padding: torch.Tensor,
    *,
    mask_id: int,
    num_tokens: int,
    draws: Draws,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask a batch of 1D (aux) token sequences for training.

    Draws, in order: ``uniform_`` (B,), ``rand`` (B, n), ``bernoulli`` (B, n) at 0.1,
    ``randint`` (B, n), ``bernoulli`` (B, n) at 0.88.

    Args:
        ids: (B, n) int64 token ids (pad ids at padded steps).
        padding: (B, n) bool, True at padded steps (never hidden, left as they are).
        mask_id: the ``[MASK]`` id, also the labels' ignore value (``num_tokens``).
        num_tokens: codebook size ``K``; random ids are drawn from ``[0, K)``.
        draws: the random source.

    Returns:
        ``(inputs, labels)``, both (B, n) int64: the masked ids the transformer reads, and the
        true ids at the hidden positions, ``mask_id`` elsewhere.
    """
    b, _ = ids.shape
    hidden = _choose(_draw_share(b, draws, ids.device), ~padding, draws)
    labels = ids.masked_fill(~hidden, mask_id)
    inputs = _hide(ids, hidden, mask_id=mask_id, num_tokens=num_tokens, draws=draws)
    return inputs, labels


def mask_tokens_2d(
    ids: torch.Tensor,
    padding: torch.Tensor,
    *,
    mask_id: int,
    num_tokens: int,
    draws: Draws,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask a batch of 2D (ts) token grids for training: whole time steps, then single tokens
    of the steps left, both levels with the same per-sample share.

    Draws, in order: ``uniform_`` (B,); temporal level ``rand`` (B, T), ``bernoulli`` (B, T) at
    0.1, ``randint`` (B, T, J), ``bernoulli`` (B, T) at 0.88; spatial level ``rand`` (B, T*J),
    ``bernoulli`` (B, T*J) at 0.1, ``randint`` (B, T*J), ``bernoulli`` (B, T*J) at 0.88.

    Args:
        ids: (B, T, J) int64 token ids (pad ids at padded steps).
        padding: (B, T) bool, True at padded steps.
        mask_id, num_tokens, draws: as :func:`mask_tokens_1d`.

    Returns:
        ``(inputs, labels)``, both (B, T, J) int64 (token ``(t, j)`` is the transformer's
        position ``t * J + j``).
    """
    b, t, j = ids.shape
    share = _draw_share(b, draws, ids.device)
    valid = ~padding

    steps = _choose(share, valid, draws)  # (B, T)
    inputs = _hide(ids, steps, mask_id=mask_id, num_tokens=num_tokens, draws=draws)

    # single tokens, chosen over all T * J positions, outside the hidden steps
    free = (valid & ~steps)[:, :, None].expand(b, t, j).reshape(b, t * j)
    tokens = _choose(share, free, draws).view(b, t, j)  # (B, T, J)
    hidden = tokens | steps[:, :, None]
    labels = ids.masked_fill(~hidden, mask_id)
    flat = _hide(
        inputs.reshape(b, t * j),
        tokens.reshape(b, t * j),
        mask_id=mask_id,
        num_tokens=num_tokens,
        draws=draws,
    )
    return flat.view(b, t, j), labels
