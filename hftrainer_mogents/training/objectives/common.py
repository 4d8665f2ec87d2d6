"""Pieces every transformer objective shares: the frozen VQ's tokens, CLIP features, the
condition drop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import nn

from hftrainer_mogents.config import UNIT_LENGTH
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.modeling.rvq_vae import RVQVAE, motion_to_joint_grid
from hftrainer_mogents.training.objectives.draws import Draws

__all__ = [
    "Objective",
    "StageObjective",
    "Tokens",
    "eval_mode",
    "encode_tokens",
    "text_features",
    "drop_condition",
    "shard_mean",
    "batch_tensors",
]


class Objective(Protocol):
    """A training objective: one batch in, the loss and its logged parts out.

    ``objective(bundle, batch, draws)`` returns a dict with ``"loss"`` (the scalar to back-
    propagate, with a graph) and detached float parts for logging (``"loss_aux"``, ``"acc"``...).
    ``batch`` is a collate's dict (``"motions"`` (B, L, 263) normalised float32, ``"lengths"``
    (B,) int64 frames, and ``"captions"`` for the transformer stages).
    """

    def __call__(
        self, bundle: Any, batch: Mapping[str, Any], draws: Draws
    ) -> dict[str, torch.Tensor]: ...


class StageObjective(nn.Module):
    """A stage's objective as a module, so that the trainer holds it and a checkpoint carries
    its training-only state (the VQ's EMA codebook statistics live in a subclass's buffers;
    the transformer objectives have none).

    ``objective(bundle, batch, draws)`` calls :meth:`forward`.
    """

    def __init__(self, function: Objective | None = None) -> None:
        super().__init__()
        self.function = function

    def forward(
        self, bundle: Any, batch: Mapping[str, Any], draws: Draws
    ) -> dict[str, torch.Tensor]:
        """The loss and its logged parts (see :class:`Objective`)."""
        if self.function is None:
            raise NotImplementedError(f"{type(self).__name__} must override forward")
        return self.function(bundle, batch, draws)


@contextmanager
def eval_mode(*modules: nn.Module):
    """Put ``modules`` in eval mode for the block, then restore each one's mode."""
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


class Tokens:
    """The frozen VQ's tokens of a batch (what the transformers learn to predict).

    Attributes:
        aux: (B, n, Q) int64 1D-stream ids, ``pad_aux`` at padded steps in every layer.
        ts: (B, n, J, Q) int64 2D-stream ids, ``pad_ts`` at padded steps.
        padding: (B, n) bool, True at steps ``>= length // 4``.
        token_lengths: (B,) int64, ``length // 4``.
    """

    def __init__(
        self,
        aux: torch.Tensor,
        ts: torch.Tensor,
        padding: torch.Tensor,
        token_lengths: torch.Tensor,
    ) -> None:
        self.aux = aux
        self.ts = ts
        self.padding = padding
        self.token_lengths = token_lengths


@torch.no_grad()
def encode_tokens(
    vq: RVQVAE, motions: torch.Tensor, lengths: torch.Tensor, *, pad_aux: int, pad_ts: int
) -> Tokens:
    """Tokenise padded motions as the official transformer training does: the VQ in eval mode
    (nearest code), on the zero-padded clip (the grid built from the padded vector), then every
    step at or past ``length // 4`` set to the pad id.

    Args:
        vq: the (frozen) RVQ-VAE.
        motions: (B, L, 263) normalised, zero past each length; ``L`` a multiple of 4.
        lengths: (B,) frames.
        pad_aux: the 1D transformer's pad id (``K + 1``).
        pad_ts: the 2D transformer's pad id.
    """
    if motions.shape[1] % UNIT_LENGTH:
        raise InvalidInputError(
            f"training motions are padded to a multiple of {UNIT_LENGTH} frames, got "
            f"{motions.shape[1]}"
        )
    dtype = next(vq.parameters()).dtype
    x = motions.to(dtype)
    with eval_mode(vq):
        ids_aux, ids_ts = vq.encode(x, motion_to_joint_grid(x))
    steps = ids_aux.shape[1]
    token_lengths = lengths.to(ids_aux.device) // UNIT_LENGTH
    padding = torch.arange(steps, device=ids_aux.device)[None, :] >= token_lengths[:, None]
    ids_aux = ids_aux.masked_fill(padding[:, :, None], pad_aux)
    ids_ts = ids_ts.masked_fill(padding[:, :, None, None], pad_ts)
    return Tokens(ids_aux, ids_ts, padding, token_lengths)


@torch.no_grad()
def text_features(bundle: Any, captions: Sequence[str]) -> torch.Tensor:
    """Frozen CLIP features of the captions, (B, 512) float32 (the official casts fp16 CLIP
    output to float32)."""
    return bundle.encode_text(list(captions)).float()


def drop_condition(
    cond: torch.Tensor, probability: float, draws: Draws, *, training: bool = True
) -> torch.Tensor:
    """Zero each sample's condition with ``probability``, as the official ``mask_cond`` does:
    one ``bernoulli(full((B,), p))`` draw (per sample: under a shard, this process's rows of
    the global batch's draw), made only in training mode and when ``p > 0``; otherwise ``cond``
    is returned as it is and nothing is drawn.

    The draw is made on the generator's device (a CPU generator may serve a CUDA batch) and
    the mask moved to ``cond``'s.

    Args:
        cond: (B, E) condition features.
        probability: the drop probability (``cond_drop_prob``).
        draws: the random source.
        training: the network's training mode (``net.training``).
    """
    if not training or probability <= 0:
        return cond
    b = cond.shape[0]
    source = draws.generator.device if draws.generator is not None else cond.device
    drop = draws.bernoulli(torch.full((b,), float(probability), device=source), per_sample=True)
    keep = (1.0 - drop).to(device=cond.device, dtype=cond.dtype)
    return cond * keep.view(b, *([1] * (cond.dim() - 1)))


def shard_mean(total: torch.Tensor, count: torch.Tensor, draws: Draws) -> torch.Tensor:
    """``total / count`` over the global batch, as this process's share: a mean over tokens
    whose count differs between the processes' slices (the transformers' cross-entropy over
    valid tokens) is ``total / count`` in one process and, under a shard (default mode,
    several processes), ``total x world_size / count_global`` (the count summed over the
    processes), so that the processes' mean, which the gradient all-reduce takes, is the
    global batch's mean. Reference mode keeps each process's own mean, as the official DDP
    runs do.

    Args:
        total: this process's sum (with its graph).
        count: this process's number of terms (detached; at least 1 is used).
        draws: the step's draws (their shard).

    Returns:
        A scalar with ``total``'s graph.
    """
    count = count.detach().to(total.dtype)
    if draws.sharded:
        count = count.clone()
        dist.all_reduce(count)
        return total * draws.world_size / count.clamp(min=1)
    return total / count.clamp(min=1)


def batch_tensors(
    batch: Mapping[str, Any], device: torch.device, *, captions: bool
) -> tuple[torch.Tensor, torch.Tensor, list[str] | None]:
    """``(motions float32 on device, lengths int64 on device, captions)`` from a collate's dict,
    with a typed error naming a missing key."""
    needed = ("motions", "lengths", "captions") if captions else ("motions", "lengths")
    missing = [k for k in needed if k not in batch]
    if missing:
        raise InvalidInputError(
            f"a training batch needs the keys {', '.join(needed)}; missing {', '.join(missing)} "
            "(use the collate of hftrainer_mogents.training.data)"
        )
    motions = torch.as_tensor(batch["motions"]).to(device=device, dtype=torch.float32)
    lengths = torch.as_tensor(batch["lengths"]).to(device=device, dtype=torch.long)
    return motions, lengths, (list(batch["captions"]) if captions else None)
