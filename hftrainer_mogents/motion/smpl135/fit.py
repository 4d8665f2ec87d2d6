"""The batched fit of SMPL to joint positions, and the converter edges built on it.

The fit follows the zoo's validated bridge: neutral SMPL, betas 0; joints at 20 fps resampled to
30 fps; floor alignment; Adam over ``[global_orient, body_pose, transl]`` for 80 iterations at
lr 0.02 on ``mean |J - target|^2 + 1e-4 mean (pose - pose_init)^2
+ 1e-3 (mean transl_acc^2 + 1e-2 mean pose_acc^2)``. It is fast because the joints come from
forward kinematics on the shaped rest joints (identical to smplx's joints, with no vertex skinning
inside the loop) and because many clips are optimised as one batch: each clip keeps its own loss
normalisation and Adam state, so the result equals fitting the clips one by one.

The starting rotations differ by default: an analytic IK on the target joints
(``rotation_init="joints"``), because HumanML3D's stored rotations (the zoo's start,
``rotation_init="hml263"``) leave each bone's twist arbitrary and the joint loss cannot fix twist
(numbers in :class:`IKConfig`; the two starts are in
:mod:`~hftrainer_mogents.motion.smpl135.kinematics`).

:func:`fit_smpl_to_joints` optimises padded tensors; :func:`prepare_clip` and :func:`fit_clips`
turn clips into such batches and back; :func:`hml263_to_smpl135` and :func:`joints_to_smpl135` are
the one-clip converter edges.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.motion import hml263
from hftrainer_mogents.motion.resample import ResampleMode, resample_linear, resample_rotmats_slerp
from hftrainer_mogents.motion.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from hftrainer_mogents.motion.smpl135.body_model import (
    NUM_JOINTS,
    SMPL_PARENTS,
    SMPLModel,
    resolve_model,
)
from hftrainer_mogents.motion.smpl135.kinematics import (
    forward_kinematics,
    init_rotations_from_hml263,
    init_rotations_from_joints,
)
from hftrainer_mogents.motion.smpl135.motion135 import smpl_params_to_motion135

__all__ = [
    "IKConfig",
    "IKSettingError",
    "IKFit",
    "fit_smpl_to_joints",
    "PreparedClip",
    "prepare_clip",
    "ClipResult",
    "fit_clips",
    "hml263_to_smpl135",
    "joints_to_smpl135",
]


# --------------------------------------------------------------------------------------------
# batched fit


class IKSettingError(InvalidInputError):
    """A bad :class:`IKConfig` value; ``field`` names the setting (front-ends name their flag)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass
class IKConfig:
    """Settings of the fit; defaults are the zoo bridge's (``--refine-iters 80 --refine-lr 0.02
    --floor-align``, 20 -> 30 fps).

    Attributes:
        source_fps: frame rate of the input.
        target_fps: frame rate of ``motion_135``.
        floor_align: subtract the clip's lowest joint height.
        rotation_init: ``"joints"`` (default: analytic IK on the target joints; twist follows
            each parent) or ``"hml263"`` (the zoo's choice: HumanML3D's stored rotations, 263
            input only). On the fixture motions turned into 263 features, ``"joints"`` fits to
            0.6-1.8 mm with 8-15 degrees of rotation error, ``"hml263"`` to 5.6-9.4 mm with 32-57
            degrees (HumanML3D's rotations are each bone's smallest turn from a fixed world axis,
            so their twist about the bone is arbitrary, and the fit cannot see twist). ``"auto"``
            is the zoo's meaning of its default: ``"hml263"`` for 263 input, ``"joints"`` for
            (T, 22, 3) joint input.
        lock_global_orient: keep the root orientation at its start (the zoo's
            ``--lock-global-orient``, recommended there for 263 input with the HumanML3D start):
            only ``body_pose`` and ``transl`` are optimised.
        iters: Adam iterations.
        lr: Adam learning rate.
        pose_keep_weight: weight of ``mean (body_pose - init)^2``.
        smooth_weight: weight of the acceleration terms.
        pose_smooth_ratio: weight of the body-pose acceleration relative to transl's.
        resample_mode: ``"zoo"`` or ``"exact"`` (see ``motion.resample``).
        min_frames: shorter input clips are refused.
        batch_frames: padded frames optimised together (memory vs speed).
    """

    source_fps: float = 20.0
    target_fps: float = 30.0
    floor_align: bool = True
    rotation_init: Literal["joints", "hml263", "auto"] = "joints"
    lock_global_orient: bool = False
    iters: int = 80
    lr: float = 0.02
    pose_keep_weight: float = 1e-4
    smooth_weight: float = 1e-3
    pose_smooth_ratio: float = 1e-2
    resample_mode: ResampleMode = "zoo"
    min_frames: int = 4
    batch_frames: int = 8192

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every setting (a NaN learning rate or negative steps would give unrefined or
        NaN fits that look done); run at construction, and by the jobs before any work.

        Raises:
            IKSettingError: naming the setting, the value and what is accepted.
        """
        for name, minimum in (("iters", 0), ("min_frames", 1), ("batch_frames", 1)):
            value = getattr(self, name)
            if (
                not isinstance(value, numbers.Integral)
                or isinstance(value, bool)
                or value < minimum
            ):
                raise IKSettingError(
                    name, f"IKConfig.{name} must be a whole number >= {minimum}, got {value!r}"
                )
        for name in ("source_fps", "target_fps", "lr"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value <= 0:
                raise IKSettingError(
                    name, f"IKConfig.{name} must be a finite number > 0, got {value!r}"
                )
        for name in ("pose_keep_weight", "smooth_weight", "pose_smooth_ratio"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value < 0:
                raise IKSettingError(
                    name, f"IKConfig.{name} must be a finite number >= 0, got {value!r}"
                )
        if self.rotation_init not in ("joints", "hml263", "auto"):
            raise IKSettingError(
                "rotation_init",
                f"IKConfig.rotation_init must be 'joints', 'hml263' or 'auto', got "
                f"{self.rotation_init!r}",
            )
        if self.resample_mode not in ("zoo", "exact"):
            raise IKSettingError(
                "resample_mode",
                f"IKConfig.resample_mode must be 'zoo' or 'exact', got {self.resample_mode!r}",
            )


@dataclass
class IKFit:
    """Result of :func:`fit_smpl_to_joints` (padded batch).

    Attributes:
        global_orient: (B, T, 3) axis-angle.
        body_pose: (B, T, 63) axis-angle, joints 1..21.
        transl: (B, T, 3) SMPL ``transl``.
        local_rotmats: (B, T, 22, 3, 3).
        fitted_joints: (B, T, 22, 3).
        mpjpe: (B, T) per-frame mean joint error in metres (0 on padding).
        lengths: (B,) valid frames.
    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    transl: torch.Tensor
    local_rotmats: torch.Tensor
    fitted_joints: torch.Tensor
    mpjpe: torch.Tensor
    lengths: torch.Tensor


def fit_smpl_to_joints(
    target: torch.Tensor,
    rest_joints: torch.Tensor,
    init_rotmats: torch.Tensor,
    lengths: torch.Tensor | None = None,
    *,
    iters: int = 80,
    lr: float = 0.02,
    pose_keep_weight: float = 1e-4,
    smooth_weight: float = 1e-3,
    pose_smooth_ratio: float = 1e-2,
    lock_global_orient: bool = False,
    step_callback: Callable[[int], None] | None = None,
) -> IKFit:
    """Adam refinement of SMPL pose and translation against target joints, many clips at once.

    The loss is a sum over clips of each clip's own loss (means over its valid frames), so a
    clip's result does not depend on the others in the batch.

    Args:
        target: (B, T, 22, 3) target joints, zero-padded after ``lengths``; dtype and device of
            the fit.
        rest_joints: (22, 3) shaped rest joints (SMPL joints 0..21).
        init_rotmats: (B, T, 22, 3, 3) initial parent-relative rotations.
        lengths: (B,) valid frames per clip (default all T).
        iters: Adam iterations (0 keeps the initialisation).
        lr: learning rate.
        pose_keep_weight: weight of ``mean (body_pose - body_pose_init)^2``.
        smooth_weight: weight of ``mean transl_acc^2 + pose_smooth_ratio * mean pose_acc^2``.
        pose_smooth_ratio: see ``smooth_weight``.
        lock_global_orient: keep joint 0's rotation at ``init_rotmats`` (not optimised).
        step_callback: called with the iteration index after each step (progress bars).

    Returns:
        :class:`IKFit`.
    """
    bsz, frames = target.shape[:2]
    device, dtype = target.device, target.dtype
    if lengths is None:
        lengths = torch.full((bsz,), frames, device=device)
    lengths = lengths.to(device)
    rest = rest_joints[:NUM_JOINTS].to(device=device, dtype=dtype)
    parents = SMPL_PARENTS[:NUM_JOINTS]
    mask = torch.arange(frames, device=device)[None] < lengths[:, None]  # (B, T)
    maskf = mask.to(dtype)
    n = lengths.to(dtype).clamp_min(1)  # (B,)
    # acceleration terms over frames t-1, t, t+1 all valid; clips shorter than 3 have none
    acc_mask = (maskf[:, 2:] * maskf[:, 1:-1] * maskf[:, :-2]) if frames >= 3 else None
    n_acc = (lengths.to(dtype) - 2).clamp_min(1)
    has_acc = (lengths >= 3).to(dtype)

    aa = matrix_to_axis_angle(init_rotmats.to(device=device, dtype=dtype))  # (B, T, 22, 3)
    # one tensor for global_orient and body_pose: Adam is per coordinate, so this is the same
    # optimisation as two parameters, without concatenating them at every step
    pose = (aa * maskf[..., None, None]).clone()
    body_init = pose[:, :, 1:].reshape(bsz, frames, 63).clone()
    # the root joint does not move with its own rotation: transl = target root - rest root
    transl = (target[:, :, 0] - rest[0]) * maskf[..., None]
    target = target * maskf[..., None, None]

    if iters > 0:
        params = [p.requires_grad_(True) for p in (pose, transl)]
        opt = torch.optim.Adam(params, lr=lr)
        for it in range(iters):
            opt.zero_grad(set_to_none=True)
            joints = forward_kinematics(
                axis_angle_to_matrix(pose), rest, parents, transl, with_rotations=False
            ).joints
            err = ((joints - target) ** 2).sum(-1).sum(-1) * maskf  # (B, T)
            data = err.sum(1) / (n * NUM_JOINTS)
            body_pose = pose[:, :, 1:].reshape(bsz, frames, 63)
            keep = ((body_pose - body_init) ** 2).sum(-1).mul(maskf).sum(1) / (n * 63)
            loss_b = data + pose_keep_weight * keep
            if acc_mask is not None and smooth_weight:
                tr_acc = transl[:, 2:] - 2 * transl[:, 1:-1] + transl[:, :-2]
                bp_acc = body_pose[:, 2:] - 2 * body_pose[:, 1:-1] + body_pose[:, :-2]
                smooth = (tr_acc**2).sum(-1).mul(acc_mask).sum(1) / (n_acc * 3)
                smooth = smooth + pose_smooth_ratio * (bp_acc**2).sum(-1).mul(acc_mask).sum(1) / (
                    n_acc * 63
                )
                loss_b = loss_b + smooth_weight * smooth * has_acc
            loss_b.sum().backward()
            if lock_global_orient and pose.grad is not None:
                # a coordinate whose gradient is always 0 keeps Adam's moments at 0 and never
                # moves: the same as leaving global_orient out of the optimiser
                pose.grad[:, :, 0] = 0
            opt.step()
            if step_callback is not None:
                step_callback(it)
        for p in params:
            p.requires_grad_(False)

    with torch.no_grad():
        local = axis_angle_to_matrix(pose)
        joints = forward_kinematics(local, rest, parents, transl).joints
        mpjpe = (joints - target).norm(dim=-1).mean(-1) * maskf
    global_orient = pose[:, :, 0]
    body_pose = pose[:, :, 1:].reshape(bsz, frames, 63)
    return IKFit(
        global_orient=global_orient.detach().clone(),
        body_pose=body_pose.detach().clone(),
        transl=transl.detach(),
        local_rotmats=local,
        fitted_joints=joints,
        mpjpe=mpjpe,
        lengths=lengths,
    )


# --------------------------------------------------------------------------------------------
# clips: validation, preparation, batching


@dataclass
class PreparedClip:
    """One clip ready for the fit (at the target frame rate).

    Attributes:
        name: identifier (file stem).
        target: (T, 22, 3) float64 target joints.
        hml_global: (T, 22, 3, 3) HumanML3D global bone rotations, or None (joint input).
    """

    name: str
    target: torch.Tensor
    hml_global: torch.Tensor | None = None


def _validate(motion: np.ndarray | torch.Tensor, name: str, min_frames: int) -> torch.Tensor:
    x = motion if isinstance(motion, torch.Tensor) else torch.from_numpy(np.asarray(motion))
    if not (x.is_floating_point()):
        raise InvalidInputError(f"{name}: expected floating-point data, got {x.dtype}")
    shape = tuple(x.shape)
    if not (
        (len(shape) == 2 and shape[1] == hml263.DIM_HML263)
        or (len(shape) == 3 and shape[1:] == (NUM_JOINTS, 3))
    ):
        raise InvalidInputError(
            f"{name}: expected HumanML3D features (T, 263) or joints (T, 22, 3), got {shape}"
        )
    if shape[0] < min_frames:
        raise InvalidInputError(f"{name}: {shape[0]} frames, at least {min_frames} are needed")
    if not torch.isfinite(x).all():
        raise InvalidInputError(f"{name}: contains NaN or inf values")
    return x.to(torch.float64)


def prepare_clip(
    motion: np.ndarray | torch.Tensor,
    config: IKConfig | None = None,
    name: str = "clip",
    *,
    target_length: int | None = None,
) -> PreparedClip:
    """Validate one clip, recover its joints (263 input), resample and floor-align them.

    Args:
        motion: (T, 263) HumanML3D features in physical units, or (T, 22, 3) joints.
        config: the fit settings.
        name: for messages.
        target_length: after the frame-rate change, refit the clip to this many frames (joints
            linearly, HumanML3D rotations by slerp, evenly over the clip; before the floor
            alignment), as the zoo's ``--target-length-anno`` does.

    Returns:
        :class:`PreparedClip`.

    Raises:
        InvalidInputError: wrong shape, too short, NaN/inf.
    """
    cfg = config or IKConfig()
    if cfg.rotation_init not in ("joints", "hml263", "auto"):
        raise InvalidInputError(
            f"rotation_init must be 'joints', 'hml263' or 'auto', got {cfg.rotation_init!r}"
        )
    if target_length is not None and target_length < 2:
        raise InvalidInputError(f"{name}: target length {target_length} < 2 frames")
    x = _validate(motion, name, cfg.min_frames)
    hml_global = None
    if x.dim() == 2:
        joints = hml263.recover_from_ric(x)
        if cfg.rotation_init in ("hml263", "auto"):
            hml_global = hml263.recover_global_bone_rotations(x)
    else:
        if cfg.rotation_init == "hml263":
            raise InvalidInputError(f"{name}: rotation_init='hml263' needs (T, 263) input")
        joints = x
    joints = resample_linear(joints, cfg.source_fps, cfg.target_fps, mode=cfg.resample_mode)
    if hml_global is not None:
        hml_global = resample_rotmats_slerp(
            hml_global, cfg.source_fps, cfg.target_fps, mode=cfg.resample_mode
        )
    if target_length is not None and target_length != len(joints):
        # the "zoo" grid from len(joints) to target_length frames: evenly over [0, T - 1]
        joints = resample_linear(joints, len(joints), target_length, mode="zoo")
        if hml_global is not None:
            hml_global = resample_rotmats_slerp(hml_global, len(hml_global), target_length)
    if cfg.floor_align:
        joints = joints.clone()
        joints[..., 1] -= joints[..., 1].min()
    return PreparedClip(name=name, target=joints, hml_global=hml_global)


@dataclass
class ClipResult:
    """The fit of one clip, with the zoo's ``.npz`` keys (:meth:`to_npz_dict`).

    Attributes:
        name: identifier.
        motion_135: (T, 135) float32.
        global_orient: (T, 3), body_pose: (T, 63), transl: (T, 3) float32.
        target_joints: (T, 22, 3), fitted_joints: (T, 22, 3) float32.
        fit_mpjpe_mm: (T,) float32 per-frame error in millimetres.
        rotation_init: which initialisation was used.
    """

    name: str
    motion_135: np.ndarray
    global_orient: np.ndarray
    body_pose: np.ndarray
    transl: np.ndarray
    target_joints: np.ndarray
    fitted_joints: np.ndarray
    fit_mpjpe_mm: np.ndarray
    rotation_init: str
    config: IKConfig

    @property
    def mean_mpjpe_mm(self) -> float:
        """Mean over frames of the per-frame error (mm)."""
        return float(self.fit_mpjpe_mm.mean())

    def to_npz_dict(self) -> dict[str, np.ndarray]:
        """The zoo's per-clip ``.npz`` keys."""
        return {
            "motion_135": self.motion_135,
            "transl": self.transl,
            "global_orient": self.global_orient,
            "body_pose": self.body_pose,
            "target_joints": self.target_joints,
            "fitted_joints": self.fitted_joints,
            "fit_mpjpe_mm": self.fit_mpjpe_mm,
            "source_fps": np.array(self.config.source_fps, dtype=np.float32),
            "target_fps": np.array(self.config.target_fps, dtype=np.float32),
            "refine_iters": np.array(self.config.iters, dtype=np.int32),
            "rotation_init": np.array(self.rotation_init),
            "rot6d_convention": np.array("row"),  # the zoo's name of R[:, :2] row-major
        }


def _batches(clips: Sequence[PreparedClip], budget: int) -> list[list[int]]:
    order = sorted(range(len(clips)), key=lambda i: len(clips[i].target))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = len(clips[i].target)  # sorted: the newest clip is the longest
        if current and longest * (len(current) + 1) > budget:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def fit_clips(
    clips: Sequence[PreparedClip],
    model: SMPLModel,
    config: IKConfig | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    progress: Callable[[int], None] | None = None,
) -> list[ClipResult]:
    """Fit prepared clips in length-sorted batches of up to ``config.batch_frames`` padded frames.

    Args:
        clips: from :func:`prepare_clip`.
        model: the SMPL model (betas 0).
        config: the fit settings.
        device: where to optimise (default CPU).
        dtype: optimisation dtype (float32, as the zoo).
        progress: called with the number of clips finished after each batch.

    Returns:
        One :class:`ClipResult` per clip, in input order.
    """
    cfg = config or IKConfig()
    device = torch.device(device or "cpu")
    rest = torch.from_numpy(model.rest_joints()[:NUM_JOINTS]).to(device=device, dtype=dtype)
    results: list[ClipResult | None] = [None] * len(clips)
    for batch in _batches(clips, cfg.batch_frames):
        frames = max(len(clips[i].target) for i in batch)
        target = torch.zeros(len(batch), frames, NUM_JOINTS, 3, dtype=dtype, device=device)
        init = torch.eye(3, dtype=dtype, device=device).repeat(len(batch), frames, NUM_JOINTS, 1, 1)
        lengths = torch.tensor([len(clips[i].target) for i in batch], device=device)
        used: list[str] = []
        for k, i in enumerate(batch):
            clip = clips[i]
            t = len(clip.target)
            target[k, :t] = clip.target.to(device=device, dtype=dtype)
            if clip.hml_global is not None and cfg.rotation_init in ("hml263", "auto"):
                hml_glob = clip.hml_global.to(device=device, dtype=torch.float64)
                rot = init_rotations_from_hml263(hml_glob, rest.double())
                used.append("hml263")
            else:
                rot = init_rotations_from_joints(clip.target.to(device), rest.double())
                used.append("joints")
            init[k, :t] = rot.to(dtype)
        fit = fit_smpl_to_joints(
            target,
            rest,
            init,
            lengths,
            iters=cfg.iters,
            lr=cfg.lr,
            pose_keep_weight=cfg.pose_keep_weight,
            smooth_weight=cfg.smooth_weight,
            pose_smooth_ratio=cfg.pose_smooth_ratio,
            lock_global_orient=cfg.lock_global_orient,
        )
        m135 = smpl_params_to_motion135(fit.transl, fit.local_rotmats)
        for k, i in enumerate(batch):
            t = int(lengths[k])

            def cpu(x: torch.Tensor, k: int = k, t: int = t) -> np.ndarray:
                return x[k, :t].detach().cpu().numpy().astype(np.float32)

            results[i] = ClipResult(
                name=clips[i].name,
                motion_135=cpu(m135),
                global_orient=cpu(fit.global_orient),
                body_pose=cpu(fit.body_pose),
                transl=cpu(fit.transl),
                target_joints=cpu(target),
                fitted_joints=cpu(fit.fitted_joints),
                fit_mpjpe_mm=cpu(fit.mpjpe) * 1000.0,
                rotation_init=used[k],
                config=cfg,
            )
        if progress is not None:
            progress(len(batch))
    return [r for r in results if r is not None]


# --------------------------------------------------------------------------------------------
# converter edges


def hml263_to_smpl135(
    motion: np.ndarray | torch.Tensor,
    *,
    model: SMPLModel | None = None,
    model_dir: str | os.PathLike[str] | None = None,
    config: IKConfig | None = None,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Converter edge ``hml263 -> smpl135`` for one clip (batch jobs use :func:`fit_clips`).

    Args:
        motion: (T, 263) HumanML3D features in physical units (20 fps by default).
        model: a loaded SMPL model, or ``model_dir`` to load one.
        model_dir: folder or file of the SMPL neutral model.
        config: fit settings (default :class:`IKConfig`).
        device: where to optimise.

    Returns:
        (T', 135) float32 ``motion_135`` at ``config.target_fps``.
    """
    cfg = config or IKConfig()
    clip = prepare_clip(motion, cfg)
    return fit_clips([clip], resolve_model(model, model_dir), cfg, device=device)[0].motion_135


def joints_to_smpl135(
    motion: np.ndarray | torch.Tensor,
    *,
    model: SMPLModel | None = None,
    model_dir: str | os.PathLike[str] | None = None,
    config: IKConfig | None = None,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Converter edge ``joints22 -> smpl135``: :func:`hml263_to_smpl135` for (T, 22, 3) joints."""
    return hml263_to_smpl135(motion, model=model, model_dir=model_dir, config=config, device=device)
