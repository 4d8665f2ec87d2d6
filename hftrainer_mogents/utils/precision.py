"""Numerics switches shared by the networks' callers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["full_fp32"]


@contextlib.contextmanager
def full_fp32() -> Iterator[None]:
    """Run float32 CUDA kernels in full float32: no TF32 in cuDNN (convolutions, GRUs) nor in
    cuBLAS matmuls, for the duration of the block.

    torch lets cuDNN use TF32 by default, which moves float32 results by ~1e-3 relative (the
    HumanML3D evaluator's text GRU by up to 4e-4 on an H200); with it off, CUDA results match the
    CPU's within float32 round-off. Reduced-precision tensors are not affected.
    """
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
