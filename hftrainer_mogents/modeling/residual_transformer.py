"""The MoGenTS residual transformers: they predict quantizer layer ``q`` (1..Q-1) of each token
from the sum of the code embeddings of layers ``< q``, for the aux stream (1D,
``res_transformer_aux``) and the spatial-temporal grid (2D, ``res_transformer_ts``).

Parameter names equal the official state dicts. Shapes: ``B`` batch, ``T`` token steps, ``J``
joint groups, ``N`` positions (T or T*J), ``D`` model width, ``C`` code width, ``V`` table rows
(ids the residual heads can emit: aux K + 1 with pad; ts K + 2 with mask and pad), ``Q`` quantizer
layers, ``E`` CLIP feature width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hftrainer_mogents.config import ResidualTransformerConfig
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.modeling.layers import OutputProcess, add_backbone, encode_valid_rows
from hftrainer_mogents.modeling.mask_transformer import cfg_combine

__all__ = ["ResidualTransformer", "ResidualTransformer2D", "scrambled_spatial_index"]


def _table(*shape: int) -> torch.Tensor:
    """A per-layer table with upstream's initialisation, N(0, 0.02^2)."""
    return torch.randn(*shape) * 0.02


class _ResidualTransformerBase(nn.Module):
    def __init__(
        self,
        config: ResidualTransformerConfig,
        code_dim: int,
        num_tokens: int,
        num_quantizers: int,
        num_table_rows: int,
        *,
        two_d: bool,
    ) -> None:
        super().__init__()
        if num_quantizers < 2:
            raise ValueError(
                f"a residual transformer needs num_quantizers >= 2, got {num_quantizers}"
            )
        self.config = config
        self.code_dim = code_dim
        self.num_tokens = num_tokens
        self.num_quantizers = num_quantizers
        self.num_table_rows = num_table_rows
        d = config.latent_dim
        v, q = num_table_rows, num_quantizers
        # registration order = the official state-dict order (direct parameters first)
        if config.share_weight:
            # layer k+1's output head shares its table with layer k+1's input embedding (k+1 < Q-1)
            self.embed_proj_shared_weight = nn.Parameter(_table(q - 2, v, code_dim))
            self.token_embed_weight_ = nn.Parameter(_table(1, v, code_dim))
            self.output_proj_weight_ = nn.Parameter(_table(1, v, code_dim))
        else:
            self.output_proj_weight = nn.Parameter(_table(q - 1, v, code_dim))
            self.output_proj_bias = nn.Parameter(torch.zeros(q, v))
            self.token_embed_weight = nn.Parameter(_table(q - 1, v, code_dim))
        # dropout acts in training only (upstream's encoders and positional tables use 0.2)
        add_backbone(self, config, code_dim, two_d=two_d, dropout=config.dropout)
        self.quant_emb = nn.Linear(num_quantizers, d)
        self.cond_emb = nn.Linear(config.clip_dim, d)
        self.output_process = OutputProcess(code_dim, d)

    # -- per-layer tables ---------------------------------------------------------------------

    def token_embed_table(self, layer: int) -> torch.Tensor:
        """(V, C) table embedding the ids of quantizer layer ``layer`` (0 .. Q-2)."""
        if self.config.share_weight:
            if layer == 0:
                return self.token_embed_weight_[0]
            return self.embed_proj_shared_weight[layer - 1]
        return self.token_embed_weight[layer]

    def output_proj_table(self, layer: int | torch.Tensor) -> torch.Tensor:
        """Head producing the logits of quantizer layer ``layer`` (1 .. Q-1).

        Args:
            layer: an int (one layer for the batch) or a (B,) int64 tensor (one per sample).

        Returns:
            (V, C) for an int; (B, V, C), sample ``b``'s table ``W[layer[b] - 1]``, for a tensor.
        """
        if isinstance(layer, torch.Tensor):
            return self._output_proj_tables()[layer - 1]
        if self.config.share_weight:
            if layer == self.num_quantizers - 1:
                return self.output_proj_weight_[0]
            return self.embed_proj_shared_weight[layer - 1]
        return self.output_proj_weight[layer - 1]

    def _output_proj_tables(self) -> torch.Tensor:
        """All output heads, (Q-1, V, C), row ``k`` for layer ``k + 1``."""
        if self.config.share_weight:
            return torch.cat([self.embed_proj_shared_weight, self.output_proj_weight_])
        return self.output_proj_weight

    def embed_ids(self, ids: torch.Tensor, layer: int) -> torch.Tensor:
        """Code embeddings of layer-``layer`` ids: (..., ) int64 -> (..., C)."""
        return F.embedding(ids, self.token_embed_table(layer))

    def project(self, h: torch.Tensor, layer: int | torch.Tensor) -> torch.Tensor:
        """Per-layer output projection: (B, N, C) features -> (B, N, V) logits of ``layer``.

        Without weight sharing upstream adds its bias as ``out = 2 * out + bias`` (``out +=
        out + bias``); reproduced.

        Args:
            h: (B, N, C) features.
            layer: an int (inference: one table for the batch) or a (B,) int64 tensor
                (training: sample ``b`` goes through layer ``layer[b]``'s table and bias).
        """
        if isinstance(layer, torch.Tensor):
            logits = torch.matmul(h, self.output_proj_table(layer).transpose(1, 2))
            if not self.config.share_weight:
                logits = 2 * logits + self.output_proj_bias[layer - 1][:, None, :]
            return logits
        logits = F.linear(h, self.output_proj_table(layer))
        if not self.config.share_weight:
            logits = 2 * logits + self.output_proj_bias[layer - 1]
        return logits

    def _prefix(
        self, cond: torch.Tensor, layer: int | torch.Tensor, batch: int, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Condition and quantizer-layer tokens, each (B, D); a (B,) tensor ``layer`` gives
        sample ``b`` the token ``quant_emb(one_hot(layer[b]))``."""
        c = self.cond_emb(cond.to(dtype))
        if isinstance(layer, torch.Tensor):
            if layer.shape != (batch,) or layer.dtype != torch.int64:
                raise InvalidInputError(
                    f"a tensor layer must be (B,) = ({batch},) int64, one layer per sample; got "
                    f"{tuple(layer.shape)} {layer.dtype}"
                )
            one_hot = F.one_hot(layer.to(cond.device), self.num_quantizers).to(dtype)
            return c, self.quant_emb(one_hot)
        one_hot = torch.zeros(batch, self.num_quantizers, dtype=dtype, device=cond.device)
        one_hot[:, layer] = 1
        return c, self.quant_emb(one_hot)

    def forward_with_cond_scale(
        self,
        history: torch.Tensor,
        layer: int,
        cond: torch.Tensor,
        padding_mask: torch.Tensor,
        cond_scale: float,
        *,
        batched: bool = True,
    ) -> torch.Tensor:
        """Guided logits of ``layer``: ``u + (c - u) * cond_scale`` (unconditional branch = zero
        CLIP feature). ``batched`` runs both branches as one forward (fast); False runs two in the
        official order (reference).

        Args:
            history: (B, N, C) sum of the embeddings of layers ``< layer``.
            layer: quantizer layer to predict, 1 .. Q-1.
            cond: (B, E).
            padding_mask: as :meth:`forward`.

        Returns:
            (B, N, V) logits.
        """
        if cond_scale == 1:
            return self(history, layer, cond, padding_mask)
        if not batched:
            logits = self(history, layer, cond, padding_mask)
            uncond = self(history, layer, torch.zeros_like(cond), padding_mask)
            return cfg_combine(logits, uncond, cond_scale)
        both = self(
            torch.cat([history, history]),
            layer,
            torch.cat([cond, torch.zeros_like(cond)]),
            torch.cat([padding_mask, padding_mask]),
        )
        cond_logits, uncond_logits = both.chunk(2)
        return cfg_combine(cond_logits, uncond_logits, cond_scale)


class ResidualTransformer(_ResidualTransformerBase):
    """1D residual transformer over the aux stream: sequence ``[cond, layer, x_0 .. x_{T-1}]``.

    Tables have ``V = K + 1`` rows (id K = padding). Upstream: ``ResidualTransformer`` in
    ``transformer_aux.py``.
    """

    def __init__(
        self, config: ResidualTransformerConfig, code_dim: int, num_tokens: int, num_quantizers: int
    ) -> None:
        super().__init__(config, code_dim, num_tokens, num_quantizers, num_tokens + 1, two_d=False)
        self.pad_id = num_tokens
        self.mask_id = None

    def forward(
        self,
        history: torch.Tensor,
        layer: int | torch.Tensor,
        cond: torch.Tensor,
        padding_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Logits of quantizer layer ``layer``.

        Args:
            history: (B, T, C) summed code embeddings of the previous layers.
            layer: 1 .. Q-1, an int for the whole batch (inference) or a (B,) int64
                tensor, one per sample (training: sample ``b`` gets the layer token and output
                table of ``layer[b]``, so its logits equal its run alone with the int layer).
            cond: (B, E); zeros give the unconditional branch.
            padding_mask: (B, T) bool, True at padded steps.

        Returns:
            (B, T, V) logits.
        """
        b, t, _ = history.shape
        x = self.position_enc.dropout(
            self.input_process(history) + self.position_enc(t)
        )  # (B, T, D)
        c, q = self._prefix(cond, layer, b, x.dtype)
        attend = torch.cat([padding_mask.new_ones(b, 2), ~padding_mask], dim=1)  # (B, 2 + T)
        h = self.seqTransEncoder(torch.cat([c[:, None], q[:, None], x], dim=1), attend)
        return self.project(self.output_process(h[:, 2:]), layer)


def scrambled_spatial_index(
    lengths: torch.Tensor, steps: int, joints: int, *, batch_coupled: bool
) -> torch.Tensor:
    """Where upstream's 2D residual spatial stage reads each output slot from.

    Upstream adds the spatial encoder's output (laid out ``(J, B * T, D)``, column ``b * T + t``)
    back by reading its memory as ``(T, B, J, D)``: slot ``(b', t', j')`` receives the entry at flat
    index ``f = (t' * B + b') * J + j'``, i.e. joint ``f // (B * T)``, column ``f % (B * T)``.

    Args:
        lengths: (B,) int64 valid steps per sample (used when not ``batch_coupled``).
        steps: T, the padded number of steps.
        joints: J.
        batch_coupled: True reproduces the official batched layout exactly (slots then read other
            samples' entries: the result depends on the batch); False applies the same rule to each
            sample alone with ``B = 1, T = lengths[b]`` (what the official code computes when the
            sample is generated on its own), so a sample never reads another.

    Returns:
        (B, T * J) int64 indices into the flattened ``(B * T * J)`` grid of spatial outputs in
        ``(b, t, j)`` order; slots of padded steps point at their own (zero) entry.
    """
    b = lengths.shape[0]
    device = lengths.device
    t_idx = torch.arange(steps, device=device)[:, None]  # (T, 1)
    j_idx = torch.arange(joints, device=device)[None, :]  # (1, J)
    if batch_coupled:
        b_idx = torch.arange(b, device=device)[:, None, None]  # (B, 1, 1)
        flat = (t_idx[None] * b + b_idx) * joints + j_idx[None]  # (B, T, J)
        src_j = flat // (b * steps)
        col = flat % (b * steps)
        src_b, src_t = col // steps, col % steps
        return ((src_b * steps + src_t) * joints + src_j).reshape(b, steps * joints)
    length = lengths.clamp(min=1)[:, None, None]  # (B, 1, 1)
    flat = t_idx[None] * joints + j_idx[None]  # (1, T, J), B = 1 per sample
    src_j = flat // length
    src_t = flat % length
    own = torch.arange(b, device=device)[:, None, None]
    index = (own * steps + src_t) * joints + src_j  # (B, T, J)
    padded = t_idx[None] >= length  # (B, T, 1)
    self_index = (own * steps + t_idx[None]) * joints + j_idx[None]
    return torch.where(padded, self_index, index).reshape(b, steps * joints)


class ResidualTransformer2D(_ResidualTransformerBase):
    """2D residual transformer over the token grid, with the condition and layer tokens as two
    extra leading rows. Stages as :class:`~hftrainer_mogents.modeling.mask_transformer.MaskTransformer2D`
    (joint over all tokens, spatial per step, temporal per joint group), both later stages added
    residually. Tables have ``V = K + 2`` rows (mask K, padding K + 1). Upstream:
    ``ResidualTransformer2D`` in ``transformer_ts.py``. Reproduced quirks:

    - the spatial stage adds the positional table for rows ``0 .. T-1`` (not offset by the two
      prefix rows), and adds its output back in a scrambled layout (:func:`scrambled_spatial_index`);
    - the temporal stage can attend to the condition and layer rows.
    """

    def __init__(
        self, config: ResidualTransformerConfig, code_dim: int, num_tokens: int, num_quantizers: int
    ) -> None:
        super().__init__(config, code_dim, num_tokens, num_quantizers, num_tokens + 2, two_d=True)
        self.mask_id = num_tokens
        self.pad_id = num_tokens + 1

    def forward(
        self,
        history: torch.Tensor,
        layer: int | torch.Tensor,
        cond: torch.Tensor,
        padding_mask: torch.Tensor,
        *,
        joints: int = 6,
        scramble_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits of quantizer layer ``layer``.

        Args:
            history: (B, T * J, C) summed code embeddings, position ``t * J + j``.
            layer: 1 .. Q-1, an int for the whole batch (inference) or a (B,) int64
                tensor, one per sample (training: sample ``b`` gets the layer token and output
                table of ``layer[b]``; with a per-sample ``scramble_index`` its logits equal its
                run alone with the int layer, while the default batch-coupled index lets it read
                other samples' spatial outputs, as upstream's training does).
            cond: (B, E); zeros give the unconditional branch.
            padding_mask: (B, T) bool, True at padded steps ((B, T * J) is accepted and read at
                slot 0 of each step).
            joints: J.
            scramble_index: (B, T * J) from :func:`scrambled_spatial_index`; default: the official
                batched layout for this batch.

        Returns:
            (B, T * J, V) logits.
        """
        b, n, _ = history.shape
        j = joints
        t = n // j
        if padding_mask.shape[1] == n and n != t:
            padding_mask = padding_mask.view(b, t, j)[..., 0]
        valid = ~padding_mask  # (B, T)
        e = self.input_process(history).view(b, t, j, -1)  # (B, T, J, D)
        d = e.shape[-1]
        c, q = self._prefix(cond, layer, b, e.dtype)
        prefix = torch.stack([c, q], dim=1)[:, :, None, :].expand(b, 2, j, d)  # (B, 2, J, D)
        pe = self.position2d_enc(t + 2, j)  # (T + 2, J, D)

        # 1. joint spatio-temporal attention over all (T + 2) * J tokens
        grid = self.position2d_enc.dropout(torch.cat([prefix, e], dim=1) + pe)
        rows = torch.cat([valid.new_ones(b, 2), valid], dim=1)  # (B, T + 2)
        attend = rows[:, :, None].expand(b, t + 2, j).reshape(b, (t + 2) * j)
        o = self.seqTransEncoder(grid.reshape(b, (t + 2) * j, d), attend).view(b, t + 2, j, d)[
            :, 2:
        ]

        # 2. spatial attention within each valid step, added back in upstream's scrambled layout
        if self.config.attnj:
            steps = self.position2d_enc.dropout(o + pe[:t]).reshape(b * t, j, d)
            spatial = encode_valid_rows(
                self.seqTransEncoder2, steps, valid.reshape(b * t), torch.zeros_like(steps)
            )  # (B*T, J, D), zero at padded steps
            if scramble_index is None:
                lengths = valid.sum(1)
                scramble_index = scrambled_spatial_index(lengths, t, j, batch_coupled=True)
            flat = spatial.reshape(b * t * j, d)
            o = o + flat.index_select(0, scramble_index.reshape(-1)).view(b, t, j, d)

        # 3. temporal attention along each joint group (prefix rows attendable)
        if self.config.attnt:
            z = self.position2d_enc.dropout(torch.cat([prefix, o], dim=1) + pe)  # (B, T + 2, J, D)
            z = z.permute(0, 2, 1, 3).reshape(b * j, t + 2, d)
            attend_t = rows[:, None, :].expand(b, j, t + 2).reshape(b * j, t + 2)
            zt = self.seqTransEncoder3(z, attend_t).view(b, j, t + 2, d)[:, :, 2:]
            o = o + zt.permute(0, 2, 1, 3)

        return self.project(self.output_process(o.reshape(b, t * j, d)), layer)

    def forward_with_cond_scale(
        self,
        history: torch.Tensor,
        layer: int,
        cond: torch.Tensor,
        padding_mask: torch.Tensor,
        cond_scale: float,
        *,
        batched: bool = True,
        joints: int = 6,
        scramble_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """As the 1D version; ``scramble_index`` as :meth:`forward` (for a batched CFG pass it is
        computed for the B real samples and reused by both branches, as upstream does)."""
        b, n, _ = history.shape
        t = n // joints
        if padding_mask.shape[1] == n and n != t:
            padding_mask = padding_mask.view(b, t, joints)[..., 0]
        if scramble_index is None:
            lengths = (~padding_mask).sum(1)
            scramble_index = scrambled_spatial_index(lengths, t, joints, batch_coupled=True)

        def run(hist, cnd, mask, index):
            return self(hist, layer, cnd, mask, joints=joints, scramble_index=index)

        if cond_scale == 1:
            return run(history, cond, padding_mask, scramble_index)
        if not batched:
            logits = run(history, cond, padding_mask, scramble_index)
            uncond = run(history, torch.zeros_like(cond), padding_mask, scramble_index)
            return cfg_combine(logits, uncond, cond_scale)
        # the second half of the doubled batch reads its own copy of the grid
        index2 = torch.cat([scramble_index, scramble_index + b * n])
        both = run(
            torch.cat([history, history]),
            torch.cat([cond, torch.zeros_like(cond)]),
            torch.cat([padding_mask, padding_mask]),
            index2,
        )
        cond_logits, uncond_logits = both.chunk(2)
        return cfg_combine(cond_logits, uncond_logits, cond_scale)
