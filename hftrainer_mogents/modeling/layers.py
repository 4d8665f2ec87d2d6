"""Building blocks shared by the four MoGenTS transformers.

Parameter names follow ``torch.nn.TransformerEncoder`` and the official MoGenTS modules, so the
official state dicts load with ``strict=True``. Everything here is batch-first, ``(N, S, D)``;
upstream runs sequence-first, which only changes memory layout. Dropout (upstream's, for
training) is ``nn.Dropout`` modules and the attention's ``dropout_p``, active only in training
mode and 0 unless a ``dropout`` is passed: eval mode, which inference runs in, never touches it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "TransformerEncoderLayer",
    "TransformerEncoder",
    "InputProcess",
    "OutputProcess",
    "PositionalEncoding",
    "PositionalEncoding2D",
    "sinusoid_table",
    "sinusoid_table_2d",
    "add_backbone",
    "attention",
    "SHORT_SEQUENCE",
    "encode_valid_rows",
]


class TransformerEncoderLayer(nn.Module):
    """Post-LayerNorm encoder layer with exact (erf) GELU, as ``nn.TransformerEncoderLayer(d_model,
    nhead, dim_feedforward, activation='gelu')`` with ``norm_first=False``, ``layer_norm_eps=1e-5``.

    Attention runs through ``F.scaled_dot_product_attention``; the packed ``in_proj`` weights keep
    the ``nn.MultiheadAttention`` names (``self_attn.in_proj_weight``, rows q, k, v). In training
    mode, ``dropout`` applies where ``nn.TransformerEncoderLayer`` applies it: to the attention
    weights, after the feed-forward activation, and to both residual branches.
    """

    def __init__(
        self, d_model: int, nhead: int, dim_feedforward: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"d_model {d_model} is not divisible by nhead {nhead}")
        self.nhead = nhead
        self.self_attn = _PackedSelfAttention(d_model, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=1e-5)
        self.norm2 = nn.LayerNorm(d_model, eps=1e-5)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, attend: torch.Tensor | None = None) -> torch.Tensor:
        """Args:
            x: (N, S, D) tokens.
            attend: (N, S) bool, True where a key may be attended to (the negation of a key-padding
                mask), or None for no masking.

        Returns:
            (N, S, D).
        """
        n, s, d = x.shape
        h = self.nhead
        qkv = F.linear(x, self.self_attn.in_proj_weight, self.self_attn.in_proj_bias)
        # (N, S, 3D) -> (3, N, H, S, D/H)
        q, k, v = qkv.view(n, s, 3, h, d // h).permute(2, 0, 3, 1, 4)
        mask = None if attend is None else attend[:, None, None, :]  # (N, 1, 1, S)
        p = self.self_attn.dropout.p if self.training else 0.0
        if p > 0:
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        else:
            a = attention(q, k, v, mask)
        a = a.transpose(1, 2).reshape(n, s, d)  # (N, H, S, D/H) -> (N, S, D)
        x = self.norm1(x + self.dropout1(self.self_attn.out_proj(a)))
        ff = self.linear2(self.dropout(F.gelu(self.linear1(x))))
        return self.norm2(x + self.dropout2(ff))


#: Reduced-precision sequences up to this length (MoGenTS' spatial stage, S = 6, and temporal
#: stage, S = T + 1 <= 50) skip torch's default choice of attention kernel, which is slow on them
#: (``scripts/bench_attention.py``): the CPU runs two batched matmuls around a softmax (1.5-3x
#: faster than the fused kernel, numerics within bf16 rounding), CUDA the memory-efficient kernel
#: (1.5-1.6x faster than cuDNN's on an H200 at batch 256, same numerics; +11 % sentences/s).
SHORT_SEQUENCE = 64


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """Softmax attention, ``(N, H, S, E) x3 -> (N, H, S, E)``; ``mask`` (N, 1, 1, S) bool, True =
    may attend.

    ``F.scaled_dot_product_attention``; short sequences in reduced precision take the path of
    :data:`SHORT_SEQUENCE`.
    """
    n, h, s, e = q.shape
    if q.dtype in (torch.bfloat16, torch.float16) and s <= SHORT_SEQUENCE:
        if q.device.type == "cpu":
            return _matmul_attention(q, k, v, mask)
        if q.device.type == "cuda":
            from torch.nn.attention import SDPBackend, sdpa_kernel

            with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]):
                return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _matmul_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """:func:`attention` as two batched matmuls around a softmax."""
    n, h, s, e = q.shape
    q, k, v = (t.reshape(n * h, s, e) for t in (q, k, v))  # (N*H, S, E)
    if mask is None:
        scores = torch.bmm(q, k.transpose(1, 2)).mul_(e**-0.5)
    else:
        bias = torch.zeros(n, 1, s, dtype=q.dtype, device=q.device)
        bias = bias.masked_fill_(~mask.view(n, 1, s), float("-inf"))
        bias = bias.expand(n, h, s).reshape(n * h, 1, s)  # (N*H, 1, S)
        scores = torch.baddbmm(bias, q, k.transpose(1, 2), alpha=e**-0.5)  # (N*H, S, S)
    return torch.bmm(scores.softmax(-1), v).view(n, h, s, e)


class _PackedSelfAttention(nn.Module):
    """Holds ``in_proj_weight (3D, D)``, ``in_proj_bias (3D,)`` and ``out_proj``, the parameter
    layout of ``nn.MultiheadAttention`` with equal q/k/v widths; ``dropout.p`` is the dropout of
    the attention weights in training mode."""

    def __init__(self, d_model: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        nn.init.xavier_uniform_(self.in_proj_weight)


class TransformerEncoder(nn.Module):
    """A stack of :class:`TransformerEncoderLayer` (``layers.{i}``), no final norm."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int,
        num_layers: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout)
            for _ in range(num_layers)
        )

    def forward(self, x: torch.Tensor, attend: torch.Tensor | None = None) -> torch.Tensor:
        """Args:
            x: (N, S, D).
            attend: (N, S) bool, True = key may be attended to; None = all.

        Returns:
            (N, S, D).
        """
        for layer in self.layers:
            x = layer(x, attend)
        return x


def encode_valid_rows(
    encoder: nn.Module, x: torch.Tensor, valid: torch.Tensor, fill: torch.Tensor
) -> torch.Tensor:
    """``encoder`` over the sequences of ``x`` (N, S, D) where ``valid`` (N,) is True; the other
    rows take ``fill`` (N, S, D).

    The CPU runs only the valid rows; CUDA runs every row and selects, which needs no host sync
    (so the forward can be captured as a CUDA graph). Rows are independent, so the valid rows
    come out the same either way.
    """
    if x.is_cuda:
        return torch.where(valid[:, None, None], encoder(x), fill)
    keep = valid.nonzero().squeeze(1)
    return fill.index_copy(0, keep, encoder(x.index_select(0, keep)))


class InputProcess(nn.Module):
    """``poseEmbedding``: code vectors -> model width."""

    def __init__(self, input_feats: int, latent_dim: int) -> None:
        super().__init__()
        self.poseEmbedding = nn.Linear(input_feats, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., input_feats) -> (..., latent_dim)."""
        return self.poseEmbedding(x)


class OutputProcess(nn.Module):
    """Output head: ``dense`` -> GELU (erf) -> ``LayerNorm`` (eps 1e-12) -> ``poseFinal``.

    Channels-last here; upstream permutes the result to ``(B, out, S)``.
    """

    def __init__(self, out_feats: int, latent_dim: int) -> None:
        super().__init__()
        self.dense = nn.Linear(latent_dim, latent_dim)
        self.LayerNorm = nn.LayerNorm(latent_dim, eps=1e-12)
        self.poseFinal = nn.Linear(latent_dim, out_feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., latent_dim) -> (..., out_feats)."""
        return self.poseFinal(self.LayerNorm(F.gelu(self.dense(x))))


def sinusoid_table(length: int, d_model: int) -> torch.Tensor:
    """The standard 1D sinusoid, (length, d_model) float32: even channels sin, odd cos."""
    position = torch.arange(0, length, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe


def sinusoid_table_2d(height: int, width: int, d_model: int) -> torch.Tensor:
    """The fixed 2D sinusoid of MoGenTS, (height, width, d_model) float32.

    With half = d_model / 2 and w_k = exp(-2k ln(10000) / half): channels 2k / 2k+1 are
    sin / cos of (column * w_k) and channels half + 2k / half + 2k + 1 are sin / cos of
    (row * w_k). Row = time step, column = joint group.
    """
    if d_model % 4:
        raise ValueError(f"2D positional encoding needs d_model divisible by 4, got {d_model}")
    half = d_model // 2
    div_term = torch.exp(torch.arange(0.0, half, 2) * -(math.log(10000.0) / half))  # (half/2,)
    w = torch.arange(0.0, width).unsqueeze(1) * div_term  # (width, half/2)
    h = torch.arange(0.0, height).unsqueeze(1) * div_term  # (height, half/2)
    pe = torch.zeros(height, width, d_model)
    pe[:, :, 0:half:2] = torch.sin(w)[None]
    pe[:, :, 1:half:2] = torch.cos(w)[None]
    pe[:, :, half::2] = torch.sin(h)[:, None]
    pe[:, :, half + 1 :: 2] = torch.cos(h)[:, None]
    return pe


class PositionalEncoding(nn.Module):
    """Learned 1D positional table ``pe`` of shape (max_len, 1, D).

    MoGenTS registers it as a trained ``nn.Parameter`` initialised with the sinusoid: it must be
    loaded from the checkpoint, never recomputed. ``dropout`` is the training-mode dropout the
    model applies after adding the table.
    """

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0) -> None:
        super().__init__()
        self.pe = nn.Parameter(sinusoid_table(max_len, d_model).unsqueeze(1))
        self.dropout = nn.Dropout(dropout)

    def forward(self, length: int) -> torch.Tensor:
        """The first ``length`` rows, (length, D)."""
        return self.pe[:length, 0]


class PositionalEncoding2D(nn.Module):
    """Fixed 2D sinusoid, persistent buffer ``pe`` (height, width, D) as in the checkpoints;
    ``dropout`` is the training-mode dropout the model applies after each addition of it."""

    def __init__(
        self, d_model: int, height: int = 200, width: int = 50, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoid_table_2d(height, width, d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, rows: int, cols: int) -> torch.Tensor:
        """The table for grid rows ``[0, rows)`` and columns ``[0, cols)``, (rows, cols, D)."""
        return self.pe[:rows, :cols]


def add_backbone(
    module: nn.Module, config: Any, code_dim: int, *, two_d: bool, dropout: float = 0.0
) -> None:
    """Register the shared part of a MoGenTS transformer on ``module``, in the official order:
    ``input_process``, ``position_enc`` (1D, learned) or ``position2d_enc`` (2D, fixed), and
    ``seqTransEncoder`` plus, for 2D models, ``seqTransEncoder2`` (``attnj``) and
    ``seqTransEncoder3`` (``attnt``).

    Args:
        config: a mask or residual transformer config (latent_dim, n_heads, ff_size, n_layers,
            attnj, attnt).
        dropout: training-mode dropout of the encoders and of the positional encodings
            (no state: eval mode is unaffected).
    """
    d, heads, ff, layers = config.latent_dim, config.n_heads, config.ff_size, config.n_layers
    module.input_process = InputProcess(code_dim, d)
    if two_d:
        module.position2d_enc = PositionalEncoding2D(d, dropout=dropout)
    else:
        module.position_enc = PositionalEncoding(d, dropout=dropout)
    module.seqTransEncoder = TransformerEncoder(d, heads, ff, layers, dropout)
    if two_d and config.attnj:
        module.seqTransEncoder2 = TransformerEncoder(d, heads, ff, layers, dropout)
    if two_d and config.attnt:
        module.seqTransEncoder3 = TransformerEncoder(d, heads, ff, layers, dropout)
