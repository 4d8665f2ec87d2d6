"""Numerics switches shared by the networks' callers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["full_fp32", "cpu_bf16_instructions", "CPU_BF16_EMULATED_WARNING"]

# measured on this project's CPUs: a bf16 Linear (1024 x 1024, batch 1024) takes 5.5x the float32
# time when oneDNN is limited to AVX2, and 0.26x with AMX
CPU_BF16_EMULATED_WARNING = (
    "dtype=bfloat16 on a CPU without bf16 instructions (no AMX, no AVX512-BF16): bf16 is emulated "
    "there, about 5x slower than float32 per matrix product; load with dtype=None (float32) "
    "unless you need bf16's numerics"
)


def cpu_bf16_instructions() -> str | None:
    """The CPU's native bf16 matrix instructions as torch sees them: ``"AMX"``,
    ``"AVX512-BF16"``, or None when bf16 is emulated (e.g. AVX2-only CPUs)."""
    if torch.cpu._is_amx_tile_supported():
        return "AMX"
    if torch.cpu._is_avx512_bf16_supported():
        return "AVX512-BF16"
    return None


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
