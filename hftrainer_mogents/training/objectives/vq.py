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
``init_from_batch=False``) starts them at ``sum = codebook``, ``count = 1``: the trained codes
stay as they are (the official first-batch init would overwrite them, and the official resume
re-runs it). Note that the dead-code rule then applies from the first step: a code whose EMA
count falls below 1 (one that the batches rarely choose) is replaced by a row of the batch, as
in the official training; small batches therefore replace more codes.
``init_from_batch=True`` (training from scratch) fills each codebook from its first training
batch, as the official code does.

Random numbers (``draws``): per quantiser, ``draws.python.random()`` (and ``randrange``) for the
quantizer dropout, then per active layer the ``(N, K)`` Gumbel uniforms (and the tiling noise
when a batch has fewer rows than codes), in the official order; reference and default mode draw
the same. The networks' ``Dropout`` masks come from torch's global generator, as in the official
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

__all__ = ["VQObjective", "COMMIT_WEIGHT", "POSITION_WEIGHT", "GUMBEL_TEMPERATURE"]

COMMIT_WEIGHT = 0.02  # official --commit
POSITION_WEIGHT = 0.5  # official --loss_vel (the weight of the local-position term)
GUMBEL_TEMPERATURE = 0.5  # official sample_codebook_temp


class VQObjective(StageObjective):
    """The RVQ-VAE's training objective with its EMA codebook statistics as buffers.

    Args:
        bundle: the :class:`~hftrainer_mogents.bundle.MoGenTSBundle` to train (its
            ``vq_model`` config gives ``mu`` and the quantizer-dropout probability).
        init_from_batch: ``False`` (fine-tuning): keep the artifact's codebooks, statistics
            start at ``sum = codebook``, ``count = 1``. ``True`` (from scratch): the official
            first-batch init of every codebook.
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
        self.quantizer1d = EMAResidualQuantizer(vq.quantizer1d.codebooks, **options)
        self.quantizer2d = EMAResidualQuantizer(vq.quantizer2d.codebooks, **options)

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
