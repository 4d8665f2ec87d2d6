"""Forward kinematics on the SMPL rest joints, and the starting rotations of the fit.

:func:`forward_kinematics` is SMPL's rigid-transform chain without vertices: the joints smplx
returns, fast enough to sit inside the fit's loop. The fit starts from
:func:`init_rotations_from_joints` (an analytic IK on the target joints, the default) or from
:func:`init_rotations_from_hml263` (HumanML3D's stored rotations, the zoo's start), which has two
corrections to the zoo's: HumanML3D's rotation of joint ``k`` turns the bone *ending* at ``k``, so
it goes to the SMPL joint where that bone starts (the zoo gave it to ``k``), and the root heading
is HumanML3D's root quaternion inverted (the zoo used it as is, which mirrors the yaw).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.motion import hml263
from hftrainer_mogents.motion.rotations import kabsch_rotation, rotation_between
from hftrainer_mogents.motion.smpl135.body_model import NUM_JOINTS, SMPL_PARENTS

__all__ = [
    "FKOutput",
    "forward_kinematics",
    "init_rotations_from_joints",
    "init_rotations_from_hml263",
]


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
                glob[j] = kabsch_rotation(
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
