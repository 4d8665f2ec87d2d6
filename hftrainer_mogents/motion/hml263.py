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

from hftrainer_mogents.config import DIM_POSE as DIM_HML263
from hftrainer_mogents.config import FPS, NUM_JOINTS
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
    "HML263_TARGET_BONE_LENGTHS",
    "HML263_TARGET_OFFSETS",
    "HML263_SKELETONS",
    "joints_to_hml263",
]

# DIM_HML263 (263), NUM_JOINTS (22) and FPS (20) are the dataset's numbers of config.py, imported
# above: they are declared once, where the networks' config reads them too.

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

# Bone lengths (metres) of HumanML3D's target skeleton: frame 0 of its clip 000021, the skeleton
# every clip of the dataset is retargeted to before encoding (``uniform_skeleton``). The dataset
# computes them in float32 from ``joints/000021.npy``; the values are the published facts
# (research/bridge_272_skeleton.md, section 4), so no AMASS-derived file is needed here.
HML263_TARGET_BONE_LENGTHS = (
    0.0,
    0.1030739695,
    0.1098833680,
    0.1315682381,
    0.3936232626,
    0.3901882172,
    0.1431902200,
    0.4324331284,
    0.4256435037,
    0.0573647358,
    0.1433817595,
    0.1494190246,
    0.2193600535,
    0.1374867707,
    0.1433828324,
    0.1030392274,
    0.1316139847,
    0.1229843721,
    0.2568399906,
    0.2630918622,
    0.2660117149,
    0.2698763907,
)
# (22, 3) float32: each raw axis scaled by its bone length, as HumanML3D's ``get_offsets_joints``
HML263_TARGET_OFFSETS = (
    np.asarray(RAW_OFFSETS, dtype=np.float32)
    * np.asarray(HML263_TARGET_BONE_LENGTHS, dtype=np.float32)[:, None]
)
HML263_TARGET_OFFSETS.setflags(write=False)

# joints_to_hml263's skeleton modes: the dataset's retarget, or the input's own bone lengths
HML263_SKELETONS = ("humanml3d", "keep")
_LEG_JOINTS = (5, 8)  # right knee, right ankle: HumanML3D scales the root by this leg's length

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


def _joints_to_hml263_keep(joints: ArrayT, feet_thre: float) -> ArrayT:
    """``skeleton="keep"``: HumanML3D's steps on the input's own bone lengths, heading wrapped."""
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


# --- HumanML3D's own processing (``skeleton="humanml3d"``) ------------------------------------
# The dataset's script converts to float32 torch tensors inside every quaternion helper and keeps
# the intermediate numpy arrays in float64 between them. The helpers below cast at the same
# points, so the features agree with the dataset's files to float32 rounding and the foot
# contacts (a threshold on squared velocities) agree exactly.


def _t32(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).float()


def _qmul32(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Hamilton product ``q * r`` (w, x, y, z), in float32 like the dataset's helper."""
    a, b = _t32(q), _t32(r)
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    # sums in the dataset's order (terms = r outer q), so the float32 rounding is the same
    w = bw * aw - bx * ax - by * ay - bz * az
    x = bw * ax + bx * aw - by * az + bz * ay
    y = bw * ay + bx * az + by * aw - bz * ax
    z = bw * az - bx * ay + by * ax + bz * aw
    return torch.stack((w, x, y, z), -1).numpy()


def _qinv32(q: np.ndarray) -> np.ndarray:
    out = _t32(q).clone()
    out[..., 1:] = -out[..., 1:]
    return out.numpy()


def _qrot32(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate ``v`` by the unit quaternions ``q``, float32."""
    qt, vt = _t32(q), _t32(v)
    qvec = qt[..., 1:]
    uv = torch.linalg.cross(qvec, vt, dim=-1)
    uuv = torch.linalg.cross(qvec, uv, dim=-1)
    return (vt + 2 * (qt[..., :1] * uv + uuv)).numpy()


def _qbetween32(v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
    """The shortest-arc unit quaternion taking ``v0`` onto ``v1``, float32."""
    a, b = _t32(v0), _t32(v1)
    v = torch.linalg.cross(a, b, dim=-1)
    w = torch.sqrt((a**2).sum(-1, keepdim=True) * (b**2).sum(-1, keepdim=True)) + (a * b).sum(
        -1, keepdim=True
    )
    q = torch.cat((w, v), -1)
    return (q / torch.norm(q, dim=-1, keepdim=True)).numpy()


def _quat_to_cont6d32(q: np.ndarray) -> np.ndarray:
    """First two matrix columns of unit quaternions, float32 (HumanML3D's ``cont6d``)."""
    qt = _t32(q)
    r, i, j, k = qt.unbind(-1)
    two_s = 2.0 / (qt * qt).sum(-1)
    col0 = torch.stack(
        (1 - two_s * (j * j + k * k), two_s * (i * j + k * r), two_s * (i * k - j * r)), -1
    )
    col1 = torch.stack(
        (two_s * (i * j - k * r), 1 - two_s * (i * i + k * k), two_s * (j * k + i * r)), -1
    )
    return torch.cat((col0, col1), -1).numpy()


def _dataset_ik(joints: np.ndarray, smooth_forward: bool) -> np.ndarray:
    """HumanML3D's ``inverse_kinematics_np``: (T, 22, 4) local quaternions.

    Two quirks of the dataset are kept on purpose: the face joints are unpacked as
    ``(l_hip, r_hip, ...)`` so the across vector is ``(J1 - J2) + (J17 - J16)``, and the first
    frame's root rotation is set to the identity.
    """
    from scipy.ndimage import gaussian_filter1d

    l_hip, r_hip, sdr_r, sdr_l = FACE_JOINT_INDX
    across = (joints[:, r_hip] - joints[:, l_hip]) + (joints[:, sdr_r] - joints[:, sdr_l])
    across = across / np.sqrt((across**2).sum(axis=-1))[:, None]
    forward = np.cross(np.array([[0, 1, 0]]), across, axis=-1)
    if smooth_forward:
        forward = gaussian_filter1d(forward, 20, axis=0, mode="nearest")
    forward = forward / np.sqrt((forward**2).sum(axis=-1))[..., None]
    target = np.array([[0, 0, 1]]).repeat(len(forward), axis=0)
    root_quat = _qbetween32(forward, target)
    root_quat[0] = np.array([1.0, 0.0, 0.0, 0.0])
    quat = np.zeros(joints.shape[:-1] + (4,))
    quat[:, 0] = root_quat
    raw = np.asarray(RAW_OFFSETS)
    for chain in KINEMATIC_CHAIN:
        acc = root_quat
        for parent, child in zip(chain[:-1], chain[1:]):
            u = raw[child][None].repeat(len(joints), axis=0)
            v = joints[:, child] - joints[:, parent]
            v = v / np.sqrt((v**2).sum(axis=-1))[:, None]
            local = _qmul32(_qinv32(acc), _qbetween32(u, v))
            quat[:, child] = local
            acc = _qmul32(acc, local)
    return quat


def _dataset_fk(quat: np.ndarray, root: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """HumanML3D's ``forward_kinematics_np``: every chain starts from the root rotation."""
    joints = np.zeros(quat.shape[:-1] + (3,))
    joints[:, 0] = root
    offs = np.broadcast_to(offsets, (len(quat),) + offsets.shape)
    for chain in KINEMATIC_CHAIN:
        acc = quat[:, 0]
        for parent, child in zip(chain[:-1], chain[1:]):
            acc = _qmul32(acc, quat[:, child])
            joints[:, child] = _qrot32(acc, offs[:, child]) + joints[:, parent]
    return joints


def _bone_offsets32(frame: np.ndarray) -> np.ndarray:
    """HumanML3D's ``get_offsets_joints``: raw axes scaled by the frame's bone lengths (float32)."""
    pts = _t32(frame)
    offs = torch.tensor(RAW_OFFSETS, dtype=torch.float32)
    for j in range(1, NUM_JOINTS):
        offs[j] = torch.norm(pts[j] - pts[PARENTS[j]], p=2, dim=0) * offs[j]
    return offs.numpy()


def _uniform_skeleton(positions: np.ndarray) -> np.ndarray:
    """Retarget to clip 000021's bone lengths: the dataset's IK, then its FK on the target."""
    src = _bone_offsets32(positions[0])
    tgt = HML263_TARGET_OFFSETS
    a, b = _LEG_JOINTS
    scale = (np.abs(tgt[a]).max() + np.abs(tgt[b]).max()) / (
        np.abs(src[a]).max() + np.abs(src[b]).max()
    )
    quat = _dataset_ik(positions, smooth_forward=False)
    return _dataset_fk(quat, positions[:, 0] * scale, tgt)


def _joints_to_hml263_dataset(joints: ArrayT, feet_thre: float) -> ArrayT:
    """``skeleton="humanml3d"``: HumanML3D's ``process_file``, step by step."""
    src = joints.detach().cpu().numpy() if isinstance(joints, torch.Tensor) else joints
    if src.ndim != 3 or src.shape[1:] != (NUM_JOINTS, 3) or len(src) < 2:
        raise InvalidInputError(f"expected (T >= 2, 22, 3) joints, got {tuple(src.shape)}")
    # the dataset's joint files are float32; its processing starts from them
    pos = _uniform_skeleton(np.asarray(src, dtype=np.float32))
    # floor, frame-0 root at the xz origin
    pos[:, :, 1] -= pos.min(axis=0).min(axis=0)[1]
    init = pos[0]
    pos = pos - init[0] * np.array([1, 0, 1])
    # frame 0 faces +z (here the hips are named the right way round)
    r_hip, l_hip, sdr_r, sdr_l = FACE_JOINT_INDX
    across = (init[r_hip] - init[l_hip]) + (init[sdr_r] - init[sdr_l])
    across = across / np.sqrt((across**2).sum(axis=-1))[..., None]
    forward = np.cross(np.array([[0, 1, 0]]), across, axis=-1)
    forward = forward / np.sqrt((forward**2).sum(axis=-1))[..., None]
    face = np.ones(pos.shape[:-1] + (4,)) * _qbetween32(forward, np.array([[0, 0, 1]]))
    pos = _qrot32(face, pos)
    glob = pos.copy()
    # foot contacts: squared per-frame displacement under the threshold, summed x + y + z
    fl, fr = list(FOOT_JOINTS_LEFT), list(FOOT_JOINTS_RIGHT)
    thre = np.array([feet_thre, feet_thre])

    def contact(idx: list[int]) -> np.ndarray:
        d = [(pos[1:, idx, k] - pos[:-1, idx, k]) ** 2 for k in range(3)]
        return ((d[0] + d[1] + d[2]) < thre).astype(np.float32)

    feet_l, feet_r = contact(fl), contact(fr)
    # rotations with the smoothed heading; root channels from it
    quat = _dataset_ik(pos, smooth_forward=True)
    cont6d = _quat_to_cont6d32(quat)
    r_rot = quat[:, 0].copy()
    velocity = _qrot32(r_rot[1:], (pos[1:, 0] - pos[:-1, 0]).copy())
    r_velocity = _qmul32(r_rot[1:], _qinv32(r_rot[:-1]))
    # heading-free positions
    ric = pos.copy()
    ric[..., 0] -= ric[:, 0:1, 0]
    ric[..., 2] -= ric[:, 0:1, 2]
    ric = _qrot32(np.repeat(r_rot[:, None], ric.shape[1], axis=1), ric)
    local_vel = _qrot32(np.repeat(r_rot[:-1, None], glob.shape[1], axis=1), glob[1:] - glob[:-1])
    # the dataset takes arcsin of the quaternion's y: a heading step past 180 degrees flips sign
    feats = np.concatenate(
        (
            np.arcsin(r_velocity[:, 2:3]),
            velocity[:, [0, 2]],
            ric[:-1, 0, 1:2],
            ric[:-1, 1:].reshape(len(ric) - 1, -1),
            cont6d[:-1, 1:].reshape(len(cont6d) - 1, -1),
            local_vel.reshape(len(local_vel), -1),
            feet_l,
            feet_r,
        ),
        axis=-1,
    )
    if isinstance(joints, torch.Tensor):
        return torch.from_numpy(feats).to(device=joints.device, dtype=joints.dtype)
    return feats.astype(np.float32)


def joints_to_hml263(
    joints: ArrayT, feet_thre: float = 0.002, *, skeleton: str = "humanml3d"
) -> ArrayT:
    """HumanML3D-263 features of a 20 fps joint sequence.

    ``skeleton="humanml3d"`` (default) is the dataset's own processing (``motion_representation``'s
    ``process_file``), so features are comparable with HumanML3D's files and its evaluator: the
    clip is first retargeted to the bone lengths of the dataset's clip 000021
    (:data:`HML263_TARGET_OFFSETS`; the root path scaled by the leg-length ratio), then floor,
    frame-0 root at the xz origin facing +z, the heading from the smoothed across-hips/shoulders
    direction, HumanML3D's IK rotations, velocities and foot contacts, with the dataset's float32
    steps and its quirks (the heading step is ``arcsin`` of the quaternion, not wrapped).

    ``skeleton="keep"`` keeps the input's bone lengths (no retarget) and wraps a heading step
    across +-180 degrees: for joints that must come back unchanged from the features (a round
    trip, or a motion whose skeleton is the point, e.g. SMPL joints fitted again by the bridge).

    Args:
        joints: (T, 22, 3) joint positions (SMPL joint order, y up, metres, 20 fps), ``T >= 2``.
            The dataset's mode reads them as float32, like the dataset's joint files.
        feet_thre: squared-velocity threshold of the foot contacts.
        skeleton: ``"humanml3d"`` or ``"keep"`` (:data:`HML263_SKELETONS`).

    Returns:
        (T - 1, 263) features, same type as ``joints`` (float32 for numpy input, like the dataset).
    """
    if skeleton == "humanml3d":
        return _joints_to_hml263_dataset(joints, feet_thre)
    if skeleton == "keep":
        return _joints_to_hml263_keep(joints, feet_thre)
    raise InvalidInputError(
        f"unknown skeleton {skeleton!r} for joints_to_hml263; use one of {list(HML263_SKELETONS)}"
    )
