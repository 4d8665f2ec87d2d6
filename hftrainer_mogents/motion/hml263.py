"""HumanML3D-263 features: layout, skeleton constants, and joint recovery.

A HumanML3D-263 frame (20 fps, 22 joints, y up, metres) is, in order:

====================  ==========  ===================================================================
slice                 width       content
====================  ==========  ===================================================================
``[0:1]``             1           root angular velocity about +y (half-angle units, see below)
``[1:3]``             2           root linear velocity in x, z, in the root's heading frame
``[3:4]``             1           root height
``[4:67]``            21 x 3      joints 1..21 relative to the root, heading removed ("ric")
``[67:193]``          21 x 6      joints 1..21 rotations, 6D ``rot6d_cols`` layout ("cont6d")
``[193:259]``         22 x 3      joint velocities in the heading frame
``[259:263]``         4           foot contacts (left ankle, left foot, right ankle, right foot)
====================  ==========  ===================================================================

The root rotation is a yaw only. Its angle accumulates the per-frame velocities ``[0]`` starting
from 0 at frame 0, and the quaternion is ``(cos a, 0, sin a, 0)``: ``a`` is half the yaw angle, as
in the HumanML3D processing code, and the quaternion maps world directions into the heading frame.

Every function takes a torch tensor or a numpy array and returns the same type, with any number
of leading batch dimensions.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.motion.rotations import (
    quat_apply,
    quat_conjugate,
    quat_to_matrix,
    rot6d_cols_to_matrix,
)

__all__ = [
    "DIM_HML263",
    "NUM_JOINTS",
    "FPS",
    "JOINT_NAMES",
    "PARENTS",
    "KINEMATIC_CHAIN",
    "RAW_OFFSETS",
    "FACE_JOINT_INDX",
    "FOOT_JOINTS_LEFT",
    "FOOT_JOINTS_RIGHT",
    "ROOT_ROT_VEL",
    "ROOT_LIN_VEL",
    "ROOT_Y",
    "RIC",
    "ROT",
    "LOCAL_VEL",
    "FOOT_CONTACT",
    "recover_root_rot_pos",
    "recover_from_ric",
    "recover_global_bone_rotations",
]

DIM_HML263 = 263
NUM_JOINTS = 22
FPS = 20

# SMPL's first 22 joints; HumanML3D, SMPL motion_135 and MotionStreamer-272 use this order.
JOINT_NAMES = [
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
]

# parent of each joint (-1 for the root); the same tree as SMPL joints 0..21
PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]

# HumanML3D's chains: right leg, left leg, spine to head, right arm, left arm. The arms start at
# spine3 (9) but HumanML3D's own IK/FK accumulates them from the root rotation, not spine3's.
KINEMATIC_CHAIN = [
    [0, 2, 5, 8, 11],
    [0, 1, 4, 7, 10],
    [0, 3, 6, 9, 12, 15],
    [9, 14, 17, 19, 21],
    [9, 13, 16, 18, 20],
]

# HumanML3D's rest direction of the bone ending at each joint (its rotations are relative to these)
RAW_OFFSETS = [
    [0, 0, 0],
    [1, 0, 0],
    [-1, 0, 0],
    [0, 1, 0],
    [0, -1, 0],
    [0, -1, 0],
    [0, 1, 0],
    [0, -1, 0],
    [0, -1, 0],
    [0, 1, 0],
    [0, 0, 1],
    [0, 0, 1],
    [0, 1, 0],
    [1, 0, 0],
    [-1, 0, 0],
    [0, 0, 1],
    [0, -1, 0],
    [0, -1, 0],
    [0, -1, 0],
    [0, -1, 0],
    [0, -1, 0],
    [0, -1, 0],
]

# right hip, left hip, right shoulder, left shoulder (HumanML3D's facing-direction joints)
FACE_JOINT_INDX = [2, 1, 17, 16]
FOOT_JOINTS_LEFT = [7, 10]  # left ankle, left foot
FOOT_JOINTS_RIGHT = [8, 11]

ROOT_ROT_VEL = slice(0, 1)
ROOT_LIN_VEL = slice(1, 3)
ROOT_Y = slice(3, 4)
RIC = slice(4, 4 + 3 * (NUM_JOINTS - 1))  # 4:67
ROT = slice(RIC.stop, RIC.stop + 6 * (NUM_JOINTS - 1))  # 67:193
LOCAL_VEL = slice(ROT.stop, ROT.stop + 3 * NUM_JOINTS)  # 193:259
FOOT_CONTACT = slice(LOCAL_VEL.stop, LOCAL_VEL.stop + 4)  # 259:263

ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)


def _to_tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    return torch.from_numpy(np.ascontiguousarray(x))


def _like(result: torch.Tensor, ref: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    return result if isinstance(ref, torch.Tensor) else result.numpy()


def _recover_root(data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # 1. yaw half-angle: 0 at frame 0, then the running sum of the previous frames' velocities
    rot_vel = data[..., 0]
    ang = torch.zeros_like(rot_vel)
    ang[..., 1:] = rot_vel[..., :-1]
    ang = torch.cumsum(ang, dim=-1)
    quat = torch.zeros(data.shape[:-1] + (4,), dtype=data.dtype, device=data.device)
    quat[..., 0] = torch.cos(ang)
    quat[..., 2] = torch.sin(ang)
    # 2. root xz: previous frame's heading-frame velocity, back to world, summed
    pos = torch.zeros(data.shape[:-1] + (3,), dtype=data.dtype, device=data.device)
    pos[..., 1:, 0] = data[..., :-1, 1]
    pos[..., 1:, 2] = data[..., :-1, 2]
    pos = quat_apply(quat_conjugate(quat), pos)
    pos = torch.cumsum(pos, dim=-2)
    pos[..., 1] = data[..., 3]
    return quat, pos


def _check(features: torch.Tensor, joints_num: int) -> None:
    need = 4 + 3 * (joints_num - 1)
    if features.dim() < 2 or features.shape[-1] < need:
        raise InvalidInputError(
            f"expected HumanML3D features of shape (..., T, {DIM_HML263}) (at least {need} "
            f"channels for {joints_num} joints), got {tuple(features.shape)}"
        )


def recover_root_rot_pos(features: ArrayT) -> tuple[ArrayT, ArrayT]:
    """Root yaw quaternion and root position of every frame.

    Args:
        features: (..., T, 263) HumanML3D features, physical units (not normalised).

    Returns:
        ``(quat, pos)``: quat (..., T, 4) ``(cos a, 0, sin a, 0)`` mapping world directions into the
        heading frame; pos (..., T, 3) world root position (y = the stored root height).
    """
    data = _to_tensor(features)
    _check(data, NUM_JOINTS)
    quat, pos = _recover_root(data)
    return _like(quat, features), _like(pos, features)  # type: ignore[return-value]


def recover_from_ric(features: ArrayT, joints_num: int = NUM_JOINTS) -> ArrayT:
    """World joint positions from the root channels and the heading-free positions ("ric").

    Args:
        features: (..., T, 263) HumanML3D features, physical units (not normalised).
        joints_num: joints of the skeleton (22 for HumanML3D, 21 for KIT-ML).

    Returns:
        (..., T, joints_num, 3) joint positions in metres, y up; same type, dtype and device as
        ``features``.
    """
    data = _to_tensor(features)
    _check(data, joints_num)
    quat, root = _recover_root(data)
    local = data[..., 4 : 4 + 3 * (joints_num - 1)]
    local = local.reshape(local.shape[:-1] + (joints_num - 1, 3))  # (..., T, J-1, 3)
    inv = quat_conjugate(quat)[..., None, :].expand(local.shape[:-1] + (4,))
    world = quat_apply(inv, local)
    world = (
        world
        + torch.stack((root[..., 0], torch.zeros_like(root[..., 0]), root[..., 2]), dim=-1)[
            ..., None, :
        ]
    )
    joints = torch.cat((root[..., None, :], world), dim=-2)  # (..., T, J, 3)
    return _like(joints, features)  # type: ignore[return-value]


def recover_global_bone_rotations(features: ArrayT) -> ArrayT:
    """HumanML3D's own global rotations, accumulated from the stored root yaw and ``cont6d``.

    Entry ``k >= 1`` is the world rotation of the bone that *ends* at joint ``k``: it maps
    :data:`RAW_OFFSETS` ``[k]`` onto the direction from ``PARENTS[k]`` to ``k``. Following
    HumanML3D's forward kinematics, each chain of :data:`KINEMATIC_CHAIN` starts from the root
    yaw (the arm chains too). Entry 0 is the root yaw quaternion as a matrix (world to heading
    frame). These rotations only fix each bone's direction; the twist about it is arbitrary.

    Args:
        features: (..., T, 263) HumanML3D features.

    Returns:
        (..., T, 22, 3, 3) rotation matrices (column vectors), same type as ``features``.
    """
    data = _to_tensor(features)
    _check(data, NUM_JOINTS)
    if data.shape[-1] < ROT.stop:
        raise InvalidInputError(
            f"expected (..., T, {DIM_HML263}) features, got {tuple(data.shape)}"
        )
    quat, _ = _recover_root(data)
    local = rot6d_cols_to_matrix(
        data[..., ROT].reshape(data.shape[:-1] + (NUM_JOINTS - 1, 6))  # (..., T, 21, 6)
    )  # (..., T, 21, 3, 3)
    root = quat_to_matrix(quat)  # (..., T, 3, 3)
    glob: list[torch.Tensor | None] = [None] * NUM_JOINTS
    glob[0] = root
    for chain in KINEMATIC_CHAIN:
        acc = root
        for joint in chain[1:]:
            acc = acc @ local[..., joint - 1, :, :]
            glob[joint] = acc
    out = torch.stack(glob, dim=-3)  # type: ignore[arg-type]  # (..., T, 22, 3, 3)
    return _like(out, features)  # type: ignore[return-value]
