"""The MoGenTS mask transformers: 1D over the aux token stream (``t2m_transformer_aux``) and 2D
over the spatial-temporal token grid (``t2m_transformer_ts``).

Both predict base-layer code ids from a text condition by iterative masked decoding (the loop is
in :mod:`hftrainer_mogents.modeling.sampling`). Parameter names equal the official state dicts.
Shapes: ``B`` batch, ``T`` token steps, ``J`` joint groups (6), ``D`` model width, ``K`` codebook
size, ``C`` code width, ``E`` CLIP feature width (512).
"""

from __future__ import annotations

import torch
from torch import nn

from hftrainer_mogents.config import MaskTransformerConfig
from hftrainer_mogents.modeling.layers import OutputProcess, add_backbone, encode_valid_rows

__all__ = ["MaskTransformer", "MaskTransformer2D", "cfg_combine"]


def cfg_combine(
    cond_logits: torch.Tensor, uncond_logits: torch.Tensor, scale: float
) -> torch.Tensor:
    """Classifier-free guidance as upstream writes it: ``u + (c - u) * scale``."""
    return uncond_logits + (cond_logits - uncond_logits) * scale


class _MaskTransformerBase(nn.Module):
    def __init__(
        self, config: MaskTransformerConfig, code_dim: int, num_tokens: int, *, two_d: bool
    ) -> None:
        super().__init__()
        self.config = config
        self.code_dim = code_dim
        self.num_tokens = num_tokens
        self.mask_id = num_tokens
        self.pad_id = num_tokens + 1
        d = config.latent_dim
        # registration order = the official state-dict order; dropout acts in training only
        add_backbone(self, config, code_dim, two_d=two_d, dropout=config.dropout)
        self.cond_emb = nn.Linear(config.clip_dim, d)
        self.output_process = OutputProcess(num_tokens, d)
        self.token_emb = nn.Embedding(num_tokens + 2, code_dim)

    def forward_with_cond_scale(
        self,
        ids: torch.Tensor,
        cond: torch.Tensor,
        padding_mask: torch.Tensor,
        cond_scale: float,
        *,
        batched: bool = True,
    ) -> torch.Tensor:
        """Guided logits ``u + (c - u) * cond_scale``; the unconditional branch zeroes the CLIP
        feature before ``cond_emb``. With ``cond_scale == 1`` only the conditional pass runs.

        Args:
            ids, padding_mask: as :meth:`forward`.
            cond: (B, E) CLIP text features.
            batched: run both branches as one forward of batch 2B (fast); False runs two
                forwards in the official order (reference).

        Returns:
            Logits as :meth:`forward`.
        """
        if cond_scale == 1:
            return self(ids, cond, padding_mask)
        if not batched:
            logits = self(ids, cond, padding_mask)
            return cfg_combine(logits, self(ids, torch.zeros_like(cond), padding_mask), cond_scale)
        both = self(
            torch.cat([ids, ids]),
            torch.cat([cond, torch.zeros_like(cond)]),
            torch.cat([padding_mask, padding_mask]),
        )
        cond_logits, uncond_logits = both.chunk(2)
        return cfg_combine(cond_logits, uncond_logits, cond_scale)


class MaskTransformer(_MaskTransformerBase):
    """1D mask transformer over the aux stream.

    The sequence is ``[cond, x_0 .. x_{T-1}]``; the learned positional table is added to the code
    tokens only. Upstream: ``MaskTransformer`` in ``transformer_aux.py``.
    """

    def __init__(self, config: MaskTransformerConfig, code_dim: int, num_tokens: int) -> None:
        super().__init__(config, code_dim, num_tokens, two_d=False)

    def forward(
        self, ids: torch.Tensor, cond: torch.Tensor, padding_mask: torch.Tensor
    ) -> torch.Tensor:
        """Logits of the aux code ids.

        Args:
            ids: (B, T) int64 ids in ``[0, K + 2)`` (``mask_id = K``, ``pad_id = K + 1``).
            cond: (B, E) CLIP feature; zeros give the unconditional branch.
            padding_mask: (B, T) bool, True at padded steps.

        Returns:
            (B, T, K) logits (upstream's ``trans_forward`` returns the transpose, (B, K, T)).
        """
        b, t = ids.shape
        x = self.input_process(self.token_emb(ids)) + self.position_enc(t)  # (B, T, D)
        x = self.position_enc.dropout(x)  # on the code tokens only, as upstream
        c = self.cond_emb(cond.to(x.dtype)).unsqueeze(1)  # (B, 1, D)
        attend = torch.cat([padding_mask.new_ones(b, 1), ~padding_mask], dim=1)  # (B, 1 + T)
        h = self.seqTransEncoder(torch.cat([c, x], dim=1), attend)
        return self.output_process(h[:, 1:])


class MaskTransformer2D(_MaskTransformerBase):
    """2D mask transformer over the (time x joint-group) token grid.

    Three encoders, each over the grid with the condition as an extra first row: a joint
    spatio-temporal stage over all ``(T + 1) * J`` tokens (``seqTransEncoder``), a spatial stage
    over the J tokens of each time step (``seqTransEncoder2``, when ``attnj``) and a temporal stage
    over the T + 1 steps of each joint group (``seqTransEncoder3``, when ``attnt``). Upstream:
    ``MaskTransformer2D`` in ``transformer_ts.py``. Reproduced quirks, baked into the weights:

    - the spatial stage *replaces* the valid rows by its output, and the other rows keep the
      positional table added a second time;
    - the temporal stage cannot attend to the condition row (upstream marks it padded in place
      while building the spatial stage's mask, and reuses that mask).
    """

    def __init__(self, config: MaskTransformerConfig, code_dim: int, num_tokens: int) -> None:
        super().__init__(config, code_dim, num_tokens, two_d=True)

    def forward(
        self, ids: torch.Tensor, cond: torch.Tensor, padding_mask: torch.Tensor
    ) -> torch.Tensor:
        """Logits of the ts code ids.

        Args:
            ids: (B, T, J) int64 ids in ``[0, K + 2)``.
            cond: (B, E) CLIP feature; zeros give the unconditional branch.
            padding_mask: (B, T) bool, True at padded time steps (all J slots of a step share it;
                a (B, T, J) mask is accepted and read at slot 0).

        Returns:
            (B, T * J, K) logits, position index ``t * J + j`` (upstream returns (B, K, T * J)).
        """
        if padding_mask.dim() == 3:
            padding_mask = padding_mask[..., 0]
        b, t, j = ids.shape
        pe = self.position2d_enc(t + 1, j)  # (T + 1, J, D)
        e = self.input_process(self.token_emb(ids))  # (B, T, J, D)
        c = self.cond_emb(cond.to(e.dtype))  # (B, D)
        d = c.shape[-1]
        drop = self.position2d_enc.dropout  # after each addition of the table (training only)
        grid = torch.cat([c[:, None, None, :].expand(b, 1, j, d), e], dim=1) + pe  # (B, T+1, J, D)
        grid = drop(grid)
        valid = ~padding_mask  # (B, T)
        rows = torch.cat([valid.new_ones(b, 1), valid], dim=1)  # (B, T+1), row 0 = condition

        # 1. joint spatio-temporal attention over all (T + 1) * J tokens
        attend = rows[:, :, None].expand(b, t + 1, j).reshape(b, (t + 1) * j)
        h = self.seqTransEncoder(grid.reshape(b, (t + 1) * j, d), attend).view(b, t + 1, j, d)

        # 2. spatial attention within each valid time step (replaces those rows)
        if self.config.attnj:
            y = drop(h + pe)
            steps = y[:, 1:].reshape(b * t, j, d)  # (B*T, J, D)
            out = encode_valid_rows(self.seqTransEncoder2, steps, valid.reshape(b * t), steps)
            o = out.view(b, t, j, d)
        else:
            o = h[:, 1:]

        # 3. temporal attention along each joint group; the condition row is not attendable
        if self.config.attnt:
            z = drop(torch.cat([c[:, None, None, :].expand(b, 1, j, d), o], dim=1) + pe)
            z = z.permute(0, 2, 1, 3).reshape(b * j, t + 1, d)  # (B*J, T+1, D)
            attend_t = torch.cat([valid.new_zeros(b, 1), valid], dim=1)  # (B, T+1)
            attend_t = attend_t[:, None, :].expand(b, j, t + 1).reshape(b * j, t + 1)
            zt = self.seqTransEncoder3(z, attend_t).view(b, j, t + 1, d)[:, :, 1:]  # (B, J, T, D)
            o = o + zt.permute(0, 2, 1, 3)

        return self.output_process(o.reshape(b, t * j, d))
