"""Generated motions as glTF 2.0 binaries (``.glb``): a skinned SMPL body, or the bare skeleton.

Both files are in glTF's own frame, which is HumanML3D's and SMPL's: metres, y up, the body facing
+z, so nothing is converted. Keys are one per motion frame (``LINEAR``, the first at 0 s, the last
at ``(T - 1) / fps``).

- :func:`smpl_gltf` (a SMPL model and the IK fit of :mod:`~hftrainer_mogents.motion.export`): the
  SMPL template mesh (betas 0; normals; the 4 largest skin weights of each vertex, renormalised to
  sum 1), the 24 SMPL joints as a node hierarchy whose rest translations are the rest joints'
  offsets, one skin (inverse bind matrices from the rest joints) and one animation: the 22 fitted
  parent-relative rotations as quaternions and the pelvis translation (the hands stay at rest).
  Linear blend skinning only: SMPL's pose corrective blend shapes are not in the file.
- :func:`skeleton_gltf` (joint positions only): the 22 HumanML3D joints as a node hierarchy with
  one translation track per joint (its offset from its parent, rotations left at identity) and a
  skin over them with no mesh. Translation tracks reproduce the motion's joints exactly, where
  rotation tracks would need one fixed set of bone lengths (which an untrained model's motions do
  not keep, see the BVH's ``bvh_fk_error_cm``) and an IK; the skin lets importers (Blender) build an
  armature from the joints rather than empties.

:mod:`pygltflib` (the ``render`` extra) is imported only when a file is built.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hftrainer_mogents.errors import InvalidInputError, MissingDependencyError
from hftrainer_mogents.motion import hml263
from hftrainer_mogents.motion.rotations import axis_angle_to_quat
from hftrainer_mogents.utils.io import atomic_write_bytes

__all__ = [
    "require_pygltflib",
    "top4_skin_weights",
    "vertex_normals",
    "smpl_gltf",
    "skeleton_gltf",
    "save_glb",
]

# glTF enums
_FLOAT, _UBYTE, _USHORT, _UINT = 5126, 5121, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_TYPES = {1: "SCALAR", 3: "VEC3", 4: "VEC4", 16: "MAT4"}


def require_pygltflib() -> Any:
    """The :mod:`pygltflib` module.

    Raises:
        MissingDependencyError: it is not installed (the ``render`` extra has it).
    """
    try:
        import pygltflib
    except ImportError as err:
        raise MissingDependencyError(
            'glTF (.glb) files need pygltflib: pip install "hftrainer-mogents[render]" '
            "(or drop glb from --format)"
        ) from err
    return pygltflib


class _Builder:
    """Packs arrays into one binary buffer, one 4-byte-aligned buffer view and accessor each."""

    def __init__(self, gltf_module: Any) -> None:
        self.g = gltf_module
        self.gltf = gltf_module.GLTF2(
            asset=gltf_module.Asset(version="2.0", generator="hftrainer-mogents")
        )
        self.blob = bytearray()

    def add(
        self, array: np.ndarray, component: int, *, target: int | None = None, minmax: bool = False
    ) -> int:
        """Append ``array`` ((N,) or (N, k)) and return its accessor index."""
        dtype = {_FLOAT: np.float32, _UBYTE: np.uint8, _USHORT: np.uint16, _UINT: np.uint32}
        data = np.ascontiguousarray(array, dtype=dtype[component])
        width = 1 if data.ndim == 1 else data.shape[1]
        offset = len(self.blob)
        self.blob += data.tobytes()
        self.blob += b"\0" * (-len(self.blob) % 4)  # every view starts 4-byte aligned
        self.gltf.bufferViews.append(
            self.g.BufferView(buffer=0, byteOffset=offset, byteLength=data.nbytes, target=target)
        )
        accessor = self.g.Accessor(
            bufferView=len(self.gltf.bufferViews) - 1,
            componentType=component,
            count=len(data),
            type=_TYPES[width],
        )
        if minmax:  # required for POSITION and animation inputs
            flat = data.reshape(len(data), -1)
            accessor.min = [float(v) for v in flat.min(axis=0)]
            accessor.max = [float(v) for v in flat.max(axis=0)]
        self.gltf.accessors.append(accessor)
        return len(self.gltf.accessors) - 1

    def joints(
        self, names: Sequence[str], parents: Sequence[int], rest_local: np.ndarray
    ) -> list[int]:
        """Joint nodes (translation = offset from the parent) with their children; node ids."""
        first = len(self.gltf.nodes)
        for name, offset in zip(names, rest_local):
            self.gltf.nodes.append(self.g.Node(name=name, translation=[float(v) for v in offset]))
        for j, p in enumerate(parents):
            if p >= 0:
                self.gltf.nodes[first + p].children.append(first + j)
        return [first + j for j in range(len(names))]

    def skin(self, nodes: list[int], rest_world: np.ndarray) -> int:
        """A skin over ``nodes`` bound at ``rest_world`` (identity rotations); its index."""
        ibm = np.tile(np.eye(4, dtype=np.float32), (len(nodes), 1, 1))
        ibm[:, :3, 3] = -rest_world
        # glTF matrices are column-major: the transpose's rows are the columns
        acc = self.add(ibm.transpose(0, 2, 1).reshape(len(nodes), 16), _FLOAT)
        self.gltf.skins.append(
            self.g.Skin(inverseBindMatrices=acc, joints=list(nodes), skeleton=nodes[0])
        )
        return len(self.gltf.skins) - 1

    def finish(self, scene_nodes: list[int], extras: dict[str, Any]) -> Any:
        self.gltf.buffers.append(self.g.Buffer(byteLength=len(self.blob)))
        self.gltf.set_binary_blob(bytes(self.blob))
        self.gltf.scenes.append(self.g.Scene(nodes=scene_nodes, extras=extras))
        self.gltf.scene = 0
        return self.gltf


def _animate(
    b: _Builder,
    frames: int,
    fps: float,
    tracks: Sequence[tuple[int, str, np.ndarray]],
    name: str,
) -> None:
    """One animation: (node, "rotation"/"translation", (T, 4)/(T, 3) values) per track."""
    times = b.add(np.arange(frames, dtype=np.float32) / np.float32(fps), _FLOAT, minmax=True)
    samplers, channels = [], []
    for node, path, values in tracks:
        samplers.append(
            b.g.AnimationSampler(input=times, output=b.add(values, _FLOAT), interpolation="LINEAR")
        )
        channels.append(
            b.g.AnimationChannel(
                sampler=len(samplers) - 1, target=b.g.AnimationChannelTarget(node=node, path=path)
            )
        )
    b.gltf.animations.append(b.g.Animation(name=name, samplers=samplers, channels=channels))


def top4_skin_weights(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 4 largest skin weights per vertex (glTF's ``JOINTS_0``/``WEIGHTS_0``), renormalised.

    Args:
        weights: (V, J) linear blend skinning weights.

    Returns:
        ``(joints (V, 4) uint8 or uint16, weights (V, 4) float32)``, each row of weights summing
        to 1 (a vertex with no weight is bound to joint 0). A slot of weight 0 names joint 0:
        the glTF validator warns about a joint index used with zero weight
        (``ACCESSOR_JOINTS_USED_ZERO_WEIGHT``), and some viewers bind such joints anyway.
    """
    w = np.asarray(weights, dtype=np.float64)
    idx = np.argsort(-w, axis=1, kind="stable")[:, :4]
    top = np.take_along_axis(w, idx, axis=1).clip(min=0.0)
    total = top.sum(axis=1, keepdims=True)
    empty = total[:, 0] <= 0
    top[empty] = [1.0, 0.0, 0.0, 0.0]
    idx[empty] = 0
    top = top / top.sum(axis=1, keepdims=True)
    top[np.arange(len(top)), 0] += 1.0 - top.sum(axis=1)  # sum exactly 1 after rounding
    top = top.astype(np.float32)
    idx[top == 0] = 0
    index_dtype = np.uint8 if w.shape[1] <= 256 else np.uint16
    return idx.astype(index_dtype), top


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (``+y`` for vertices in no face). (V, 3) float32."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    face_n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], face_n)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    n = np.where(length > 1e-12, n / np.maximum(length, 1e-12), [0.0, 1.0, 0.0])
    return n.astype(np.float32)


def _quats_xyzw(axis_angle: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 4) glTF quaternions (x, y, z, w), sign-continuous in time."""
    q = axis_angle_to_quat(torch.from_numpy(np.asarray(axis_angle, dtype=np.float64))).numpy()
    q = q[..., [1, 2, 3, 0]]
    # q and -q are one rotation: flip so that consecutive keys are on the same side
    for t in range(1, len(q)):
        flip = (q[t] * q[t - 1]).sum(-1) < 0
        q[t][flip] *= -1
    return q.astype(np.float32)


def smpl_gltf(
    model: Any,
    global_orient: np.ndarray,
    body_pose: np.ndarray,
    transl: np.ndarray,
    *,
    fps: float = 20.0,
    extras: dict[str, Any] | None = None,
) -> Any:
    """A skinned SMPL body with its animation.

    Args:
        model: :class:`~hftrainer_mogents.motion.smpl135.SMPLModel` with ``weights`` and ``f``.
        global_orient: (T, 3) axis-angle.
        body_pose: (T, 63) axis-angle, SMPL joints 1..21.
        transl: (T, 3) SMPL ``transl`` (the pelvis is at the rest pelvis plus it).
        fps: key rate.
        extras: stored in the scene's ``extras``.

    Returns:
        A ``pygltflib.GLTF2`` with its binary blob set (write it with :func:`save_glb`).

    Raises:
        MissingDependencyError: no pygltflib.
        InvalidInputError: mismatched shapes, or a model without skin weights or faces.
    """
    g = require_pygltflib()
    t = len(transl)
    if global_orient.shape != (t, 3) or body_pose.shape != (t, 63) or transl.shape != (t, 3):
        raise InvalidInputError(
            f"SMPL parameters: expected global_orient (T, 3), body_pose (T, 63), transl (T, 3), "
            f"got {global_orient.shape}, {body_pose.shape}, {transl.shape}"
        )
    if t < 1 or fps <= 0:
        raise InvalidInputError(f"a glTF animation needs frames and fps > 0, got {t} at {fps}")
    missing = [k for k in ("weights", "f") if k not in model.arrays]
    if missing:
        raise InvalidInputError(
            f"{model.path}: the SMPL model has no {missing}: a mesh needs skin weights and faces"
        )
    parents = list(model.parents)
    names = [f"smpl_{i}" for i in range(len(parents))]
    from hftrainer_mogents.motion.smpl135 import SMPL_JOINT_NAMES

    names[: len(SMPL_JOINT_NAMES)] = SMPL_JOINT_NAMES[: len(names)]
    rest = model.rest_joints()  # (24, 3)
    rest_local = np.array([rest[j] - (rest[p] if p >= 0 else 0.0) for j, p in enumerate(parents)])
    vertices = np.asarray(model.v_template, dtype=np.float32)
    faces = np.asarray(model.arrays["f"], dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min() < 0 or faces.max() >= len(vertices):
        raise InvalidInputError(f"{model.path}: faces 'f' {faces.shape} do not index the vertices")
    skin_weights = np.asarray(model.arrays["weights"])
    if skin_weights.shape != (len(vertices), len(parents)):
        raise InvalidInputError(
            f"{model.path}: skin weights {skin_weights.shape}, expected "
            f"({len(vertices)}, {len(parents)}) (vertices, joints)"
        )
    joints_0, weights_0 = top4_skin_weights(skin_weights)

    b = _Builder(g)
    attributes = g.Attributes(
        POSITION=b.add(vertices, _FLOAT, target=_ARRAY_BUFFER, minmax=True),
        NORMAL=b.add(vertex_normals(vertices, faces), _FLOAT, target=_ARRAY_BUFFER),
        JOINTS_0=b.add(
            joints_0, _UBYTE if joints_0.dtype == np.uint8 else _USHORT, target=_ARRAY_BUFFER
        ),
        WEIGHTS_0=b.add(weights_0, _FLOAT, target=_ARRAY_BUFFER),
    )
    index_type = _USHORT if len(vertices) <= 65535 else _UINT
    indices = b.add(faces.reshape(-1), index_type, target=_ELEMENT_ARRAY_BUFFER)
    b.gltf.meshes.append(
        g.Mesh(name="smpl", primitives=[g.Primitive(attributes=attributes, indices=indices)])
    )
    nodes = b.joints(names, parents, rest_local)
    skin = b.skin(nodes, rest)
    b.gltf.nodes.append(g.Node(name="smpl_body", mesh=0, skin=skin))
    body = len(b.gltf.nodes) - 1

    aa = np.concatenate((global_orient, body_pose), axis=1).reshape(t, -1, 3)  # (T, 22, 3)
    quats = _quats_xyzw(aa)
    tracks = [(nodes[0], "translation", (rest[0] + transl).astype(np.float32))]
    tracks += [(nodes[j], "rotation", quats[:, j]) for j in range(aa.shape[1])]
    _animate(b, t, fps, tracks, "motion")
    return b.finish([nodes[0], body], {"fps": fps, "frames": t, **(extras or {})})


def skeleton_gltf(
    joints: np.ndarray,
    *,
    fps: float = 20.0,
    parents: Sequence[int] = hml263.PARENTS,
    names: Sequence[str] = hml263.JOINT_NAMES,
    extras: dict[str, Any] | None = None,
    bones: bool = False,
) -> Any:
    """The joint hierarchy animated by per-joint translation tracks (no mesh, unless ``bones``).

    Args:
        joints: (T, J, 3) joint positions in metres, y up.
        fps: key rate.
        parents: parent of each joint (root -1, parents before children).
        names: node names.
        extras: stored in the scene's ``extras``.
        bones: also a stick-figure mesh skinned to the joints (one thin box per bone, each end
            bound wholly to its joint, so the box stretches with the bone), for viewers that
            draw meshes only (a browser's glTF viewer shows a skin without a mesh as nothing).

    Returns:
        A ``pygltflib.GLTF2`` with its binary blob set; the rest pose (node translations, inverse
        bind matrices) is the first frame.

    Raises:
        MissingDependencyError: no pygltflib.
        InvalidInputError: a wrong shape, NaN, or fps <= 0.
    """
    g = require_pygltflib()
    x = np.asarray(joints, dtype=np.float64)
    if x.ndim != 3 or x.shape[1:] != (len(parents), 3) or len(x) < 1:
        raise InvalidInputError(f"expected (T, {len(parents)}, 3) joints, got {x.shape}")
    if not np.isfinite(x).all() or fps <= 0:
        raise InvalidInputError("joints must be finite and fps > 0 for a glTF animation")
    par = np.asarray(parents)
    local = x - np.where(par[None, :, None] >= 0, x[:, np.maximum(par, 0)], 0.0)  # (T, J, 3)
    b = _Builder(g)
    if bones:
        _bone_mesh(b, x[0], par)
    nodes = b.joints(list(names), list(parents), local[0])
    skin = b.skin(nodes, x[0])
    scene = [nodes[0]]
    if bones:
        b.gltf.nodes.append(g.Node(name="bones", mesh=0, skin=skin))
        scene.append(len(b.gltf.nodes) - 1)
    tracks = [(nodes[j], "translation", local[:, j].astype(np.float32)) for j in range(len(nodes))]
    _animate(b, len(x), fps, tracks, "motion")
    return b.finish(scene, {"fps": fps, "frames": len(x), **(extras or {})})


def _bone_mesh(b: _Builder, rest: np.ndarray, parents: np.ndarray, width: float = 0.03) -> None:
    """Mesh 0: a box of ``width`` metres around each bone at ``rest`` (J, 3), its parent-end
    corners bound to the parent joint and its child-end corners to the child (weight 1)."""
    g = b.g
    positions, joints, faces = [], [], []
    # the 12 triangles of a box whose corners 0-3 ring one end and 4-7 the other, outward facing
    box = np.array(
        [[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4]]
        + [[1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]]
    )
    for child, parent in enumerate(parents):
        if parent < 0:
            continue
        axis = rest[child] - rest[parent]
        axis = axis / max(float(np.linalg.norm(axis)), 1e-6)
        helper = np.array([0.0, 0.0, 1.0]) if abs(axis[1]) > 0.9 else np.array([0.0, 1.0, 0.0])
        u = np.cross(axis, helper)
        u /= np.linalg.norm(u)
        v = np.cross(axis, u)
        ring = [(su * u + sv * v) * width / 2 for su, sv in ((1, 1), (-1, 1), (-1, -1), (1, -1))]
        faces.append(box + len(positions))
        positions += [rest[parent] + r for r in ring] + [rest[child] + r for r in ring]
        joints += [parent] * 4 + [child] * 4
    pos = np.asarray(positions, dtype=np.float32)
    joints_0 = np.zeros((len(pos), 4), dtype=np.uint8)
    joints_0[:, 0] = joints
    weights_0 = np.zeros((len(pos), 4), dtype=np.float32)
    weights_0[:, 0] = 1.0
    tri = np.concatenate(faces)
    attributes = g.Attributes(
        POSITION=b.add(pos, _FLOAT, target=_ARRAY_BUFFER, minmax=True),
        NORMAL=b.add(vertex_normals(pos, tri), _FLOAT, target=_ARRAY_BUFFER),
        JOINTS_0=b.add(joints_0, _UBYTE, target=_ARRAY_BUFFER),
        WEIGHTS_0=b.add(weights_0, _FLOAT, target=_ARRAY_BUFFER),
    )
    indices = b.add(tri.reshape(-1), _USHORT, target=_ELEMENT_ARRAY_BUFFER)
    b.gltf.materials.append(
        g.Material(
            name="bones",
            doubleSided=True,
            pbrMetallicRoughness=g.PbrMetallicRoughness(
                baseColorFactor=[0.85, 0.35, 0.1, 1.0], metallicFactor=0.0, roughnessFactor=0.8
            ),
        )
    )
    b.gltf.meshes.append(
        g.Mesh(
            name="bones",
            primitives=[g.Primitive(attributes=attributes, indices=indices, material=0)],
        )
    )


def save_glb(path: str | os.PathLike[str], gltf: Any) -> None:
    """Write ``gltf`` as a ``.glb`` atomically."""
    chunks = gltf.save_to_bytes()
    atomic_write_bytes(path, b"".join(chunks) if isinstance(chunks, list) else chunks)
