"""The objective of the dual-stream RVQ-VAE (the official ``RVQVAE.forward`` and
``RVQTokenizerTrainer.forward``).

The training forward runs the inference network's own submodules (encoders, ``linear_merge``,
decoders, ``linear_out``, wired as ``RVQVAE.encode`` / ``forward_decoder``) and replaces only the
quantisation by :class:`~.ema_quantizer.EMAResidualQuantizer` (Gumbel choice at temperature 0.5,
quantizer dropout, EMA codebooks with dead-code reset). With ``x`` the normalised window
``(B, T0, W)``, ``y1`` the aux decode, ``jm`` the ts decode scattered to ``W`` dims and
``y = linear_out([y1, jm])``, ``S`` smooth-L1 (beta 1, mean) and ``P`` the local-position dims
``4 : 4 + 3(J - 1)``:

- ``L1 = S(y1, x) + 0.5 S(y1_P, x_P) + 0.02 c1``
- ``L2 = S(jm, x~) + 0.5 S(jm_P, x_P) + 0.02 c2``, ``x~`` = ``x`` with the root (0:4) and
  foot-contact (last 4) dims zeroed (what the official rebuilds from the joint grid)
- ``L = S(y, x) + 0.5 S(y_P, x_P) + 0.02 (c1 + c2) / 2``

and the official back-propagates ``L1 + L2 + L``. ``c1``/``c2`` are the streams' commitment
losses. The official calls ``P``'s weight ``loss_vel``, though ``P`` holds positions.

Codebooks and statistics: the codebooks are the bundle's inference buffers, updated in place,
so an exported artifact has the trained codes. The EMA statistics (per stream and layer
``code_sum``, ``code_count`` and an ``initialised`` flag) are this module's buffers, so a
checkpoint carries them and a resumed run continues identically. Fine-tuning (the default,
``init_from_batch=False``) keeps the trained codes (the official first-batch init would
overwrite them, and the official resume re-runs it) and starts the statistics at
``count = c0``, ``sum = c0 * codebook``. The dead-code rule (a code whose EMA count is below 1
becomes a batch row) applies from the first step, so ``c0`` decides how long a trained code
that the new batches do not choose survives: ``ln(c0) / -ln(mu)`` steps. The official 1.0
would wipe, at the first step, every code a (small) fine-tuning batch misses. The default
``c0`` is the count an evenly used code has at the end of the official training, the
stationary value of the EMA: the official batch's rows per step over the codes,
``256 windows x 16 steps / 512 = 8`` for the aux stream and ``256 x 16 x 6 / 256 = 96`` for
the ts stream (``OFFICIAL_VQ_BATCH`` x rows per 64-frame window / ``K``, from the artifact's
config): the statistics continue as if they had been saved with the trained codebooks, and an
unused code lives about 200 (aux) and 450 (ts) steps before the official rule resets it.
Codes that the fine-tuning data keeps choosing hold ``count ~ P(code) x rows per step`` and
stay while that is at least 1, as in the official training (a small batch keeps fewer).
``init_from_batch=True`` (training from scratch) fills each codebook from its first training
batch, as the official code does (``count = 1``).

Random numbers (``draws``): per quantiser, ``draws.python.random()`` (and ``randrange``) for the
quantizer dropout, then per active layer the ``(N, K)`` Gumbel uniforms (and the tiling noise
when a batch has fewer rows than codes), in the official order; reference and default mode draw
the same. Rows are sample-major (aux ``(b, t)``, ts ``(b, g, t)``), so under a shard of several
processes the Gumbel uniforms are a per-sample draw, and the statistics are summed over the
processes (see :mod:`~.ema_quantizer`): N processes keep the codebooks of one. The networks' ``Dropout`` masks come from torch's global generator, as in the official
code, so the official loss is matched with dropout at 0.

Eval mode (``bundle.vq_model.eval()``): nearest code, every layer, no update, nothing drawn
(the official validation forward).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from hftrainer_mogents.config import N_JOINT_GROUPS
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.modeling.rvq_vae import (
    FOOT_DIMS,
    ROOT_DIMS,
    joint_grid_to_motion,
    motion_to_joint_grid,
)
from hftrainer_mogents.training.objectives.common import StageObjective, batch_tensors
from hftrainer_mogents.training.objectives.draws import Draws
from hftrainer_mogents.training.objectives.ema_quantizer import EMAResidualQuantizer

__all__ = [
    "VQObjective",
    "COMMIT_WEIGHT",
    "POSITION_WEIGHT",
    "GUMBEL_TEMPERATURE",
    "OFFICIAL_VQ_BATCH",
    "OFFICIAL_VQ_WINDOW",
    "finetune_initial_counts",
]

COMMIT_WEIGHT = 0.02  # official --commit
POSITION_WEIGHT = 0.5  # official --loss_vel (the weight of the local-position term)
GUMBEL_TEMPERATURE = 0.5  # official sample_codebook_temp
OFFICIAL_VQ_BATCH = 256  # official VQ training batch (windows per step)
OFFICIAL_VQ_WINDOW = 64  # official VQ training window (frames)


def finetune_initial_counts(config: Any) -> tuple[float, float]:
    """The default fine-tuning EMA count of the aux and ts codes: the rows of one official
    training step over the stream's codes, ``OFFICIAL_VQ_BATCH x steps per window (x joint
    groups for ts) / K`` (8 and 96 for the released model), floored at 1 (the official
    from-scratch count).

    Args:
        config: the RVQ-VAE's config (``nb_code1d``, ``nb_code2d``, ``down_t``, ``stride_t``).
    """
    steps = OFFICIAL_VQ_WINDOW // (config.stride_t**config.down_t)
    rows = OFFICIAL_VQ_BATCH * steps
    return (
        max(1.0, rows / config.nb_code1d),
        max(1.0, rows * N_JOINT_GROUPS / config.nb_code2d),
    )


class VQObjective(StageObjective):
    """The RVQ-VAE's training objective with its EMA codebook statistics as buffers.

    Args:
        bundle: the :class:`~hftrainer_mogents.bundle.MoGenTSBundle` to train (its
            ``vq_model`` config gives ``mu`` and the quantizer-dropout probability).
        init_from_batch: ``False`` (fine-tuning): keep the artifact's codebooks, statistics
            start at ``count = initial_count``, ``sum = count x codebook``. ``True`` (from
            scratch): the official first-batch init of every codebook (``count = 1``).
        initial_count: the fine-tuning start count of every code (both streams), or ``None``:
            :func:`finetune_initial_counts` (see the module docstring for the reasoning).
        commit: commitment weight.
        position_weight: weight of the local-position term (the official ``loss_vel``).
        temperature: Gumbel temperature of the training code choice.

    Returns (of a call): ``{"loss": L1 + L2 + L (with graph), "loss_fused": L (the official's
    logged "loss"), "loss_aux": L1, "loss_ts": L2, "loss_rec": S(y, x), "loss_vel": S(y_P, x_P),
    "loss_commit": c2, "loss_commit_aux": c1, "perplexity": ts, "perplexity_aux": aux}``, all
    but ``loss`` detached.
    """

    def __init__(
        self,
        bundle: Any,
        *,
        init_from_batch: bool = False,
        initial_count: float | None = None,
        commit: float = COMMIT_WEIGHT,
        position_weight: float = POSITION_WEIGHT,
        temperature: float = GUMBEL_TEMPERATURE,
    ) -> None:
        super().__init__()
        vq = bundle.vq_model
        config = vq.config
        self.init_from_batch = bool(init_from_batch)
        self.commit = float(commit)
        self.position_weight = float(position_weight)
        options = {
            "mu": config.mu,
            "dropout_prob": config.quantize_dropout_prob,
            "temperature": temperature,
            "init_from_batch": self.init_from_batch,
        }
        counts = (
            finetune_initial_counts(config)
            if initial_count is None
            else (float(initial_count), float(initial_count))
        )
        self.quantizer1d = EMAResidualQuantizer(
            vq.quantizer1d.codebooks, initial_count=counts[0], **options
        )
        self.quantizer2d = EMAResidualQuantizer(
            vq.quantizer2d.codebooks, initial_count=counts[1], **options
        )

    def forward(
        self, bundle: Any, batch: Mapping[str, Any], draws: Draws
    ) -> dict[str, torch.Tensor]:
        """The losses of one batch of windows (``batch["motions"] (B, T0, W)`` normalised;
        see the class docstring for the returned keys)."""
        vq = bundle.vq_model
        config = vq.config
        training = vq.training
        motions, _, _ = batch_tensors(batch, bundle.device, captions=False)
        b, frames, width = motions.shape
        step = config.stride_t**config.down_t
        if width != config.input_width or frames % step or frames == 0:
            raise InvalidInputError(
                f"VQ training windows must be (B, T0, {config.input_width}) with T0 a positive "
                f"multiple of {step}; got {tuple(motions.shape)}"
            )
        x = motions.to(next(vq.parameters()).dtype)
        grid = motion_to_joint_grid(x)  # (B, T0, J, 12)

        # 1. aux stream: rows (b, t)
        z1 = vq.encoder1d(x.transpose(1, 2))  # (B, D1, T)
        d1, steps = z1.shape[1], z1.shape[2]
        q1 = self.quantizer1d(
            z1.transpose(1, 2).reshape(-1, d1), vq.quantizer1d.codebooks, draws, training=training
        )
        y1 = vq.decoder1d(q1.quantized.view(b, steps, d1).transpose(1, 2)).transpose(1, 2)

        # 2. ts stream: rows (b, g, t), the official (b j) d t layout
        before, after = config.joint_pad
        z2 = vq.encoder2d(F.pad(grid, (0, 0, before, after)).permute(0, 3, 1, 2))  # (B,D2,T,G)
        d2 = z2.shape[1]
        q2 = self.quantizer2d(
            z2.permute(0, 3, 2, 1).reshape(-1, d2),
            vq.quantizer2d.codebooks,
            draws,
            training=training,
        )
        z2q = q2.quantized.view(b, N_JOINT_GROUPS, steps, d2).transpose(1, 2)  # (B, T, G, D2)
        z2q = vq.linear_merge(z2q.flatten(2)).unflatten(2, (N_JOINT_GROUPS, -1))
        out_grid = vq.decoder2d(z2q.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (B, T0, P, C)
        jm = joint_grid_to_motion(out_grid[:, :, before : before + config.joints_num])
        y = vq.linear_out(torch.cat([y1, jm], -1))  # (B, T0, W)

        # 3. losses (float32, as the official)
        xf = x.float()
        target_ts = xf.clone()
        target_ts[..., :ROOT_DIMS] = 0
        target_ts[..., width - FOOT_DIMS :] = 0
        positions = slice(ROOT_DIMS, ROOT_DIMS + 3 * (config.joints_num - 1))
        c1, c2 = q1.commit_loss.float(), q2.commit_loss.float()

        def reconstruction(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
            pred = pred.float()
            rec = F.smooth_l1_loss(pred, target)
            pos = F.smooth_l1_loss(pred[..., positions], xf[..., positions])
            return rec, pos

        rec1, pos1 = reconstruction(y1, xf)
        rec2, pos2 = reconstruction(jm, target_ts)
        rec, pos = reconstruction(y, xf)
        loss1 = rec1 + self.position_weight * pos1 + self.commit * c1
        loss2 = rec2 + self.position_weight * pos2 + self.commit * c2
        fused = rec + self.position_weight * pos + self.commit * (c1 + c2) / 2
        total = loss1 + loss2 + fused
        parts = {
            "loss_fused": fused,
            "loss_aux": loss1,
            "loss_ts": loss2,
            "loss_rec": rec,
            "loss_vel": pos,
            "loss_commit": c2,
            "loss_commit_aux": c1,
            "perplexity": q2.perplexity,
            "perplexity_aux": q1.perplexity,
        }
        return {"loss": total, **{k: v.detach().float() for k, v in parts.items()}}
