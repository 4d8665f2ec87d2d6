"""The ``motion_135`` layout: SMPL translation and 22 rotations per frame, and its joints.

``motion_135`` (30 fps, y up, metres) is, per frame, ``[transl(3), 22 x rot6d]``: the SMPL
``transl`` parameter (the pelvis is at ``rest_pelvis + transl``, not at ``transl``) and the 22
SMPL parent-relative rotations (joint 0 = global orientation) in the ``rot6d_cols_interleaved``
layout ``R[:, :2]`` row-major, ``[R00, R01, R10, R11, R20, R21]`` (the zoo's "row" layout).
"""

from __future__ import annotations

import torch

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.motion.rotations import (
    matrix_to_rot6d_cols_interleaved,
    rot6d_cols_interleaved_to_matrix,
)
from hftrainer_mogents.motion.smpl135.body_model import NUM_JOINTS, SMPL_PARENTS
from hftrainer_mogents.motion.smpl135.kinematics import forward_kinematics

__all__ = [
    "DIM_SMPL135",
    "FPS",
    "smpl_params_to_motion135",
    "motion135_to_smpl_params",
    "smpl135_joints",
]

DIM_SMPL135 = 135
FPS = 30


def smpl_params_to_motion135(transl: torch.Tensor, local_rotmats: torch.Tensor) -> torch.Tensor:
    """Pack ``[transl, 22 x rot6d_cols_interleaved]``.

    Args:
        transl: (..., T, 3) SMPL ``transl``.
        local_rotmats: (..., T, 22, 3, 3).

    Returns:
        (..., T, 135).
    """
    d6 = matrix_to_rot6d_cols_interleaved(local_rotmats)  # (..., T, 22, 6)
    return torch.cat((transl, d6.flatten(-2)), dim=-1)


def motion135_to_smpl_params(m135: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unpack ``motion_135``.

    Args:
        m135: (..., T, 135).

    Returns:
        ``(transl (..., T, 3), local_rotmats (..., T, 22, 3, 3))``.
    """
    if m135.shape[-1] != DIM_SMPL135:
        raise InvalidInputError(f"expected (..., T, 135) motion_135, got {tuple(m135.shape)}")
    d6 = m135[..., 3:].reshape(m135.shape[:-1] + (NUM_JOINTS, 6))  # (..., T, 22, 6)
    return m135[..., :3], rot6d_cols_interleaved_to_matrix(d6)


def smpl135_joints(m135: torch.Tensor, rest_joints: torch.Tensor) -> torch.Tensor:
    """Joint positions of ``motion_135`` by forward kinematics.

    Args:
        m135: (..., T, 135).
        rest_joints: (22, 3) shaped rest joints.

    Returns:
        (..., T, 22, 3).
    """
    transl, rot = motion135_to_smpl_params(m135)
    rest = rest_joints[:NUM_JOINTS].to(m135)
    return forward_kinematics(rot, rest, SMPL_PARENTS[:NUM_JOINTS], transl).joints
