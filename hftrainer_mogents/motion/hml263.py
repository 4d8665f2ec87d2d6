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
    "joints_to_hml263",
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


def _yaw_to_face_z(forward: np.ndarray) -> np.ndarray:
    """Yaw angles ``psi`` with ``rot_y(psi) @ forward`` along +z, for horizontal ``forward``."""
    return -np.arctan2(forward[..., 0], forward[..., 2])


def _rot_y_np(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(angle), np.zeros_like(angle)
    return np.stack((c, zero, s, zero, one, zero, -s, zero, c), -1).reshape(angle.shape + (3, 3))


def _between_np(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    from hftrainer_mogents.motion.rotations import rotation_between

    return rotation_between(torch.from_numpy(np.array(u)), torch.from_numpy(np.array(v))).numpy()


def joints_to_hml263(joints: ArrayT, feet_thre: float = 0.002) -> ArrayT:
    """HumanML3D-263 features of a joint sequence (HumanML3D's ``process_file`` steps).

    Floor at 0, frame-0 root at the xz origin and facing +z, then the heading (from hips and
    shoulders, Gaussian-smoothed with sigma 20), the root channels, heading-free joints, HumanML3D's
    own IK rotations (``cont6d``), local velocities and foot contacts. Two differences from the
    dataset's script: the skeleton is kept (HumanML3D first retargets every clip to the bone
    lengths of its clip 000021), and a heading step across +-180 degrees is wrapped (HumanML3D's
    ``arcsin`` flips its sign). Useful for test data and for bringing joint data to 263 models.

    Args:
        joints: (T, 22, 3) joint positions (SMPL joint order, y up, metres), ``T >= 2``.
        feet_thre: squared-velocity threshold of the foot contacts.

    Returns:
        (T - 1, 263) features, same type as ``joints`` (float32 for numpy input, like the dataset).
    """
    from scipy.ndimage import gaussian_filter1d

    pos = (joints.detach().cpu().numpy() if isinstance(joints, torch.Tensor) else joints).astype(
        np.float64
    )
    if pos.ndim != 3 or pos.shape[1:] != (NUM_JOINTS, 3) or len(pos) < 2:
        raise InvalidInputError(f"expected (T >= 2, 22, 3) joints, got {tuple(pos.shape)}")
    r_hip, l_hip, sdr_r, sdr_l = FACE_JOINT_INDX
    # 1. floor, xz origin, frame 0 facing +z
    pos = pos.copy()
    pos[..., 1] -= pos[..., 1].min()
    pos -= pos[0, 0] * np.array([1.0, 0.0, 1.0])
    across = (pos[0, r_hip] - pos[0, l_hip]) + (pos[0, sdr_r] - pos[0, sdr_l])
    forward0 = np.cross(np.array([0.0, 1.0, 0.0]), across)
    pos = pos @ _rot_y_np(np.array(_yaw_to_face_z(forward0))).T
    global_pos = pos.copy()
    # 2. foot contacts
    fl, fr = FOOT_JOINTS_LEFT, FOOT_JOINTS_RIGHT
    vel2 = ((pos[1:] - pos[:-1]) ** 2).sum(-1)  # (T-1, 22)
    feet_l = (vel2[:, fl] < feet_thre).astype(np.float64)
    feet_r = (vel2[:, fr] < feet_thre).astype(np.float64)
    # 3. heading of every frame (HumanML3D's IK names the hips the other way round here)
    across = (pos[:, l_hip] - pos[:, r_hip]) + (pos[:, sdr_r] - pos[:, sdr_l])
    forward = np.cross(np.array([0.0, 1.0, 0.0]), across)
    forward = gaussian_filter1d(forward, 20, axis=0, mode="nearest")
    psi = _yaw_to_face_z(forward)
    psi[0] = 0.0  # HumanML3D sets the first root rotation to identity
    heading = _rot_y_np(psi)  # (T, 3, 3) world -> heading frame
    # 4. IK rotations: each bone's smallest rotation from its raw axis, chained from the root
    raw = np.asarray(RAW_OFFSETS, dtype=np.float64)
    local = np.tile(np.eye(3), (len(pos), NUM_JOINTS, 1, 1))
    for chain in KINEMATIC_CHAIN:
        acc = heading
        for parent, child in zip(chain[:-1], chain[1:]):
            glob = _between_np(
                np.broadcast_to(raw[child], (len(pos), 3)), pos[:, child] - pos[:, parent]
            )
            local[:, child] = np.swapaxes(acc, -1, -2) @ glob
            acc = glob
    rot6d = np.concatenate((local[..., :, 0], local[..., :, 1]), axis=-1)  # cols layout
    # 5. root channels
    step = np.angle(np.exp(1j * (psi[1:] - psi[:-1])))  # wrapped to (-pi, pi]
    root_vel = np.einsum("tij,tj->ti", heading[1:], pos[1:, 0] - pos[:-1, 0])
    # 6. heading-free positions ("ric") and local velocities
    ric = pos.copy()
    ric[..., 0] -= pos[:, :1, 0]
    ric[..., 2] -= pos[:, :1, 2]
    ric = np.einsum("tij,tkj->tki", heading, ric)
    local_vel = np.einsum("tij,tkj->tki", heading[:-1], global_pos[1:] - global_pos[:-1])
    feats = np.concatenate(
        (
            step[:, None] / 2,
            root_vel[:, [0, 2]],
            ric[:-1, 0, 1:2],
            ric[:-1, 1:].reshape(-1, 3 * (NUM_JOINTS - 1)),
            rot6d[:-1, 1:].reshape(-1, 6 * (NUM_JOINTS - 1)),
            local_vel.reshape(-1, 3 * NUM_JOINTS),
            feet_l,
            feet_r,
        ),
        axis=-1,
    )
    if isinstance(joints, torch.Tensor):
        return torch.from_numpy(feats).to(device=joints.device, dtype=joints.dtype)
    return feats.astype(np.float32)
