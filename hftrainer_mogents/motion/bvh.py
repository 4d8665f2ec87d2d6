"""BVH export of 22-joint HumanML3D motions, a BVH reader, and BVH forward kinematics.

The file :func:`write_bvh` writes
---------------------------------

- **Hierarchy**: the 22 SMPL body joints under their HumanML3D/SMPL names (:data:`JOINT_NAMES`
  of :mod:`~hftrainer_mogents.motion.hml263`: ``pelvis``, ``left_hip``, ``right_hip``,
  ``spine1``, ...; ``names=`` picks others), in that order and with that tree (``PARENTS``).
  The five leaves (``left_foot``, ``right_foot``, ``head``, ``left_wrist``, ``right_wrist``) end
  in an ``End Site`` half as long as their incoming bone, along the same rest direction.
- **Channels**: every joint but the root has ``Zrotation Yrotation Xrotation``; the root has
  ``Xposition Yposition Zposition Yrotation Zrotation Xrotation``. Channels compose left to
  right in the usual BVH way: ``R = Rz(z) @ Ry(y) @ Rx(x)`` on column vectors (Euler order
  ``"ZYX"``, :data:`JOINT_EULER_ORDER`) for the joints, ``R = Ry @ Rz @ Rx`` (``"YZX"``,
  :data:`ROOT_EULER_ORDER`) for the root; angles in degrees. The root differs because its big
  rotation is the heading, about y: as the middle angle of ``"ZYX"`` it would hit gimbal lock
  whenever the body faces +-x, while first in ``"YZX"`` it turns freely (the root's lock is then
  at 90 degrees of sideways lean, lying on one's side). Leaves carry three channels of zeros:
  they move nothing.
- **Units and axes**: positions and offsets are in metres by default (``units="cm"`` multiplies
  them by 100; Blender's BVH import then wants ``Scale`` 0.01), y up, the figure faces +z in the
  rest pose, as HumanML3D does. The root's ``OFFSET`` is zero and its position channels hold the
  absolute pelvis position. ``Frame Time`` is ``1 / fps`` (0.05 s at HumanML3D's 20 fps).
- **Rest pose (the OFFSETs)**: standing straight, facing +z, legs and arms hanging straight
  down, each bone as long as its mean length over the clip. The bone from a single-child joint
  points along a fixed rest direction (HumanML3D's ``RAW_OFFSETS``, except that the
  collar-to-shoulder bones point sideways and the neck-to-head bone up, which looks like a
  person); the bones leaving the pelvis (hips, spine1) and spine3 (collars, neck) keep the
  clip's own average shape around their joint, because those triangles are rigid in real
  skeletons and forcing them onto axes would cost centimetres.

How the rotations are solved
----------------------------

Only joint positions are used (for 263 features, the positions :func:`recover_from_ric` gives);
HumanML3D's 6D rotations are not: they are minimal rotations from a world-fixed rest direction
(so a limb's twist does not follow the body's heading), and a generated motion's rotations need
not agree with its positions, which are what the other outputs show.

- ``pelvis`` and ``spine3`` (three children each): the rotation that best maps the rest offsets
  onto the bones to their children (least squares, Kabsch).
- every other joint with a child: the smallest rotation, relative to its parent's frame, that
  turns its child's rest direction onto the child's bone (a pure swing, no twist relative to the
  parent). With limbs resting along +-y and Euler order ZYX, such swings keep the middle angle
  (the twist axis) away from gimbal lock unless the limb turns by nearly 180 degrees.
- leaves: no rotation (the identity), as nothing hangs from them.

Euler angles are unwrapped over time (the closer of the two equivalent triples, +-360 degrees),
so the curves Blender imports are continuous.

Exactness: bone directions are reproduced exactly, except the pelvis and spine3 children, which
are exact only when those triangles are rigid; bone lengths are the clip's mean lengths, so the
round trip ``joints -> BVH -> FK`` is exact for a rigid skeleton (a real HumanML3D clip) and
otherwise off by the clip's bone-length variation (see :func:`bone_length_stats`).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError, InvalidInputError
from hftrainer_mogents.motion.hml263 import (
    DIM_HML263,
    FPS,
    JOINT_NAMES,
    NUM_JOINTS,
    PARENTS,
    RAW_OFFSETS,
    recover_from_ric,
)
from hftrainer_mogents.motion.rotations import (
    euler_to_matrix,
    kabsch_rotation,
    matrix_to_euler,
    rotation_between,
    unwrap_euler,
)
from hftrainer_mogents.utils.io import atomic_write_text

__all__ = [
    "BVHMotion",
    "BoneLengthStats",
    "JOINT_EULER_ORDER",
    "ROOT_EULER_ORDER",
    "REST_DIRECTIONS",
    "write_bvh",
    "joints_to_bvh",
    "format_bvh",
    "read_bvh",
    "parse_bvh",
    "bvh_forward_kinematics",
    "bone_length_stats",
]

JOINT_EULER_ORDER = "ZYX"
ROOT_EULER_ORDER = "YZX"
_ROOT_CHANNELS = ("Xposition", "Yposition", "Zposition") + tuple(
    f"{axis}rotation" for axis in ROOT_EULER_ORDER
)
_JOINT_CHANNELS = tuple(f"{axis}rotation" for axis in JOINT_EULER_ORDER)
_UNIT_SCALE = {"m": 1.0, "cm": 100.0}
_END_SITE_FRACTION = 0.5

# Rest direction of the bone ending at each joint, for bones leaving a single-child joint:
# RAW_OFFSETS with the shoulders sideways and the head up (a person standing, arms down).
REST_DIRECTIONS: list[list[int]] = [list(d) for d in RAW_OFFSETS]
REST_DIRECTIONS[15] = [0, 1, 0]  # neck -> head
REST_DIRECTIONS[16] = [1, 0, 0]  # left collar -> left shoulder
REST_DIRECTIONS[17] = [-1, 0, 0]  # right collar -> right shoulder

# Joints whose rotation is fitted to three children: joint -> (left child, right child, up child);
# the children define the joint's data frame (x: right-to-left, y: up), in which their average
# offsets become the rest offsets.
_MULTI_CHILD = {0: (1, 2, 3), 9: (13, 14, 12)}


@dataclass
class BVHMotion:
    """A BVH file in memory: the hierarchy and the motion table.

    Attributes:
        names: (J,) joint names, in file order (depth first; a parent before its children).
        parents: (J,) parent index of each joint, -1 for the root.
        offsets: (J, 3) float64 ``OFFSET`` of each joint from its parent, in file units.
        channels: (J,) the channel names of each joint, in file order.
        frame_time: seconds per frame.
        motion: (T, C) float64 channel values, ``C = sum(len(c) for c in channels)``, in the
            order of ``channels``; positions in file units, rotations in degrees.
        end_sites: joint index -> (3,) ``End Site`` offset, for the joints that have one.
    """

    names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[tuple[str, ...]]
    frame_time: float
    motion: np.ndarray
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time


@dataclass
class BoneLengthStats:
    """Bone lengths of a clip, one entry per joint (the bone from its parent; 0 for the root).

    Attributes:
        mean: (J,) mean length over frames.
        std: (J,) standard deviation over frames.
        min: (J,) shortest.
        max: (J,) longest.
    """

    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray


# --------------------------------------------------------------------------------------------
# fitting


def _as_joints(features_or_joints: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(T, 263) features or (T, 22, 3) joints -> (T, 22, 3) float64 CPU joints."""
    x = features_or_joints
    if not isinstance(x, torch.Tensor | np.ndarray):
        raise InvalidInputError(
            f"expected a numpy array or torch tensor of shape (T, {DIM_HML263}) (HumanML3D "
            f"features) or (T, {NUM_JOINTS}, 3) (joints), got {type(x).__name__}"
        )
    shape = tuple(x.shape)
    if len(shape) == 2 and shape[1] == DIM_HML263 and shape[0] > 0:
        x = recover_from_ric(x)
    elif not (len(shape) == 3 and shape[1:] == (NUM_JOINTS, 3) and shape[0] > 0):
        raise InvalidInputError(
            f"expected (T, {DIM_HML263}) HumanML3D features or (T, {NUM_JOINTS}, 3) joint "
            f"positions with T >= 1, got shape {shape}"
        )
    joints = (x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))).detach()
    joints = joints.to(device="cpu", dtype=torch.float64)
    if not torch.isfinite(joints).all():
        raise InvalidInputError("the motion contains NaN or infinite values; cannot export it")
    return joints


def _children(parents: list[int]) -> list[list[int]]:
    kids: list[list[int]] = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            kids[p].append(j)
    return kids


def _frame_from(left: torch.Tensor, right: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """(T, 3) bone vectors -> (T, 3, 3) orthonormal frames, columns x (right to left), y, z."""
    x = torch.nn.functional.normalize(left - right, dim=-1)
    y = up - (up * x).sum(-1, keepdim=True) * x
    y = torch.nn.functional.normalize(y, dim=-1)
    z = torch.linalg.cross(x, y, dim=-1)
    return torch.stack((x, y, z), dim=-1)


def _fit(joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]:
    """Rest offsets, local rotations and end sites of the 22-joint skeleton for a clip.

    Args:
        joints: (T, 22, 3) float64 positions.

    Returns:
        ``(offsets (22, 3), local (T, 22, 3, 3), end_sites {leaf: (3,)})``; ``local[:, 0]`` is
        the root's world rotation.
    """
    num_frames = joints.shape[0]
    kids = _children(PARENTS)
    bones = joints - joints[:, [max(p, 0) for p in PARENTS]]  # (T, 22, 3); bone 0 is zero
    lengths = bones.norm(dim=-1).mean(0)  # (22,)
    rest_dirs = joints.new_tensor(REST_DIRECTIONS, dtype=torch.float64)  # (22, 3)

    # 1. rest offsets: fixed directions, except the children of the three-child joints
    offsets = rest_dirs * lengths[:, None]
    for joint, (left, right, up) in _MULTI_CHILD.items():
        frame = _frame_from(bones[:, left], bones[:, right], bones[:, up])  # (T, 3, 3)
        for child in kids[joint]:
            local = torch.einsum("tji,tj->ti", frame, bones[:, child])  # frame^T @ bone
            direction = torch.nn.functional.normalize(local.mean(0), dim=0)
            offsets[child] = direction * lengths[child]

    # 2. world rotations, parents first (PARENTS is topologically ordered). Each joint aims its
    # children at their targets from where the fixed-length skeleton has put the joint itself
    # (not along the input bones), so bone-length errors do not add up along the chains.
    eye = torch.eye(3, dtype=joints.dtype).expand(num_frames, 3, 3)
    world: list[torch.Tensor] = [eye] * NUM_JOINTS
    placed: list[torch.Tensor] = [joints[:, 0]] * NUM_JOINTS  # (T, 3) positions of the fit
    for joint in range(NUM_JOINTS):
        parent_rot = world[PARENTS[joint]] if joint > 0 else eye
        cs = kids[joint]
        if joint in _MULTI_CHILD:
            aims = joints[:, cs] - placed[joint][:, None]  # (T, C, 3)
            world[joint] = kabsch_rotation(offsets[cs], aims)
        elif len(cs) == 1:
            aim = joints[:, cs[0]] - placed[joint]  # (T, 3)
            current = torch.einsum("tij,j->ti", parent_rot, offsets[cs[0]])  # (T, 3)
            world[joint] = rotation_between(current, aim) @ parent_rot
        else:
            world[joint] = parent_rot
        for child in cs:
            placed[child] = placed[joint] + torch.einsum("tij,j->ti", world[joint], offsets[child])
    world_t = torch.stack(world, dim=1)  # (T, 22, 3, 3)

    # 3. local rotations: parent^T @ own; the root's is its world rotation
    parent_world = world_t[:, [max(p, 0) for p in PARENTS]]
    local = parent_world.transpose(-1, -2) @ world_t
    local[:, 0] = world_t[:, 0]
    leaves = [j for j in range(NUM_JOINTS) if not kids[j]]
    local[:, leaves] = torch.eye(3, dtype=joints.dtype)  # exactly, not parent^T @ parent

    end_sites = {
        leaf: rest_dirs[leaf] * lengths[leaf] * _END_SITE_FRACTION
        for leaf in range(NUM_JOINTS)
        if not kids[leaf]
    }
    return offsets, local, end_sites


def joints_to_bvh(
    features_or_joints: torch.Tensor | np.ndarray,
    *,
    fps: float = FPS,
    units: Literal["m", "cm"] = "m",
    names: list[str] | None = None,
) -> BVHMotion:
    """Solve a 22-joint HumanML3D motion into a BVH skeleton and motion table (no file I/O).

    See the module docstring for the hierarchy, channels, rest pose and solver.

    Args:
        features_or_joints: (T, 263) HumanML3D features (physical units, not normalised) or
            (T, 22, 3) joint positions in metres, y up; numpy or torch, any float dtype.
        fps: frames per second (``Frame Time = 1 / fps``).
        units: ``"m"`` (metres, as HumanML3D) or ``"cm"`` for positions and offsets.
        names: 22 joint names to write instead of :data:`JOINT_NAMES`.

    Returns:
        The :class:`BVHMotion` in file order (depth first: ``pelvis, left_hip, left_knee, ...``;
        :func:`bvh_forward_kinematics` with ``names=JOINT_NAMES`` gives HumanML3D's order back),
        ``motion`` of shape (T, 6 + 21 * 3).
    """
    if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
        raise InvalidInputError(f"fps must be a positive number, got {fps!r}")
    if units not in _UNIT_SCALE:
        raise InvalidInputError(f"units must be one of {sorted(_UNIT_SCALE)}, got {units!r}")
    names = list(JOINT_NAMES if names is None else names)
    bad = [n for n in names if not isinstance(n, str) or not n or re.search(r"[\s{}]", n)]
    if len(names) != NUM_JOINTS or bad or len(set(names)) != len(names):
        raise InvalidInputError(
            f"names must be {NUM_JOINTS} distinct non-empty strings without spaces or braces, "
            f"got {len(names)} names (invalid: {bad[:3]})"
        )
    joints = _as_joints(features_or_joints)
    scale = _UNIT_SCALE[units]
    offsets, local, end_sites = _fit(joints)
    euler = torch.cat(
        (
            matrix_to_euler(local[:, :1], ROOT_EULER_ORDER),
            matrix_to_euler(local[:, 1:], JOINT_EULER_ORDER),
        ),
        dim=1,
    )  # (T, 22, 3)
    degrees = torch.rad2deg(unwrap_euler(euler))
    root_pos = joints[:, 0] * scale  # (T, 3)
    motion = torch.cat((root_pos, degrees.reshape(len(joints), -1)), dim=-1)  # (T, 3 + 66)

    offsets = offsets * scale
    offsets[0] = 0.0  # the root's position channels are absolute
    bvh = BVHMotion(
        names=names,
        parents=list(PARENTS),
        offsets=offsets.numpy(),
        channels=[_ROOT_CHANNELS] + [_JOINT_CHANNELS] * (NUM_JOINTS - 1),
        frame_time=1.0 / float(fps),
        motion=motion.numpy(),
        end_sites={k: (v * scale).numpy() for k, v in end_sites.items()},
    )
    return _reorder(bvh, _dfs_order(PARENTS))


# --------------------------------------------------------------------------------------------
# text


def _fmt(x: float) -> str:
    s = f"{x:.6f}"
    return "0.000000" if s == "-0.000000" else s


def _dfs_order(parents: list[int]) -> list[int]:
    """Joint indices in the order a BVH hierarchy lists them (depth first, children in order)."""
    kids = _children(parents)
    order: list[int] = []
    stack = [j for j, p in enumerate(parents) if p < 0][::-1]
    while stack:
        joint = stack.pop()
        order.append(joint)
        stack.extend(reversed(kids[joint]))
    return order


def _reorder(bvh: BVHMotion, order: list[int]) -> BVHMotion:
    """``bvh`` with its joints (and their motion columns) listed in ``order``."""
    new_index = {old: new for new, old in enumerate(order)}
    starts = np.cumsum([0] + [len(c) for c in bvh.channels])
    columns = [c for j in order for c in range(starts[j], starts[j + 1])]
    return BVHMotion(
        names=[bvh.names[j] for j in order],
        parents=[new_index[bvh.parents[j]] if bvh.parents[j] >= 0 else -1 for j in order],
        offsets=np.asarray(bvh.offsets)[order],
        channels=[bvh.channels[j] for j in order],
        frame_time=bvh.frame_time,
        motion=np.asarray(bvh.motion)[:, columns],
        end_sites={new_index[j]: v for j, v in bvh.end_sites.items()},
    )


def format_bvh(bvh: BVHMotion) -> str:
    """The BVH text of ``bvh`` (tab-indented hierarchy, 6 decimals, ``\\n`` line ends).

    The hierarchy is written depth first; if ``bvh`` lists its joints in another order, the
    motion columns are permuted to match.

    Args:
        bvh: the motion to write.

    Returns:
        The whole file as a string.
    """
    order = _dfs_order(bvh.parents)
    if len(order) != len(bvh.names):
        raise InvalidInputError(f"parents {bvh.parents} do not form a tree")
    if order != list(range(len(order))):
        bvh = _reorder(bvh, order)
    kids = _children(bvh.parents)
    lines: list[str] = ["HIERARCHY"]

    def emit(joint: int, depth: int) -> None:
        pad = "\t" * depth
        kind = "ROOT" if bvh.parents[joint] < 0 else "JOINT"
        lines.append(f"{pad}{kind} {bvh.names[joint]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}\tOFFSET " + " ".join(_fmt(v) for v in bvh.offsets[joint]))
        chans = bvh.channels[joint]
        lines.append(f"{pad}\tCHANNELS {len(chans)}" + "".join(f" {c}" for c in chans))
        for child in kids[joint]:
            emit(child, depth + 1)
        if joint in bvh.end_sites:
            lines.append(f"{pad}\tEnd Site")
            lines.append(f"{pad}\t{{")
            site = " ".join(_fmt(v) for v in bvh.end_sites[joint])
            lines.append(f"{pad}\t\tOFFSET {site}")
            lines.append(f"{pad}\t}}")
        lines.append(f"{pad}}}")

    for root in (j for j, p in enumerate(bvh.parents) if p < 0):
        emit(root, 0)
    lines.append("MOTION")
    lines.append(f"Frames: {bvh.num_frames}")
    lines.append(f"Frame Time: {bvh.frame_time:.6f}")
    lines.extend(" ".join(_fmt(v) for v in row) for row in bvh.motion.tolist())
    return "\n".join(lines) + "\n"


def write_bvh(
    path: str | os.PathLike[str],
    features_or_joints: torch.Tensor | np.ndarray,
    *,
    fps: float = FPS,
    units: Literal["m", "cm"] = "m",
    names: list[str] | None = None,
) -> BVHMotion:
    """Write a 22-joint HumanML3D motion as a BVH file (through a temporary name).

    Blender: File > Import > Motion Capture (.bvh), ``Scale`` 1.0 for ``units="m"`` (0.01 for
    ``"cm"``); the file is y-up, which Blender's default axis settings expect. See the module
    docstring for the skeleton, channels and solver.

    Args:
        path: the ``.bvh`` file to write; its folder is created.
        features_or_joints: (T, 263) HumanML3D features (physical units) or (T, 22, 3) joints
            in metres; numpy or torch.
        fps: frames per second (HumanML3D: 20, so ``Frame Time: 0.05``).
        units: ``"m"`` or ``"cm"``.
        names: 22 joint names to write instead of :data:`JOINT_NAMES`.

    Returns:
        The :class:`BVHMotion` that was written (before rounding to 6 decimals).
    """
    bvh = joints_to_bvh(features_or_joints, fps=fps, units=units, names=names)
    atomic_write_text(path, format_bvh(bvh))
    return bvh


def parse_bvh(text: str, *, source: str = "<string>") -> BVHMotion:
    """Parse BVH text (any hierarchy, channel layout and rotation order).

    Args:
        text: the file's contents.
        source: a name for error messages.

    Returns:
        The :class:`BVHMotion`; ``motion`` (T, C) float64.

    Raises:
        ArtifactFormatError: the text is not a well-formed BVH file; the message names the
            problem and where it is.
    """
    tokens = text.split()
    pos = 0

    def fail(msg: str) -> ArtifactFormatError:
        return ArtifactFormatError(f"{source}: not a valid BVH file: {msg} (token {pos})")

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise fail("unexpected end of file")
        pos += 1
        return tokens[pos - 1]

    def expect(word: str) -> None:
        got = take()
        if got != word:
            raise fail(f"expected {word!r}, got {got!r}")

    def floats(n: int) -> list[float]:
        try:
            return [float(take()) for _ in range(n)]
        except ValueError as err:
            raise fail(f"expected {n} numbers ({err})") from err

    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    end_sites: dict[int, np.ndarray] = {}
    valid = {"Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation"}

    def joint(parent: int) -> None:
        name = take()
        index = len(names)
        names.append(name)
        parents.append(parent)
        expect("{")
        expect("OFFSET")
        offsets.append(floats(3))
        chans: tuple[str, ...] = ()
        if tokens[pos : pos + 1] == ["CHANNELS"]:
            take()
            try:
                count = int(take())
            except ValueError as err:
                raise fail("CHANNELS count is not an integer") from err
            chans = tuple(take() for _ in range(count))
            unknown = [c for c in chans if c not in valid]
            if unknown:
                raise fail(f"unknown channels {unknown} of joint {name!r}")
        channels.append(chans)
        while True:
            word = take()
            if word == "}":
                return
            if word == "JOINT":
                joint(index)
            elif word == "End":
                expect("Site")
                if tokens[pos : pos + 1] != ["{"]:
                    take()  # some exporters name the end site
                expect("{")
                expect("OFFSET")
                end_sites[index] = np.asarray(floats(3), dtype=np.float64)
                expect("}")
            else:
                raise fail(f"unexpected {word!r} inside joint {name!r}")

    expect("HIERARCHY")
    while tokens[pos : pos + 1] == ["ROOT"]:
        take()
        joint(-1)
    if not names:
        raise fail("no ROOT joint")
    expect("MOTION")
    expect("Frames:")
    try:
        num_frames = int(take())
    except ValueError as err:
        raise fail("Frames: is not an integer") from err
    expect("Frame")
    expect("Time:")
    frame_time = floats(1)[0]
    if not frame_time > 0:
        raise fail(f"Frame Time must be positive, got {frame_time}")
    width = sum(len(c) for c in channels)
    values = tokens[pos:]
    if len(values) != num_frames * width:
        raise ArtifactFormatError(
            f"{source}: not a valid BVH file: {num_frames} frames x {width} channels need "
            f"{num_frames * width} numbers, found {len(values)}"
        )
    try:
        motion = np.asarray(values, dtype=np.float64).reshape(num_frames, width)
    except ValueError as err:
        raise ArtifactFormatError(f"{source}: not a valid BVH file: bad motion data") from err
    return BVHMotion(
        names=names,
        parents=parents,
        offsets=np.asarray(offsets, dtype=np.float64).reshape(-1, 3),
        channels=channels,
        frame_time=frame_time,
        motion=motion,
        end_sites=end_sites,
    )


def read_bvh(path: str | os.PathLike[str]) -> BVHMotion:
    """Read a BVH file (any hierarchy, channel layout and rotation order).

    Args:
        path: the ``.bvh`` file.

    Returns:
        The :class:`BVHMotion`: ``names``, ``parents``, ``offsets`` (J, 3), ``channels``,
        ``frame_time`` and ``motion`` (T, C) float64, in the file's units and degrees.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactNotFoundError(f"BVH file {path} does not exist")
    return parse_bvh(path.read_text(encoding="utf-8"), source=str(path))


def bvh_forward_kinematics(bvh: BVHMotion, *, names: list[str] | None = None) -> np.ndarray:
    """World joint positions of every frame of a BVH motion.

    A joint's local transform is its rotation channels composed in file order, and a
    translation: its position channels where it has them (absolute, replacing the ``OFFSET``;
    missing axes take the ``OFFSET``'s), else its ``OFFSET``.

    Args:
        bvh: a :class:`BVHMotion` (from :func:`read_bvh` or :func:`joints_to_bvh`).
        names: return these joints, in this order (e.g. ``JOINT_NAMES`` for HumanML3D's order);
            default: every joint, in ``bvh.names`` order.

    Returns:
        (T, J, 3) float64 positions in the file's units (J = ``len(names)`` when given).
    """
    select = None
    if names is not None:
        index = {name: j for j, name in enumerate(bvh.names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise InvalidInputError(
                f"joints {missing} are not in the BVH hierarchy; it has {bvh.names}"
            )
        select = [index[n] for n in names]
    motion = torch.from_numpy(np.asarray(bvh.motion, dtype=np.float64))
    num_frames = motion.shape[0]
    offsets = torch.from_numpy(np.asarray(bvh.offsets, dtype=np.float64))
    eye = torch.eye(3, dtype=torch.float64).expand(num_frames, 3, 3)
    world_rot: list[torch.Tensor] = []
    world_pos: list[torch.Tensor] = []
    column = 0
    for j, chans in enumerate(bvh.channels):
        trans = offsets[j].expand(num_frames, 3).clone()  # (T, 3)
        rot_cols: list[int] = []
        order = ""
        for name in chans:
            axis = "XYZ".index(name[0])
            if name.endswith("position"):
                trans[:, axis] = motion[:, column]
            else:
                rot_cols.append(column)
                order += name[0]
            column += 1
        local = (
            euler_to_matrix(torch.deg2rad(motion[:, rot_cols]), order) if rot_cols else eye
        )  # (T, 3, 3)
        parent = bvh.parents[j]
        if parent < 0:
            world_rot.append(local)
            world_pos.append(trans)
        else:
            world_rot.append(world_rot[parent] @ local)
            world_pos.append(
                world_pos[parent] + torch.einsum("tij,tj->ti", world_rot[parent], trans)
            )
    joints = torch.stack(world_pos, dim=1)  # (T, J, 3)
    if select is not None:
        joints = joints[:, select]
    return joints.numpy()


def bone_length_stats(features_or_joints: torch.Tensor | np.ndarray) -> BoneLengthStats:
    """Per-bone length statistics of a 22-joint clip (how far a fixed-length BVH can be exact).

    Args:
        features_or_joints: (T, 263) HumanML3D features or (T, 22, 3) joints in metres.

    Returns:
        :class:`BoneLengthStats` with (22,) arrays in metres (entry 0, the root, is 0).
    """
    joints = _as_joints(features_or_joints)
    lengths = (joints - joints[:, [max(p, 0) for p in PARENTS]]).norm(dim=-1)  # (T, 22)
    return BoneLengthStats(
        mean=lengths.mean(0).numpy(),
        std=lengths.std(0, correction=0).numpy(),
        min=lengths.min(0).values.numpy(),
        max=lengths.max(0).values.numpy(),
    )
