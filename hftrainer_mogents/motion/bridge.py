"""The pure steps of the HumanML3D-263 -> SMPL ``motion_135`` -> MotionStreamer-272 bridge: the
root restore, the 272 features of a fitted clip and the IK summary's statistics.

The batch jobs that read and write the files (``run_ik``, ``run_272``, ``run_bridge``) are in
:mod:`hftrainer_mogents.jobs.bridge`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.motion import ms272, smpl135

__all__ = [
    "RESTORE_ROOT_MODES",
    "restore_root",
    "fitted_clip_272",
    "motion135_file_272",
    "ik_summary",
]

RESTORE_ROOT_MODES = ("auto", "source_transl", "none")


def restore_root(
    arrays: dict[str, np.ndarray], source: np.ndarray | None, mode: str, rest: torch.Tensor
) -> dict[str, np.ndarray]:
    """The zoo's root restore of one IK result: ``transl`` becomes ``source`` (the clip's
    ``source_motion135_transl``), linearly refit to the output length, and ``fitted_joints`` are
    recomputed; the fit's own translation and joints stay as ``canonical_*``.

    Args:
        arrays: the IK result (``ClipResult.to_npz_dict()``).
        source: (T', 3) source translation, or None when the clip has none.
        mode: ``"auto"``, ``"source_transl"`` or ``"none"`` (never restore).
        rest: (22, 3) rest joints of the body model.

    Returns:
        The arrays to save, with ``root_translation_restore_mode`` / ``_restored`` recorded.

    Raises:
        InvalidInputError: ``source`` is not (T', 3).
    """
    from hftrainer_mogents.motion.resample import resample_linear

    out = dict(arrays)
    transl = arrays["transl"]
    out["canonical_transl"] = transl
    out["canonical_fitted_joints"] = arrays["fitted_joints"]
    out["root_translation_restore_mode"] = np.array(mode)
    out["root_translation_restored"] = np.array(False)
    if mode == "none" or source is None:
        return out
    source = np.asarray(source, dtype=np.float32)
    if source.ndim != 2 or source.shape[1] != 3 or len(source) < 1:
        raise InvalidInputError(f"source_motion135_transl must be (T, 3), got {source.shape}")
    frames = len(transl)
    if len(source) == 1:
        restored = np.repeat(source, frames, axis=0)
    else:
        restored = resample_linear(source, len(source), frames, mode="zoo")
    restored = restored.astype(np.float32)
    m135 = torch.from_numpy(arrays["motion_135"]).double()
    rot = smpl135.motion135_to_smpl_params(m135)[1]
    joints = smpl135.forward_kinematics(
        rot, rest.double(), transl=torch.from_numpy(restored).double()
    )
    out["transl"] = restored
    out["motion_135"] = np.concatenate((restored, arrays["motion_135"][:, 3:]), axis=1)
    out["fitted_joints"] = joints.joints.float().numpy()
    out["root_translation_restored"] = np.array(True)
    return out


def fitted_clip_272(
    m135: np.ndarray, fitted_joints: np.ndarray | None, skeleton: str
) -> np.ndarray:
    """272 features of one fitted clip: canon272 FK of ``motion_135``, or the SMPL joints."""
    m = torch.from_numpy(np.asarray(m135, dtype=np.float64))
    if skeleton == "canon272":
        return ms272.motion135_to_272(m).float().numpy()
    if fitted_joints is None:
        raise InvalidInputError("skeleton='smpl' needs the fitted SMPL joints or the body model")
    rot = smpl135.motion135_to_smpl_params(m)[1]
    joints = torch.from_numpy(np.asarray(fitted_joints, dtype=np.float64))
    return ms272.encode_272(joints, rot).float().numpy()


def motion135_file_272(
    name: str,
    m135: np.ndarray,
    joints: np.ndarray | None,
    skeleton: str,
    rest: torch.Tensor | None,
) -> np.ndarray:
    """272 features of a ``motion_135`` clip read from a file (``run_272``), checked first.

    Args:
        name: the file's name, for messages.
        m135: (T, 135) ``motion_135``.
        joints: the IK file's ``fitted_joints`` (None for a bare array).
        skeleton: ``"canon272"`` or ``"smpl"``.
        rest: (22, 3) SMPL rest joints (``skeleton="smpl"`` with a body model), or None.

    Raises:
        InvalidInputError: not (T >= 2, 135), non-finite, or ``"smpl"`` without joints.
    """
    if m135.ndim != 2 or m135.shape[1] != smpl135.DIM_SMPL135 or len(m135) < 2:
        raise InvalidInputError(f"{name}: expected (T >= 2, 135) motion_135, got {m135.shape}")
    if not np.isfinite(m135).all():
        raise InvalidInputError(f"{name}: contains NaN or inf values")
    m = torch.from_numpy(m135)
    if skeleton == "canon272":
        return ms272.motion135_to_272(m).float().numpy()
    if rest is not None:
        return ms272.motion135_to_272(m, rest, skeleton="smpl").float().numpy()
    if joints is None:
        raise InvalidInputError(
            f"{name}: skeleton 'smpl' on a bare motion_135 array needs the body model for "
            "its joints: pass --model-dir (SMPL neutral), or use the default skeleton canon272"
        )
    rot = smpl135.motion135_to_smpl_params(m)[1]
    return ms272.encode_272(torch.from_numpy(joints), rot).float().numpy()


def ik_summary(
    items: list[dict[str, Any]], failures: list[dict[str, str]], extra: dict[str, Any]
) -> dict[str, Any]:
    """The IK summary: counts and fit-error statistics over ``items`` (``mpjpe_mm_mean``,
    ``mpjpe_mm_p95`` each), the first 100 items, the failures, then ``extra``."""
    means = [it["mpjpe_mm_mean"] for it in items]
    summary: dict[str, Any] = {"count": len(items), "failed": len(failures)}
    if items:
        summary |= {
            "mean_mpjpe_mm": float(np.mean(means)),
            "median_mpjpe_mm": float(np.median(means)),
            "p95_frame_mpjpe_mm_mean": float(np.mean([it["mpjpe_mm_p95"] for it in items])),
        }
    summary |= {"items": items[:100], "failures": failures, **extra}
    return summary
