"""MotionStreamer-272: encoding from SMPL joints and rotations, and recovery of joints/rotations.

Per frame (30 fps, 22 joints, y up, metres):

==============  ====  ==========================================================================
slice           size  content
==============  ====  ==========================================================================
``[0:2]``       2     root x/z velocity in the previous frame's heading-free frame (row 0: 0)
``[2:8]``       6     heading change ``rot_y(h[t] - h[t-1])``, ``rot6d_rows`` (row 0: identity)
``[8:74]``      66    joints, floor at 0, root xz at the origin per frame, heading removed
``[74:140]``    66    differences of ``[8:74]`` between consecutive frames (row 0: 0)
``[140:272]``   132   22 rotations, ``rot6d_rows``: joint 0 the root with the heading removed,
                      joints 1..21 SMPL parent-relative
==============  ====  ==========================================================================

The heading is ``h = -atan2(R0[0, 2], R0[2, 2])`` of the root rotation ``R0``; the floor is the
lowest joint of the whole clip and the origin the frame-0 root. The encoding does not change under
a global yaw plus translation of the input, so MotionStreamer's "face +z" preprocessing step is not
needed. Recovery follows MotionStreamer: heading accumulated from identity at frame 0 (so the
recovered clip faces +z at frame 0), root xz from the velocities, y as stored.

Everything is computed in the dtype of the input (use float64 for reference precision).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.motion import hml263
from hftrainer_mogents.motion.resample import ResampleMode, resample_linear
from hftrainer_mogents.motion.rotations import (
    matrix_to_axis_angle,
    matrix_to_rot6d_rows,
    rot6d_rows_to_matrix,
    rot_y,
)
from hftrainer_mogents.motion.skeletons import (
    CANON272_BONE_OFFSETS,
    MS272_SKELETONS,
    offsets_to_rest_joints,
)
from hftrainer_mogents.motion.smpl135 import (
    NUM_JOINTS,
    SMPL_PARENTS,
    SMPLModel,
    forward_kinematics,
    motion135_to_smpl_params,
    resolve_model,
    smpl_params_to_motion135,
)

__all__ = [
    "DIM_MS272",
    "FPS",
    "ROOT_VEL",
    "HEADING_VEL",
    "POSITIONS",
    "VELOCITIES",
    "ROTATIONS",
    "STD_GROUPS",
    "group_std",
    "encode_272",
    "smpl_to_272",
    "motion135_to_272",
    "recover_joints_272",
    "Recovered272",
    "recover_rotations_272",
    "recover_smpl85",
    "ms272_to_motion135",
    "smpl135_to_ms272",
    "ms272_to_joints22",
    "ms272_to_smpl135",
    "ms272_to_hml263",
]

DIM_MS272 = 272
FPS = 30
ROOT_VEL = slice(0, 2)
HEADING_VEL = slice(2, 8)
POSITIONS = slice(8, 8 + 3 * NUM_JOINTS)  # 8:74
VELOCITIES = slice(POSITIONS.stop, POSITIONS.stop + 3 * NUM_JOINTS)  # 74:140
ROTATIONS = slice(VELOCITIES.stop, VELOCITIES.stop + 6 * NUM_JOINTS)  # 140:272
# MotionStreamer's Std.npy is averaged within each of these groups
STD_GROUPS = (ROOT_VEL, HEADING_VEL, POSITIONS, VELOCITIES, ROTATIONS)


def group_std(std: np.ndarray) -> np.ndarray:
    """Replace each group of :data:`STD_GROUPS` by its mean (MotionStreamer's ``cal_mean_std``).

    Args:
        std: (272,) per-dimension standard deviations.

    Returns:
        (272,) grouped.
    """
    out = np.asarray(std, dtype=np.float64).copy()
    for group in STD_GROUPS:
        out[group] = out[group].mean()
    return out


def _check(x: torch.Tensor, width: int, what: str) -> None:
    if x.dim() < 2 or x.shape[-1] != width:
        raise InvalidInputError(f"expected {what} of shape (..., T, {width}), got {tuple(x.shape)}")


def encode_272(joints: torch.Tensor, local_rotmats: torch.Tensor) -> torch.Tensor:
    """MotionStreamer-272 features from joint positions and SMPL rotations.

    Args:
        joints: (..., T, 22, 3) world joints (y up).
        local_rotmats: (..., T, 22, 3, 3) SMPL parent-relative rotations (joint 0 global).

    Returns:
        (..., T, 272) in the dtype of ``joints``.
    """
    if joints.shape[-2:] != (NUM_JOINTS, 3) or local_rotmats.shape[-3:] != (NUM_JOINTS, 3, 3):
        raise InvalidInputError(
            f"expected joints (..., T, 22, 3) and rotations (..., T, 22, 3, 3), got "
            f"{tuple(joints.shape)} and {tuple(local_rotmats.shape)}"
        )
    dtype = joints.dtype
    rot = local_rotmats.to(dtype)
    frames = joints.shape[-3]
    # 1. floor at the clip's lowest joint, frame-0 root at the xz origin
    origin = joints[..., 0, 0, :].clone()  # (..., 3)
    origin[..., 1] = joints[..., 1].amin(dim=(-1, -2))
    pos = joints - origin[..., None, None, :]
    root_vel = pos[..., 1:, 0, :] - pos[..., :-1, 0, :]  # (..., T-1, 3), before centring
    # 2. per-frame xz centring
    centre = pos[..., :1, :].clone()  # (..., T, 1, 3)
    centre[..., 1] = 0
    pos = pos - centre
    # 3. heading from the root rotation; H maps world into the heading-free frame
    heading = -torch.atan2(rot[..., 0, 0, 2], rot[..., 0, 2, 2])  # (..., T)
    h_mat = rot_y(heading)  # (..., T, 3, 3)
    pos_nh = (h_mat[..., None, :, :] @ pos[..., None])[..., 0]  # (..., T, 22, 3)
    vel_nh = pos_nh[..., 1:, :, :] - pos_nh[..., :-1, :, :]
    root_vel_nh = (h_mat[..., :-1, :, :] @ root_vel[..., None])[..., 0]  # (..., T-1, 3)
    rot = torch.cat((h_mat[..., None, :, :] @ rot[..., :1, :, :], rot[..., 1:, :, :]), dim=-3)
    dheading = rot_y(heading[..., 1:] - heading[..., :-1])  # (..., T-1, 3, 3)
    # 4. pack
    lead = joints.shape[:-3]
    out = torch.zeros(lead + (frames, DIM_MS272), dtype=dtype, device=joints.device)
    out[..., 0, 2] = 1
    out[..., 0, 6] = 1
    out[..., 1:, HEADING_VEL] = matrix_to_rot6d_rows(dheading)
    out[..., 1:, 0] = root_vel_nh[..., 0]
    out[..., 1:, 1] = root_vel_nh[..., 2]
    out[..., POSITIONS] = pos_nh.flatten(-2)
    out[..., 1:, VELOCITIES] = vel_nh.flatten(-2)
    out[..., ROTATIONS] = matrix_to_rot6d_rows(rot).flatten(-2)
    return out


def smpl_to_272(
    local_rotmats: torch.Tensor, transl: torch.Tensor, rest_joints: torch.Tensor
) -> torch.Tensor:
    """272 features of SMPL parameters: forward kinematics, then :func:`encode_272`.

    Args:
        local_rotmats: (..., T, 22, 3, 3) parent-relative rotations.
        transl: (..., T, 3) SMPL ``transl``.
        rest_joints: (22, 3) shaped rest joints of the body model.

    Returns:
        (..., T, 272).
    """
    rest = rest_joints[:NUM_JOINTS].to(transl)
    joints = forward_kinematics(local_rotmats.to(transl), rest, SMPL_PARENTS[:NUM_JOINTS], transl)
    return encode_272(joints.joints, local_rotmats)


def _skeleton_rest(
    skeleton: str, rest_joints: torch.Tensor | None, what: str = "motion135_to_272"
) -> torch.Tensor:
    """The (22, 3) rest joints FK runs on for ``skeleton`` (see :data:`MS272_SKELETONS`)."""
    if skeleton == "canon272":
        if rest_joints is not None:
            raise InvalidInputError(
                f"{what}: rest_joints are only used with skeleton='smpl'; the default "
                "skeleton='canon272' is the zoo's fixed skeleton (drop rest_joints, or pass "
                "skeleton='smpl')"
            )
        return torch.from_numpy(
            offsets_to_rest_joints(CANON272_BONE_OFFSETS, SMPL_PARENTS[:NUM_JOINTS])
        )
    if skeleton == "smpl":
        if rest_joints is None:
            raise InvalidInputError(
                f"{what}: skeleton='smpl' needs the body model's rest joints (or the model); "
                "the default skeleton='canon272' needs none"
            )
        return rest_joints[:NUM_JOINTS]
    raise InvalidInputError(
        f"{what}: unknown skeleton {skeleton!r}; use one of {list(MS272_SKELETONS)}"
    )


def motion135_to_272(
    m135: torch.Tensor,
    rest_joints: torch.Tensor | None = None,
    *,
    skeleton: str = "canon272",
) -> torch.Tensor:
    """Converter core ``smpl135 -> ms272``: forward kinematics of ``motion_135``, then the encoding.

    ``skeleton="canon272"`` (default) places the joints on the zoo's fixed skeleton
    (:data:`~hftrainer_mogents.motion.skeletons.CANON272_BONE_OFFSETS`) with the root at
    ``motion_135[:, :3]``, as the zoo's converter that produced its MotionStreamer-272 numbers
    does; no body model is needed. ``skeleton="smpl"`` uses the body model's rest joints
    (``rest_joints``, e.g. SMPL neutral with betas 0), the joints SMPL itself would give. The
    rotation blocks are the same either way; the position blocks differ by centimetres.

    Args:
        m135: (..., T, 135) ``motion_135``.
        rest_joints: (22, 3) shaped rest joints, only with ``skeleton="smpl"``.
        skeleton: ``"canon272"`` or ``"smpl"``.

    Returns:
        (..., T, 272).
    """
    rest = _skeleton_rest(skeleton, rest_joints)
    transl, rot = motion135_to_smpl_params(m135)
    return smpl_to_272(rot, transl, rest.to(transl))


def _heading(x: torch.Tensor) -> torch.Tensor:
    """Accumulated heading ``H[t] = dH[t] @ H[t-1]``, ``H[0] = dH[0]`` (a prefix-product scan).

    Args:
        x: (..., T, 272).

    Returns:
        (..., T, 3, 3) rotations into the heading-free frame of each frame.
    """
    prod = rot6d_rows_to_matrix(x[..., HEADING_VEL])  # (..., T, 3, 3)
    step = 1
    frames = prod.shape[-3]
    while step < frames:
        # prod[t] covers dH[t] ... dH[t-step+1]; extend it with the block that ends at t-step
        head = prod[..., step:, :, :] @ prod[..., :-step, :, :]
        prod = torch.cat((prod[..., :step, :, :], head), dim=-3)
        step *= 2
    return prod


def _root_xz(x: torch.Tensor, h_inv: torch.Tensor) -> torch.Tensor:
    vel = torch.zeros(x.shape[:-1] + (3,), dtype=x.dtype, device=x.device)
    vel[..., 0] = x[..., 0]
    vel[..., 2] = x[..., 1]
    world = vel.clone()
    # the velocity of row t is expressed in frame t-1's heading-free frame
    world[..., 1:, :] = (h_inv[..., :-1, :, :] @ vel[..., 1:, :, None])[..., 0]
    return torch.cumsum(world, dim=-2)


def recover_joints_272(x: torch.Tensor) -> torch.Tensor:
    """World joints from 272 features (MotionStreamer's ``recover_from_local_position``).

    Args:
        x: (..., T, 272).

    Returns:
        (..., T, 22, 3); frame 0 faces +z, its root at the xz origin, the floor at y = 0.
    """
    _check(x, DIM_MS272, "MotionStreamer-272 features")
    h_inv = _heading(x).transpose(-1, -2)
    local = x[..., POSITIONS].reshape(x.shape[:-1] + (NUM_JOINTS, 3))  # (..., T, 22, 3)
    pos = (h_inv[..., None, :, :] @ local[..., None])[..., 0]
    root = _root_xz(x, h_inv)
    shift = torch.stack((root[..., 0], torch.zeros_like(root[..., 0]), root[..., 2]), -1)
    return pos + shift[..., None, :]


@dataclass
class Recovered272:
    """SMPL-side quantities recovered from 272 features.

    Attributes:
        local_rotmats: (..., T, 22, 3, 3) parent-relative rotations; joint 0 with the recovered
            heading put back.
        pelvis: (..., T, 3) pelvis (root joint) position, not the SMPL ``transl`` parameter.
    """

    local_rotmats: torch.Tensor
    pelvis: torch.Tensor


def recover_rotations_272(x: torch.Tensor) -> Recovered272:
    """Rotations and pelvis trajectory (MotionStreamer's ``recover_from_local_rotation``).

    Args:
        x: (..., T, 272).

    Returns:
        :class:`Recovered272`.
    """
    _check(x, DIM_MS272, "MotionStreamer-272 features")
    h_inv = _heading(x).transpose(-1, -2)
    rot = rot6d_rows_to_matrix(x[..., ROTATIONS].reshape(x.shape[:-1] + (NUM_JOINTS, 6)))
    rot = torch.cat((h_inv[..., None, :, :] @ rot[..., :1, :, :], rot[..., 1:, :, :]), dim=-3)
    pelvis = _root_xz(x, h_inv)
    pelvis[..., 1] = x[..., POSITIONS.start + 1]
    return Recovered272(local_rotmats=rot, pelvis=pelvis)


def recover_smpl85(x: torch.Tensor) -> torch.Tensor:
    """MotionStreamer's ``smpl_85`` row: ``[axis-angle 66, zeros 6, pelvis 3, zeros 10]``.

    Note that ``[72:75]`` is the pelvis position, as upstream returns it, not SMPL ``transl``
    (see :func:`ms272_to_motion135` for that).

    Args:
        x: (..., T, 272).

    Returns:
        (..., T, 85).
    """
    rec = recover_rotations_272(x)
    aa = matrix_to_axis_angle(rec.local_rotmats).flatten(-2)  # (..., T, 66)
    zeros6 = aa.new_zeros(aa.shape[:-1] + (6,))
    zeros10 = aa.new_zeros(aa.shape[:-1] + (10,))
    return torch.cat((aa, zeros6, rec.pelvis, zeros10), dim=-1)


def ms272_to_motion135(x: torch.Tensor, rest_joints: torch.Tensor) -> torch.Tensor:
    """``motion_135`` from 272 features: rotations as stored, ``transl = pelvis - rest pelvis``.

    Args:
        x: (..., T, 272).
        rest_joints: (22, 3) shaped rest joints of the body model.

    Returns:
        (..., T, 135).
    """
    rec = recover_rotations_272(x)
    transl = rec.pelvis - rest_joints[0].to(rec.pelvis)
    return smpl_params_to_motion135(transl, rec.local_rotmats)


def smpl135_to_ms272(
    motion: np.ndarray | torch.Tensor,
    *,
    skeleton: str = "canon272",
    model: SMPLModel | None = None,
    model_dir: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Converter edge ``smpl135 -> ms272`` for one clip.

    Args:
        motion: (T, 135) ``motion_135`` (30 fps).
        skeleton: ``"canon272"`` (default, the zoo's skeleton, no body model) or ``"smpl"``
            (the body model's rest joints, betas 0: give ``model`` or ``model_dir``).
        model: a loaded SMPL model, for ``skeleton="smpl"``.
        model_dir: folder or file of the SMPL neutral model, for ``skeleton="smpl"``.

    Returns:
        (T, 272) float32.
    """
    m135 = motion if isinstance(motion, torch.Tensor) else torch.from_numpy(np.asarray(motion))
    _check(m135, 135, "motion_135")
    rest = None
    if skeleton == "smpl":
        rest = torch.from_numpy(resolve_model(model, model_dir).rest_joints()[:NUM_JOINTS])
    return motion135_to_272(m135.double(), rest, skeleton=skeleton).float().cpu().numpy()


# --------------------------------------------------------------------------------------------
# converter edges out of 272 (one clip each; numpy in, numpy out)


def _clip_272(motion: np.ndarray | torch.Tensor, min_frames: int = 1) -> torch.Tensor:
    x = motion if isinstance(motion, torch.Tensor) else torch.from_numpy(np.asarray(motion))
    if x.dim() != 2 or x.shape[-1] != DIM_MS272:
        raise InvalidInputError(
            f"expected one MotionStreamer-272 clip of shape (T, 272), got {tuple(x.shape)}"
        )
    if len(x) < min_frames:
        raise InvalidInputError(f"{len(x)} frames of 272 features, at least {min_frames} needed")
    if not (x.is_floating_point() and torch.isfinite(x).all()):
        raise InvalidInputError("272 features must be finite floating-point numbers")
    return x.double()  # recovery accumulates the heading: float64 keeps the reference precision


def ms272_to_joints22(motion: np.ndarray | torch.Tensor) -> np.ndarray:
    """Converter edge ``ms272 -> joints22``: :func:`recover_joints_272` of one clip.

    The joints keep the 272 frame rate (30 fps), as the zoo's ``motion272_to_joints``.

    Args:
        motion: (T, 272) features in physical units (not normalised).

    Returns:
        (T, 22, 3) float32 joints; frame 0 faces +z, its root at the xz origin, floor at y = 0.
    """
    return recover_joints_272(_clip_272(motion)).float().cpu().numpy()


def ms272_to_smpl135(
    motion: np.ndarray | torch.Tensor,
    *,
    skeleton: str = "canon272",
    model: SMPLModel | None = None,
    model_dir: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Converter edge ``ms272 -> smpl135`` (``motion_135``): the stored rotations, no fit.

    The inverse of :func:`smpl135_to_ms272` on the same skeleton (up to the global yaw and
    translation 272 drops): ``transl = pelvis - rest pelvis`` (:func:`ms272_to_motion135`).
    Both are 30 fps, so the frame count is kept.

    Args:
        motion: (T, 272) features in physical units.
        skeleton: the skeleton the 272 positions were made on: ``"canon272"`` (the zoo's, the
            default of :func:`smpl135_to_ms272`; no body model needed) or ``"smpl"``.
        model: with ``skeleton="smpl"``, a loaded SMPL model (betas 0), or ``model_dir``.
        model_dir: folder or file of the SMPL neutral model.

    Returns:
        (T, 135) float32 ``motion_135``.
    """
    given = None
    if skeleton == "smpl":
        given = torch.from_numpy(resolve_model(model, model_dir).rest_joints()[:NUM_JOINTS])
    rest = _skeleton_rest(skeleton, given, what="ms272_to_smpl135")
    return ms272_to_motion135(_clip_272(motion), rest.double()).float().cpu().numpy()


def ms272_to_hml263(
    motion: np.ndarray | torch.Tensor, *, resample_mode: ResampleMode = "zoo"
) -> np.ndarray:
    """Converter edge ``ms272 -> hml263`` through joints, 30 fps to 20 fps.

    :func:`recover_joints_272`, linear resampling of the joints from :data:`FPS` to
    ``hml263.FPS`` (``motion.resample``), then ``hml263.joints_to_hml263``, which drops the
    last frame as HumanML3D does: T frames give ``round(T * 2 / 3) - 1`` rows on the default grid.

    Args:
        motion: (T, 272) features in physical units, ``T >= 2``.
        resample_mode: the 30 -> 20 fps grid, ``"zoo"`` (the bridge's) or ``"exact"``.

    Returns:
        (T', 263) float32 HumanML3D features at 20 fps.
    """
    joints = recover_joints_272(_clip_272(motion, min_frames=2)).cpu().numpy()
    joints = resample_linear(joints, FPS, hml263.FPS, mode=resample_mode)
    return np.asarray(hml263.joints_to_hml263(joints), dtype=np.float32)
