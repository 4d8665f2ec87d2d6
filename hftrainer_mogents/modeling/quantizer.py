"""Residual vector quantisation of the RVQ-VAE.

A residual quantiser holds ``Q`` codebooks; a latent vector is written as the sum of one code per
layer, each layer quantising what the previous layers left over. The only state is one buffer per
layer, ``layers.{i}.codebook`` of shape ``(K, D)`` (the official key names, so the official state
dict loads with ``strict=True``). The algorithms are the pure functions :func:`dequantize` and
:func:`residual_quantize`; the module only holds the codebooks.

Shape symbols: ``Q`` quantizer layers, ``q <= Q`` layers present in an index tensor, ``K`` codes
per codebook, ``D`` code width, ``N`` vectors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hftrainer_mogents.errors import InvalidInputError

__all__ = ["NO_CODE", "Codebook", "ResidualQuantizer", "dequantize", "residual_quantize"]

NO_CODE = -1  # index meaning "no code here": decodes to the zero vector


def dequantize(indices: Tensor, codebooks: Sequence[Tensor]) -> Tensor:
    """Sum, over layers, of the codes that ``indices`` select.

    Layer ``i`` of ``indices`` picks rows of ``codebooks[i]``. ``NO_CODE`` (-1) contributes a zero
    vector, and so do the layers beyond ``q`` (coarse index tensors decode as if the missing
    trailing layers were -1).

    Args:
        indices: ``(..., q)`` integer codes, ``q <= Q``, values in ``[0, K)`` or -1.
        codebooks: ``Q`` tensors ``(K, D)`` (all of the same shape, dtype and device).

    Returns:
        ``(..., D)`` in the codebooks' dtype.

    Raises:
        InvalidInputError: an index outside ``[-1, K)`` (checked on CPU; on other devices the
            lookup fails with a device-side error instead).
    """
    q = indices.shape[-1]
    if not 1 <= q <= len(codebooks):
        raise InvalidInputError(
            f"indices have {q} quantizer layers (last dim of shape {tuple(indices.shape)}); "
            f"expected 1..{len(codebooks)}"
        )
    num_codes, dim = codebooks[0].shape
    # One table for the q layers so that the lookup and the sum are a single embedding_bag.
    table = codebooks[0] if q == 1 else torch.cat(list(codebooks[:q]))  # (q*K, D)
    present = indices >= 0
    out_of_range = (indices < NO_CODE) | (indices >= num_codes)
    if indices.device.type == "cpu" and bool(out_of_range.any()):  # no device sync on CPU
        raise InvalidInputError(
            f"code indices must lie in [-1, {num_codes}); got values from "
            f"{int(indices.min())} to {int(indices.max())}"
        )
    offsets = torch.arange(q, device=indices.device) * num_codes  # (q,)
    flat = torch.where(present, indices + offsets, 0)  # (..., q) rows of table
    # Off the CPU an invalid code points past the table, so the lookup fails (device assert)
    # instead of silently reading a code of the next layer.
    flat = torch.where(out_of_range, table.shape[0], flat).reshape(-1, q)  # (N, q)
    weights = present.reshape(-1, q).to(table.dtype)  # 0 drops a -1 entry from the sum
    summed = F.embedding_bag(flat, table, mode="sum", per_sample_weights=weights)  # (N, D)
    return summed.view(*indices.shape[:-1], dim)


def residual_quantize(x: Tensor, codebooks: Sequence[Tensor]) -> Tensor:
    """Eval-mode residual quantisation: per layer, the nearest code (squared Euclidean distance)
    to the residual left by the previous layers.

    Args:
        x: ``(..., D)`` latent vectors.
        codebooks: ``Q`` tensors ``(K, D)``.

    Returns:
        ``(..., Q)`` int64 code indices.
    """
    dim = x.shape[-1]
    residual = x.reshape(-1, dim)  # (N, D)
    picked = []
    for codebook in codebooks:
        codes_t = codebook.t()  # (D, K)
        # The official expansion |r|^2 - 2 r.c + |c|^2, written the same way so that near-ties
        # round (and break) identically.
        distance = (
            residual.pow(2).sum(-1, keepdim=True)
            - 2 * (residual @ codes_t)
            + codes_t.pow(2).sum(0, keepdim=True)
        )  # (N, K)
        index = distance.argmin(-1)  # (N,)
        chosen = F.embedding(index, codebook)  # (N, D)
        # The official code subtracts the straight-through value r + (c - r) rather than c; keep
        # its rounding so the next layers see bit-identical residuals.
        residual = residual - (residual + (chosen - residual))
        picked.append(index)
    return torch.stack(picked, -1).view(*x.shape[:-1], len(codebooks))


class Codebook(nn.Module):
    """One quantizer layer: the buffer ``codebook (K, D)`` and nothing else.

    Args:
        nb_code: codes ``K``.
        code_dim: code width ``D``.
    """

    def __init__(self, nb_code: int, code_dim: int) -> None:
        super().__init__()
        self.register_buffer("codebook", torch.zeros(nb_code, code_dim))

    def extra_repr(self) -> str:
        return f"nb_code={self.codebook.shape[0]}, code_dim={self.codebook.shape[1]}"


class ResidualQuantizer(nn.Module):
    """``Q`` codebooks applied residually (the official ``ResidualVQ``, inference only).

    Args:
        nb_code: codes per codebook ``K``.
        code_dim: code width ``D``.
        num_quantizers: layers ``Q``.
        shared_codebook: every layer uses one and the same codebook (the state dict still lists
            ``layers.{i}.codebook`` for every ``i``, as upstream).
    """

    def __init__(
        self, nb_code: int, code_dim: int, num_quantizers: int, shared_codebook: bool = False
    ) -> None:
        super().__init__()
        if shared_codebook:
            layer = Codebook(nb_code, code_dim)
            self.layers = nn.ModuleList([layer] * num_quantizers)
        else:
            self.layers = nn.ModuleList(Codebook(nb_code, code_dim) for _ in range(num_quantizers))

    @property
    def codebooks(self) -> list[Tensor]:
        """The ``Q`` codebooks, each ``(K, D)``."""
        return [layer.codebook for layer in self.layers]

    def dequantize(self, indices: Tensor) -> Tensor:
        """Summed codes of ``indices (..., q)`` (-1 = no code) -> ``(..., D)``; see
        :func:`dequantize`."""
        return dequantize(indices, self.codebooks)

    def quantize(self, x: Tensor) -> Tensor:
        """Code indices of ``x (..., D)`` -> ``(..., Q)`` int64; see :func:`residual_quantize`."""
        return residual_quantize(x, self.codebooks)
