"""SMPL ``motion_135`` and batched inverse kinematics from HumanML3D-263 or joint positions.

``motion_135`` (30 fps, y up, metres) is, per frame, ``[transl(3), 22 x rot6d]``: the SMPL
``transl`` parameter (the pelvis is at ``rest_pelvis + transl``, not at ``transl``) and the 22
SMPL parent-relative rotations (joint 0 = global orientation) in the ``rot6d_cols_interleaved``
layout ``R[:, :2]`` row-major, ``[R00, R01, R10, R11, R20, R21]`` (the zoo's "row" layout).

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
(numbers in :class:`IKConfig`). The ``"hml263"`` start is implemented with two corrections to the
zoo's: HumanML3D's rotation of joint ``k`` turns the bone *ending* at ``k``, so it goes to the SMPL
joint where that bone starts (the zoo gave it to ``k``), and the root heading is HumanML3D's root
quaternion inverted (the zoo used it as is, which mirrors the yaw).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from hftrainer_mogents.errors import (
    ArtifactFormatError,
    ArtifactNotFoundError,
    InvalidInputError,
    MissingDependencyError,
)
from hftrainer_mogents.motion import hml263
from hftrainer_mogents.motion.resample import ResampleMode, resample_linear, resample_rotmats_slerp
from hftrainer_mogents.motion.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rot6d_cols_interleaved,
    rot6d_cols_interleaved_to_matrix,
    rotation_between,
)

__all__ = [
    "DIM_SMPL135",
    "NUM_JOINTS",
    "FPS",
    "SMPL_PARENTS",
    "SMPL_JOINT_NAMES",
    "SMPLModel",
    "find_smpl_model",
    "load_smpl_model",
    "forward_kinematics",
    "FKOutput",
    "init_rotations_from_joints",
    "init_rotations_from_hml263",
    "IKConfig",
    "IKFit",
    "fit_smpl_to_joints",
    "PreparedClip",
    "prepare_clip",
    "fit_clips",
    "ClipResult",
    "resolve_model",
    "hml263_to_smpl135",
    "joints_to_smpl135",
    "motion135_to_smpl_params",
    "smpl_params_to_motion135",
    "smpl135_joints",
    "smplx_model",
]

logger = logging.getLogger(__name__)

DIM_SMPL135 = 135
NUM_JOINTS = 22
FPS = 30
# parents of the 24 SMPL joints (the 22 body joints followed by the two hands)
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
SMPL_JOINT_NAMES = [*hml263.JOINT_NAMES, "left_hand", "right_hand"]

_MODEL_KEYS = ("v_template", "shapedirs", "J_regressor", "kintree_table")


# --------------------------------------------------------------------------------------------
# model files


@dataclass(frozen=True)
class SMPLModel:
    """The arrays of a SMPL body model that the joints depend on (plus the rest, for smplx).

    Attributes:
        v_template: (V, 3) template vertices.
        shapedirs: (V, 3, NB) shape blend shapes.
        j_regressor: (24, V) dense joint regressor.
        parents: the 24 parents (root -1).
        arrays: every array read from the file (``posedirs``, ``weights``, ``f``, ...).
        path: where it was read from.
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    j_regressor: np.ndarray
    parents: tuple[int, ...]
    arrays: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    path: str | None = None

    def rest_joints(self, betas: np.ndarray | None = None) -> np.ndarray:
        """Rest joints ``J_regressor @ (v_template + shapedirs . betas)``.

        Args:
            betas: (NB',) shape coefficients (first ``NB'`` components), default zeros.

        Returns:
            (24, 3) float64.
        """
        verts = self.v_template.astype(np.float64)
        if betas is not None and np.any(betas):
            betas = np.asarray(betas, dtype=np.float64)
            nb = min(len(betas), self.shapedirs.shape[-1])
            # (V, 3, nb) . (nb,) -> (V, 3)
            verts = verts + self.shapedirs[..., :nb].astype(np.float64) @ betas[:nb]
        return self.j_regressor.astype(np.float64) @ verts


def find_smpl_model(model_dir: str | os.PathLike[str], gender: str = "neutral") -> Path:
    """The SMPL model file for ``gender`` under ``model_dir`` (or ``model_dir`` itself if a file).

    Looks for ``SMPL_{GENDER}.npz`` then ``.pkl``, in ``model_dir`` and ``model_dir/smpl``, then
    the official file names (``basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl``, ...). A sibling
    ``body_models_nochumpy`` folder (the zoo's layout) is searched first.

    Raises:
        ArtifactNotFoundError: nothing found; the message lists where it looked and what to do.
    """
    path = Path(model_dir)
    if path.is_file():
        return path
    g = gender.upper()
    names = [f"SMPL_{g}.npz", f"SMPL_{g}.pkl", f"smpl/SMPL_{g}.npz", f"smpl/SMPL_{g}.pkl"]
    if gender.lower() == "neutral":
        names += [
            "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl",
            "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
            "smpl/basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl",
        ]
    roots = [path]
    if path.name == "body_models":
        roots.insert(0, path.with_name("body_models_nochumpy"))
    looked = []
    for root in roots:
        for name in names:
            candidate = root / name
            looked.append(str(candidate))
            if candidate.is_file():
                return candidate
    raise ArtifactNotFoundError(
        f"no SMPL {gender} model found under {path} (looked for: {', '.join(looked[:6])}, ...). "
        f"Download SMPL from https://smpl.is.tue.mpg.de (free registration), then put "
        f"SMPL_{g}.npz (or a chumpy-free SMPL_{g}.pkl) in {path}; an official chumpy .pkl is "
        f"converted once with `python -m hftrainer_mogents.convert.smpl_model <file.pkl> "
        f"{path / f'SMPL_{g}.npz'}`."
    )


def load_smpl_model(model_dir: str | os.PathLike[str], gender: str = "neutral") -> SMPLModel:
    """Read a SMPL model from a ``.npz`` or a chumpy-free ``.pkl`` (no pickled code runs).

    Args:
        model_dir: a folder (see :func:`find_smpl_model`) or the file itself.
        gender: ``"neutral"`` (the bridge's), ``"male"`` or ``"female"``.

    Returns:
        The model.

    Raises:
        ArtifactNotFoundError: no model file.
        ArtifactFormatError: a chumpy pickle (with the command that converts it), or missing
            arrays / wrong shapes.
    """
    from hftrainer_mogents.convert.smpl_model import read_smpl_pickle

    path = find_smpl_model(model_dir, gender)
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except ValueError as err:  # object arrays need pickle: refuse
            raise ArtifactFormatError(f"{path}: not a plain .npz of arrays ({err})") from err
    else:
        arrays = read_smpl_pickle(path, allow_chumpy=False)
    missing = [k for k in _MODEL_KEYS if k not in arrays]
    if missing:
        raise ArtifactFormatError(f"{path}: not a SMPL model file, missing arrays {missing}")
    v_template = np.asarray(arrays["v_template"], dtype=np.float64)
    shapedirs = np.asarray(arrays["shapedirs"])
    j_reg = np.asarray(arrays["J_regressor"], dtype=np.float64)
    kintree = np.asarray(arrays["kintree_table"])
    n_verts = v_template.shape[0]
    if v_template.shape != (n_verts, 3) or shapedirs.shape[:2] != (n_verts, 3):
        raise ArtifactFormatError(
            f"{path}: v_template {v_template.shape} and shapedirs {shapedirs.shape} do not match "
            "(expected (V, 3) and (V, 3, NB))"
        )
    if j_reg.shape != (24, n_verts) or kintree.shape != (2, 24):
        raise ArtifactFormatError(
            f"{path}: J_regressor {j_reg.shape} / kintree_table {kintree.shape}, expected "
            f"(24, {n_verts}) / (2, 24): not a SMPL (24-joint) model"
        )
    parents = tuple(-1 if i == 0 else int(p) for i, p in enumerate(kintree[0]))
    if list(parents[:NUM_JOINTS]) != SMPL_PARENTS[:NUM_JOINTS]:
        raise ArtifactFormatError(f"{path}: unexpected SMPL joint tree {parents}")
    return SMPLModel(v_template, shapedirs, j_reg, parents, arrays, str(path))


def smplx_model(model: SMPLModel, **kwargs: Any) -> Any:
    """A ``smplx.SMPL`` built from the same arrays (for comparisons; the bridge does not need it).

    Raises:
        MissingDependencyError: smplx is not installed.
    """
    try:
        import smplx
        from smplx.utils import Struct
    except ImportError as err:
        raise MissingDependencyError(
            'smplx is needed here: pip install "hftrainer-mogents[bridge]"'
        ) from err
    arrays = dict(model.arrays)
    n_verts = model.v_template.shape[0]
    arrays.setdefault("posedirs", np.zeros((n_verts, 3, 207), dtype=np.float32))
    arrays.setdefault("weights", np.eye(24, dtype=np.float32)[np.zeros(n_verts, dtype=int)])
    arrays.setdefault("f", np.zeros((1, 3), dtype=np.int64))
    arrays["J_regressor"] = model.j_regressor
    model_path = os.path.dirname(model.path or ".")
    return smplx.SMPL(model_path=model_path, data_struct=Struct(**arrays), **kwargs)


# --------------------------------------------------------------------------------------------
# forward kinematics


@dataclass
class FKOutput:
    """Result of :func:`forward_kinematics`.

    Attributes:
        joints: (..., J, 3) world joint positions.
        global_rotmats: (..., J, 3, 3) world rotations of the joints' frames (None when not
            requested).
    """

    joints: torch.Tensor
    global_rotmats: torch.Tensor | None


def _levels(parents: Sequence[int]) -> list[list[int]]:
    depth = [0] * len(parents)
    for j, p in enumerate(parents):
        if p >= j:
            raise InvalidInputError(f"parents must precede children, got parent {p} of {j}")
        depth[j] = 0 if p < 0 else depth[p] + 1
    levels: list[list[int]] = [[] for _ in range(max(depth) + 1)]
    for j, d in enumerate(depth):
        levels[d].append(j)
    return levels


@dataclass(frozen=True)
class _Run:
    """Consecutive joints of one tree depth whose parents are consecutive joints of one earlier
    run (``parent_slice``) or one single joint (``parent_single``)."""

    joints: tuple[int, ...]
    parent_run: int
    parent_slice: slice | None
    parent_single: int | None
    needs_rotation: bool


@functools.lru_cache(maxsize=16)
def _plan(parents: tuple[int, ...]) -> tuple[_Run, ...] | None:
    """Runs covering joints ``1..J-1`` in order, or None when the tree does not split that way
    (then :func:`forward_kinematics` gathers joint by joint)."""
    has_children = {p for p in parents if p >= 0}
    where: dict[int, tuple[int, int]] = {0: (-1, 0)}  # joint -> (run, index in run); -1: root
    runs: list[_Run] = []
    order = [j for level in _levels(parents)[1:] for j in level]
    if order != list(range(1, len(parents))):
        return None
    i = 0
    while i < len(order):
        first = order[i]
        src_run, src_idx = where[parents[first]]
        members = [first]
        same = consecutive = True
        while i + len(members) < len(order):
            nxt = order[i + len(members)]
            run, idx = where.get(parents[nxt], (None, None))
            if run != src_run or _levels_depth(parents, nxt) != _levels_depth(parents, first):
                break
            same_next = same and idx == src_idx
            consecutive_next = consecutive and idx == src_idx + len(members)
            if not (same_next or consecutive_next):
                break
            same, consecutive = same_next, consecutive_next
            members.append(nxt)
        if len(members) == 1 or same:
            pslice, psingle = None, src_idx
        else:
            pslice, psingle = slice(src_idx, src_idx + len(members)), None
        run_id = len(runs)
        runs.append(
            _Run(tuple(members), src_run, pslice, psingle, any(m in has_children for m in members))
        )
        for k, m in enumerate(members):
            where[m] = (run_id, k)
        i += len(members)
    return tuple(runs)


def _levels_depth(parents: Sequence[int], j: int) -> int:
    depth = 0
    while parents[j] >= 0:
        j = parents[j]
        depth += 1
    return depth


def forward_kinematics(
    local_rotmats: torch.Tensor,
    rest_joints: torch.Tensor,
    parents: Sequence[int] = SMPL_PARENTS[:NUM_JOINTS],
    transl: torch.Tensor | None = None,
    *,
    with_rotations: bool = True,
) -> FKOutput:
    """SMPL's rigid-transform chain on the rest joints (no vertices).

    ``G_j = G_parent R_j`` and ``p_j = p_parent + G_parent (r_j - r_parent)``, with the root at
    ``r_0 + transl``: exactly the joints smplx returns (its first 24) for the same pose, shape
    and translation. Joints at the same depth with consecutive (or one shared) parents are
    computed together; rotations of joints without children are skipped unless
    ``with_rotations``.

    Args:
        local_rotmats: (..., J, 3, 3) parent-relative rotations (joint 0: global orientation).
        rest_joints: (J, 3) or (..., J, 3) shaped rest joints (``SMPLModel.rest_joints``).
        parents: the J parents (root -1), parents before children.
        transl: (..., 3) SMPL ``transl`` or None.
        with_rotations: also return the global rotations (the IK loop needs only positions).

    Returns:
        :class:`FKOutput` with joints (..., J, 3) and global rotations (..., J, 3, 3) (None when
        not requested).
    """
    num = local_rotmats.shape[-3]
    if len(parents) != num or rest_joints.shape[-2] != num:
        raise InvalidInputError(
            f"{num} rotations, {len(parents)} parents and {rest_joints.shape[-2]} rest joints "
            "must agree"
        )
    rest = rest_joints.to(local_rotmats.dtype)
    par = [max(p, 0) for p in parents]
    offsets = rest - rest[..., par, :]  # (..., J, 3); the root row is 0 and unused
    shared = offsets.dim() == 2  # one skeleton for the whole batch: offsets (J, 3)
    root = rest[..., 0, :].expand(local_rotmats.shape[:-3] + (3,))
    if transl is not None:
        root = root + transl
    plan = _plan(tuple(parents))
    if plan is None:
        return _forward_kinematics_gather(local_rotmats, offsets, parents, root)
    # one split instead of a slice per run: its backward is one concatenation, where slices
    # would each allocate and fill a gradient of the whole input
    pieces = local_rotmats.split([1, *(len(run.joints) for run in plan)], dim=-3)
    root_rot = pieces[0][..., 0, :, :]
    rots: list[torch.Tensor | None] = []
    poss: list[torch.Tensor] = []
    for k, run in enumerate(plan):
        lo, hi = run.joints[0], run.joints[-1] + 1
        local = pieces[k + 1]
        if run.parent_run < 0:
            gp_single, pp_single = root_rot, root
            gp = pp = None
        elif run.parent_single is not None:
            gp_single = rots[run.parent_run][..., run.parent_single, :, :]  # type: ignore[index]
            pp_single = poss[run.parent_run][..., run.parent_single, :]
            gp = pp = None
        else:
            gp = rots[run.parent_run][..., run.parent_slice, :, :]  # type: ignore[index]
            pp = poss[run.parent_run][..., run.parent_slice, :]
        off = offsets[..., lo:hi, :]
        if gp is None:
            # one parent for the whole run: (..., 3, 3) x (L, 3) -> (..., L, 3)
            if shared:
                step = torch.einsum("...ij,lj->...li", gp_single, off)
            else:
                step = (gp_single[..., None, :, :] @ off[..., None])[..., 0]
            pos = pp_single[..., None, :] + step
            if run.needs_rotation or with_rotations:
                rots.append(gp_single[..., None, :, :] @ local)
            else:
                rots.append(None)
        else:
            if shared:
                step = torch.einsum("...lij,lj->...li", gp, off)
            else:
                step = (gp @ off[..., None])[..., 0]
            pos = pp + step
            if run.needs_rotation or with_rotations:
                rots.append(gp @ local)
            else:
                rots.append(None)
        poss.append(pos)
    joints = torch.cat([root[..., None, :], *poss], dim=-2)
    glob = None
    if with_rotations:
        glob = torch.cat([root_rot[..., None, :, :], *rots], dim=-3)  # type: ignore[list-item]
    return FKOutput(joints=joints, global_rotmats=glob)  # type: ignore[arg-type]


def _forward_kinematics_gather(
    local_rotmats: torch.Tensor, offsets: torch.Tensor, parents: Sequence[int], root: torch.Tensor
) -> FKOutput:
    """Joint-by-joint fallback of :func:`forward_kinematics` for trees of any order."""
    glob: list[torch.Tensor] = [local_rotmats[..., 0, :, :]]
    pos: list[torch.Tensor] = [root]
    for j in range(1, len(parents)):
        gp, pp = glob[parents[j]], pos[parents[j]]
        glob.append(gp @ local_rotmats[..., j, :, :])
        pos.append(pp + (gp @ offsets[..., j, :, None])[..., 0])
    return FKOutput(joints=torch.stack(pos, dim=-2), global_rotmats=torch.stack(glob, dim=-3))


# --------------------------------------------------------------------------------------------
# initialisation

# SMPL joint -> the child whose bone fixes its rotation (joints with several children use a fit
# over all of them: pelvis and spine3; leaves keep the parent's frame)
_MAIN_CHILD = {1: 4, 2: 5, 3: 6, 4: 7, 5: 8, 6: 9, 7: 10, 8: 11, 12: 15, 13: 16, 14: 17}
_MAIN_CHILD |= {16: 18, 17: 19, 18: 20, 19: 21}
_MULTI_CHILD = {0: (1, 2, 3), 9: (12, 13, 14)}
_LEAVES = (10, 11, 15, 20, 21)


def _kabsch(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Rotation ``R`` minimising ``sum |R src_i - dst_i|^2``.

    Args:
        src: (K, 3) or (..., K, 3) directions.
        dst: (..., K, 3) directions.

    Returns:
        (..., 3, 3).
    """
    src = src.expand_as(dst)
    h = src.transpose(-1, -2) @ dst  # (..., 3, K) @ (..., K, 3) -> (..., 3, 3)
    u, _, vh = torch.linalg.svd(h)
    d = torch.sign(torch.linalg.det(vh.transpose(-1, -2) @ u.transpose(-1, -2)))
    d = torch.where(d == 0, torch.ones_like(d), d)
    diag = torch.ones(h.shape[:-1], dtype=h.dtype, device=h.device)
    diag[..., 2] = d
    return vh.transpose(-1, -2) @ (diag[..., None] * u.transpose(-1, -2))


def _local_from_global(glob: list[torch.Tensor]) -> torch.Tensor:
    local = [glob[0]]
    for j in range(1, NUM_JOINTS):
        local.append(glob[SMPL_PARENTS[j]].transpose(-1, -2) @ glob[j])
    return torch.stack(local, dim=-3)


def init_rotations_from_joints(target: torch.Tensor, rest_joints: torch.Tensor) -> torch.Tensor:
    """Analytic IK: SMPL rotations whose rest bones point along the target bones.

    The pelvis and spine3 (several children) take the best-fit rotation of their child bones;
    every other joint turns its parent's frame by the smallest rotation that aligns its bone, so
    twist is inherited down each chain; end joints keep their parent's frame.

    Args:
        target: (..., 22, 3) joint positions.
        rest_joints: (22, 3) (or more joints; the first 22 are used) shaped rest joints.

    Returns:
        (..., 22, 3, 3) parent-relative rotations (joint 0 global).
    """
    rest = rest_joints[:NUM_JOINTS].to(target.dtype)
    bone_rest = rest - rest[[max(p, 0) for p in SMPL_PARENTS[:NUM_JOINTS]]]
    bone_tgt = target - target[..., [max(p, 0) for p in SMPL_PARENTS[:NUM_JOINTS]], :]
    unit = torch.nn.functional.normalize
    glob: list[torch.Tensor] = [target.new_empty(0)] * NUM_JOINTS
    for level in _levels(SMPL_PARENTS[:NUM_JOINTS]):
        for j in level:
            parent_glob = None if j == 0 else glob[SMPL_PARENTS[j]]
            if j in _MULTI_CHILD:
                kids = list(_MULTI_CHILD[j])
                glob[j] = _kabsch(
                    unit(bone_rest[kids], dim=-1), unit(bone_tgt[..., kids, :], dim=-1)
                )
            elif j in _MAIN_CHILD:
                c = _MAIN_CHILD[j]
                assert parent_glob is not None
                current = (parent_glob @ bone_rest[c, :, None])[..., 0]  # (..., 3)
                glob[j] = rotation_between(current, bone_tgt[..., c, :]) @ parent_glob
            else:
                assert parent_glob is not None
                glob[j] = parent_glob
    return _local_from_global(glob)


def init_rotations_from_hml263(hml_global: torch.Tensor, rest_joints: torch.Tensor) -> torch.Tensor:
    """SMPL rotations from HumanML3D's own rotations (``hml263.recover_global_bone_rotations``).

    HumanML3D's rotation ``k`` maps its raw axis ``RAW_OFFSETS[k]`` onto the bone ``parent(k) ->
    k``. The SMPL joint ``p`` where that bone starts gets that rotation composed with the fixed
    rotation taking SMPL's rest bone onto the raw axis; pelvis and spine3 use the bone that
    continues their HumanML3D chain (spine1, neck), the pelvis keeps only HumanML3D's root heading
    (inverted: HumanML3D stores world-to-heading), end joints keep their parent's frame.

    Args:
        hml_global: (..., 22, 3, 3) from ``recover_global_bone_rotations``.
        rest_joints: (22, 3) shaped rest joints.

    Returns:
        (..., 22, 3, 3) parent-relative rotations (joint 0 global).
    """
    rest = rest_joints[:NUM_JOINTS].to(hml_global.dtype)
    raw = hml_global.new_tensor(hml263.RAW_OFFSETS)
    glob: list[torch.Tensor] = [hml_global.new_empty(0)] * NUM_JOINTS
    glob[0] = hml_global[..., 0, :, :].transpose(-1, -2)
    main_child = {**_MAIN_CHILD, 9: 12}
    for level in _levels(SMPL_PARENTS[:NUM_JOINTS])[1:]:
        for j in level:
            if j in main_child:
                c = main_child[j]
                align = rotation_between(rest[c] - rest[j], raw[c])  # (3, 3)
                glob[j] = hml_global[..., c, :, :] @ align
            else:
                glob[j] = glob[SMPL_PARENTS[j]]
    return _local_from_global(glob)


# --------------------------------------------------------------------------------------------
# batched fit


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
            so their twist about the bone is arbitrary, and the fit cannot see twist).
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
    rotation_init: Literal["joints", "hml263"] = "joints"
    iters: int = 80
    lr: float = 0.02
    pose_keep_weight: float = 1e-4
    smooth_weight: float = 1e-3
    pose_smooth_ratio: float = 1e-2
    resample_mode: ResampleMode = "zoo"
    min_frames: int = 4
    batch_frames: int = 8192


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
    motion: np.ndarray | torch.Tensor, config: IKConfig | None = None, name: str = "clip"
) -> PreparedClip:
    """Validate one clip, recover its joints (263 input), resample and floor-align them.

    Args:
        motion: (T, 263) HumanML3D features in physical units, or (T, 22, 3) joints.
        config: the fit settings.
        name: for messages.

    Returns:
        :class:`PreparedClip`.

    Raises:
        InvalidInputError: wrong shape, too short, NaN/inf.
    """
    cfg = config or IKConfig()
    if cfg.rotation_init not in ("joints", "hml263"):
        raise InvalidInputError(
            f"rotation_init must be 'joints' or 'hml263', got {cfg.rotation_init!r}"
        )
    x = _validate(motion, name, cfg.min_frames)
    hml_global = None
    if x.dim() == 2:
        joints = hml263.recover_from_ric(x)
        if cfg.rotation_init == "hml263":
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
            if clip.hml_global is not None and cfg.rotation_init == "hml263":
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


@functools.lru_cache(maxsize=4)
def _cached_model(path: str, mtime: float) -> SMPLModel:
    return load_smpl_model(path)


def resolve_model(
    model: SMPLModel | None = None, model_dir: str | os.PathLike[str] | None = None
) -> SMPLModel:
    """``model`` if given, else the model under ``model_dir`` (cached while the file is unchanged).

    Raises:
        InvalidInputError: neither was given.
    """
    if model is not None:
        return model
    if model_dir is None:
        raise InvalidInputError(
            "the SMPL bridge needs the SMPL neutral model: pass model=... or model_dir=... "
            "(a folder holding SMPL_NEUTRAL.npz or a chumpy-free SMPL_NEUTRAL.pkl)"
        )
    path = find_smpl_model(model_dir)
    return _cached_model(str(path.resolve()), path.stat().st_mtime)


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


# --------------------------------------------------------------------------------------------
# motion_135 <-> SMPL parameters


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
