"""SMPL parameters of generated HumanML3D-263 motions, for ``mogents generate --format smpl/glb``.

The parameters come from the batched IK of :mod:`~hftrainer_mogents.motion.smpl135` (neutral
SMPL, betas 0, the joints' analytic IK as the start, 80 Adam steps), with two changes from the
bridge's settings: the fit runs at the motion's own frame rate (20 fps: no resampling, one SMPL
frame per generated frame) and without floor alignment, so that SMPL's forward kinematics of the
written parameters lands on the motion's own joints (``hml263.recover_from_ric``), not on a shifted
copy. The fit error is the IK's: 0.6-1.8 mm mean on the fixture motions made from SMPL joints;
a motion whose bone lengths are not SMPL's (an untrained model's) is fitted as closely as SMPL's
bones allow, and ``fit_mpjpe_mm`` says how close that is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from hftrainer_mogents.motion.smpl135 import (
    ClipResult,
    IKConfig,
    SMPLModel,
    fit_clips,
    prepare_clip,
    resolve_model,
)
from hftrainer_mogents.utils.io import atomic_save_npz

__all__ = ["EXPORT_FPS", "export_ik_config", "fit_smpl_params", "smpl_params_npz", "save_smpl_npz"]

EXPORT_FPS = 20.0


def export_ik_config(fps: float = EXPORT_FPS, config: IKConfig | None = None) -> IKConfig:
    """The bridge's :class:`IKConfig` fitted at ``fps`` in and out, without floor alignment."""
    return replace(config or IKConfig(), source_fps=fps, target_fps=fps, floor_align=False)


def fit_smpl_params(
    motions: Sequence[np.ndarray],
    *,
    model: SMPLModel | None = None,
    model_dir: str | os.PathLike[str] | None = None,
    fps: float = EXPORT_FPS,
    config: IKConfig | None = None,
    device: str | None = None,
) -> list[ClipResult]:
    """Fit SMPL to several (T, 263) motions in one batched IK, at their own frame rate.

    Args:
        motions: (T_i, 263) HumanML3D features in physical units.
        model: a loaded SMPL model, or ``model_dir`` to load one.
        model_dir: folder or file of the SMPL neutral model.
        fps: the motions' frame rate (also the fit's).
        config: other fit settings (frame rates and floor alignment are overridden).
        device: where to optimise (default CPU).

    Returns:
        One :class:`~hftrainer_mogents.motion.smpl135.ClipResult` per motion, T_i frames each.

    Raises:
        InvalidInputError: no model given, or a motion with a wrong shape, NaN or too few frames.
        ArtifactNotFoundError: no SMPL model under ``model_dir``.
    """
    smpl = resolve_model(model, model_dir)
    cfg = export_ik_config(fps, config)
    clips = [prepare_clip(m, cfg, name=f"motion {i}") for i, m in enumerate(motions)]
    return fit_clips(clips, smpl, cfg, device=device)


def smpl_params_npz(fit: ClipResult, *, num_betas: int = 10) -> dict[str, np.ndarray]:
    """The arrays of ``<stem>_smpl.npz``.

    Keys: ``global_orient`` (T, 3), ``body_pose`` (T, 63) (axis-angle, SMPL joints 1..21),
    ``transl`` (T, 3) (SMPL's ``transl``: the pelvis is at the rest pelvis plus it), ``betas``
    (num_betas,) zeros (the neutral body the fit used), ``fps``, ``poses`` (T, 72) and ``trans``
    (AMASS's names: the 24 joints' axis-angle with the hands at rest, and ``transl``),
    ``mocap_framerate``, ``gender`` ``"neutral"``, ``joints`` (T, 22, 3) (the fitted joints),
    ``fit_mpjpe_mm`` (T,) (per-frame distance to the motion's joints).
    """
    t = len(fit.transl)
    poses = np.concatenate(
        (fit.global_orient, fit.body_pose, np.zeros((t, 6), dtype=np.float32)), axis=1
    )
    fps = np.array(fit.config.target_fps, dtype=np.float32)
    return {
        "global_orient": fit.global_orient,
        "body_pose": fit.body_pose,
        "transl": fit.transl,
        "betas": np.zeros(num_betas, dtype=np.float32),
        "fps": fps,
        "poses": poses.astype(np.float32),
        "trans": fit.transl,
        "mocap_framerate": fps,
        "gender": np.array("neutral"),
        "joints": fit.fitted_joints,
        "fit_mpjpe_mm": fit.fit_mpjpe_mm,
    }


def save_smpl_npz(path: str | os.PathLike[str], fit: ClipResult) -> dict[str, float]:
    """Write :func:`smpl_params_npz` to ``path`` atomically.

    Returns:
        The fit error in millimetres, ``{"mean": ..., "max": ...}`` (for ``run.json``).
    """
    atomic_save_npz(path, **smpl_params_npz(fit))
    err = fit.fit_mpjpe_mm
    return {"mean": round(float(err.mean()), 4), "max": round(float(err.max()), 4)}
