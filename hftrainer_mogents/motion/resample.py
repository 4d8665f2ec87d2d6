"""Frame-rate conversion: linear interpolation for positions, slerp for rotations.

Two sampling grids are offered, named by ``mode``:

- ``"zoo"`` (default): the zoo bridge's grid, ``max(2, round(T * dst / src))`` frames spread
  evenly over ``[0, T - 1]`` (the clip keeps its first and last frame; Python's round, so .5
  goes to even). 120 frames at 20 fps become 180 at 30 fps.
- ``"exact"``: frame ``k`` of the output sits at source time ``k * src / dst``; there are
  ``floor((T - 1) * dst / src) + 1`` frames (timing exact, the last source frame kept only when
  it falls on the grid). 120 frames at 20 fps become 179 at 30 fps.
"""

from __future__ import annotations

import math
from typing import Literal, TypeVar

import numpy as np
import torch

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.motion.rotations import matrix_to_quat, quat_slerp, quat_to_matrix

__all__ = [
    "ResampleMode",
    "resample_times",
    "resample_linear",
    "resample_quat_slerp",
    "resample_rotmats_slerp",
]

ResampleMode = Literal["zoo", "exact"]
ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)


def resample_times(
    num_frames: int, src_fps: float, dst_fps: float, mode: ResampleMode = "zoo"
) -> np.ndarray:
    """Source-frame positions (fractional) of the output frames.

    Args:
        num_frames: frames of the source clip, ``>= 1``.
        src_fps: source frame rate.
        dst_fps: target frame rate.
        mode: ``"zoo"`` or ``"exact"`` (see the module docstring).

    Returns:
        (T_out,) float64 positions in ``[0, num_frames - 1]``.
    """
    if num_frames < 1:
        raise InvalidInputError(f"cannot resample an empty clip (num_frames={num_frames})")
    if src_fps <= 0 or dst_fps <= 0:
        raise InvalidInputError(f"frame rates must be positive, got {src_fps} -> {dst_fps}")
    if math.isclose(src_fps, dst_fps) or num_frames == 1:
        return np.arange(num_frames, dtype=np.float64)
    if mode == "zoo":
        count = max(2, int(round(num_frames * dst_fps / src_fps)))
        return np.linspace(0.0, num_frames - 1, count)
    if mode == "exact":
        step = src_fps / dst_fps
        count = int(math.floor((num_frames - 1) / step + 1e-9)) + 1
        return np.minimum(np.arange(count, dtype=np.float64) * step, num_frames - 1)
    raise InvalidInputError(f"unknown resample mode {mode!r}; use 'zoo' or 'exact'")


def _grid(times: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo = np.clip(np.floor(times).astype(np.int64), 0, num_frames - 1)
    hi = np.minimum(lo + 1, num_frames - 1)
    return lo, hi, times - lo


def resample_linear(
    x: ArrayT, src_fps: float, dst_fps: float, *, mode: ResampleMode = "zoo"
) -> ArrayT:
    """Linear interpolation along the first axis (time).

    Args:
        x: (T, ...) positions or any per-frame features; torch tensor or numpy array.
        src_fps: frame rate of ``x``.
        dst_fps: wanted frame rate.
        mode: sampling grid (module docstring).

    Returns:
        (T_out, ...) same type and dtype as ``x``.
    """
    times = resample_times(len(x), src_fps, dst_fps, mode)
    if len(times) == len(x) and np.array_equal(times, np.arange(len(x))):
        return x
    lo, hi, w = _grid(times, len(x))
    if isinstance(x, torch.Tensor):
        wt = torch.from_numpy(w).to(device=x.device, dtype=x.dtype)
        wt = wt.reshape((-1,) + (1,) * (x.dim() - 1))
        lo_t = torch.from_numpy(lo).to(x.device)
        hi_t = torch.from_numpy(hi).to(x.device)
        return x[lo_t] * (1 - wt) + x[hi_t] * wt
    wn = w.astype(x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
    return (x[lo] * (1 - wn) + x[hi] * wn).astype(x.dtype, copy=False)


def resample_quat_slerp(
    q: torch.Tensor, src_fps: float, dst_fps: float, *, mode: ResampleMode = "zoo"
) -> torch.Tensor:
    """Slerp of unit quaternions along the first axis (time), each track independently.

    Args:
        q: (T, ..., 4) quaternions (w, x, y, z).
        src_fps: frame rate of ``q``.
        dst_fps: wanted frame rate.
        mode: sampling grid (module docstring).

    Returns:
        (T_out, ..., 4) unit quaternions.
    """
    times = resample_times(len(q), src_fps, dst_fps, mode)
    if len(times) == len(q) and np.array_equal(times, np.arange(len(q))):
        return q
    lo, hi, w = _grid(times, len(q))
    wt = torch.from_numpy(w).to(device=q.device, dtype=q.dtype)
    wt = wt.reshape((-1,) + (1,) * (q.dim() - 1))
    lo_t = torch.from_numpy(lo).to(q.device)
    hi_t = torch.from_numpy(hi).to(q.device)
    return quat_slerp(q[lo_t], q[hi_t], wt.expand(q[lo_t].shape[:-1] + (1,)))


def resample_rotmats_slerp(
    rotmats: torch.Tensor, src_fps: float, dst_fps: float, *, mode: ResampleMode = "zoo"
) -> torch.Tensor:
    """Slerp of rotation matrices along the first axis (time).

    Args:
        rotmats: (T, ..., 3, 3) rotation matrices.
        src_fps: frame rate of ``rotmats``.
        dst_fps: wanted frame rate.
        mode: sampling grid (module docstring).

    Returns:
        (T_out, ..., 3, 3).
    """
    q = resample_quat_slerp(matrix_to_quat(rotmats), src_fps, dst_fps, mode=mode)
    return quat_to_matrix(q)
