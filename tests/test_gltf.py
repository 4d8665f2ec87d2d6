"""motion.export (SMPL parameters of a 263 motion) and motion.gltf (.glb files), read back."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_fixture

from hftrainer_mogents.errors import (
    ArtifactNotFoundError,
    InvalidInputError,
    MissingDependencyError,
)
from hftrainer_mogents.motion import gltf, hml263, smpl135
from hftrainer_mogents.motion.export import fit_smpl_params, save_smpl_npz
from hftrainer_mogents.motion.rotations import axis_angle_to_matrix, quat_to_matrix
from hftrainer_mogents.outputs import parse_formats

pygltflib = pytest.importorskip("pygltflib")

_NP = {5126: np.float32, 5121: np.uint8, 5123: np.uint16, 5125: np.uint32}
_WIDTH = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}


@pytest.fixture(scope="module")
def folder(fixtures_dir: Path) -> Path:
    return require_fixture(fixtures_dir / "ms272_tiny")


@pytest.fixture(scope="module")
def model(folder: Path) -> smpl135.SMPLModel:
    return smpl135.load_smpl_model(folder / "smpl")


@pytest.fixture(scope="module")
def features(folder: Path) -> np.ndarray:
    """A 263 motion with SMPL's bones (the fixture's 20 fps SMPL joints), so the fit is exact."""
    with np.load(folder / "motions" / "walk_turn.npz") as data:
        joints = data["fk_joints22_20fps"]
    return hml263.joints_to_hml263(joints, skeleton="keep").astype(np.float32)


@pytest.fixture(scope="module")
def fit(features: np.ndarray, model: smpl135.SMPLModel) -> smpl135.ClipResult:
    return fit_smpl_params([features], model=model)[0]


def accessor(doc, index: int) -> np.ndarray:
    """An accessor's data read from the GLB's binary chunk (checks its bounds on the way)."""
    acc = doc.accessors[index]
    view = doc.bufferViews[acc.bufferView]
    blob = doc.binary_blob()
    width = _WIDTH[acc.type]
    dtype = np.dtype(_NP[acc.componentType])
    start = view.byteOffset + (acc.byteOffset or 0)
    assert start % dtype.itemsize == 0 and view.byteOffset % 4 == 0
    assert view.byteOffset + view.byteLength <= len(blob)
    assert acc.count * width * dtype.itemsize <= view.byteLength
    data = np.frombuffer(blob, dtype=dtype, count=acc.count * width, offset=start)
    return data.reshape(acc.count, width) if width > 1 else data


def parents_of(doc, nodes: list[int]) -> list[int]:
    """Each node's parent as an index into ``nodes`` (-1 for none), from the children lists."""
    where = {n: k for k, n in enumerate(nodes)}
    parents = [-1] * len(nodes)
    for n in nodes:
        for child in doc.nodes[n].children:
            parents[where[child]] = where[n]
    return parents


def animated_world_positions(doc, nodes: list[int], frame: int) -> np.ndarray:
    """Forward kinematics of the file as a viewer plays it, at one key (numpy, from scratch)."""
    local_t = {n: np.array(doc.nodes[n].translation or [0, 0, 0], dtype=np.float64) for n in nodes}
    local_r = {n: np.eye(3) for n in nodes}
    anim = doc.animations[0]
    for ch in anim.channels:
        values = accessor(doc, anim.samplers[ch.sampler].output)[frame].astype(np.float64)
        if ch.target.path == "translation":
            local_t[ch.target.node] = values
        else:
            x, y, z, w = values
            local_r[ch.target.node] = quat_to_matrix(torch.tensor([w, x, y, z])).numpy()
    parents = parents_of(doc, nodes)
    rot, pos = [None] * len(nodes), np.zeros((len(nodes), 3))
    for k, n in enumerate(nodes):  # parents come first in both skeletons
        p = parents[k]
        if p < 0:
            rot[k], pos[k] = local_r[n], local_t[n]
        else:
            rot[k] = rot[p] @ local_r[n]
            pos[k] = pos[p] + rot[p] @ local_t[n]
    return pos


def check_buffers(doc, path: Path) -> None:
    blob = doc.binary_blob()
    assert doc.buffers[0].byteLength == len(blob) and len(blob) % 4 == 0
    assert path.stat().st_size % 4 == 0  # GLB chunks are 4-byte padded
    for k in range(len(doc.accessors)):
        accessor(doc, k)


# --------------------------------------------------------------------------------------------
# SMPL parameters


def test_smpl_npz_round_trips_through_smpl_forward_kinematics(
    features: np.ndarray, model: smpl135.SMPLModel, fit: smpl135.ClipResult, tmp_path: Path
) -> None:
    error = save_smpl_npz(tmp_path / "m_smpl.npz", fit)
    with np.load(tmp_path / "m_smpl.npz") as data:
        npz = {k: data[k] for k in data.files}
    t = len(features)
    # fitted at the motion's own 20 fps: one SMPL frame per frame
    assert npz["global_orient"].shape == (t, 3) and npz["body_pose"].shape == (t, 63)
    assert npz["transl"].shape == (t, 3) and float(npz["fps"]) == 20.0
    np.testing.assert_array_equal(npz["betas"], np.zeros(10, np.float32))
    np.testing.assert_array_equal(npz["poses"][:, :3], npz["global_orient"])
    np.testing.assert_array_equal(npz["poses"][:, 66:], 0.0)
    assert str(npz["gender"]) == "neutral"
    # SMPL forward kinematics of the written parameters against the motion's own joints
    aa = torch.from_numpy(np.concatenate((npz["global_orient"], npz["body_pose"]), 1))
    rot = axis_angle_to_matrix(aa.double().reshape(t, 22, 3))
    rest = torch.from_numpy(model.rest_joints()[:22])
    fk = smpl135.forward_kinematics(rot, rest, transl=torch.from_numpy(npz["transl"]).double())
    target = hml263.recover_from_ric(features)
    dist_mm = np.linalg.norm(fk.joints.numpy() - target, axis=-1).mean(-1) * 1000.0
    # the IK's documented error on SMPL-boned motions is 0.6-1.8 mm (test_smpl135 allows 5 mm)
    assert dist_mm.mean() < 5.0
    np.testing.assert_allclose(npz["fit_mpjpe_mm"], dist_mm, atol=0.05)
    assert error["mean"] == pytest.approx(dist_mm.mean(), abs=0.05)
    assert error["max"] == pytest.approx(dist_mm.max(), abs=0.05)


def test_smpl_fit_is_batch_independent(
    features: np.ndarray, model: smpl135.SMPLModel, fit: smpl135.ClipResult
) -> None:
    other = features[:30].copy()
    both = fit_smpl_params([other, features], model=model)
    assert len(both[0].transl) == 30
    np.testing.assert_allclose(both[1].body_pose, fit.body_pose, atol=1e-4)


def test_smpl_export_needs_a_model(features: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="model_dir"):
        fit_smpl_params([features])
    with pytest.raises(ArtifactNotFoundError, match="SMPL_NEUTRAL"):
        fit_smpl_params([features], model_dir=tmp_path)


# --------------------------------------------------------------------------------------------
# glTF


def test_top4_skin_weights() -> None:
    w = np.array([[0.1, 0.5, 0.0, 0.2, 0.15, 0.05], [0, 0, 0, 0, 0, 0.0], [0, 1.0, 0, 0, 0, 0]])
    joints, weights = gltf.top4_skin_weights(w)
    assert joints.dtype == np.uint8 and weights.dtype == np.float32
    np.testing.assert_array_equal(joints[0], [1, 3, 4, 0])
    np.testing.assert_allclose(weights[0], np.array([0.5, 0.2, 0.15, 0.1]) / 0.95, rtol=1e-6)
    np.testing.assert_array_equal(joints[1], [0, 0, 0, 0])  # no weight: bound to the root
    np.testing.assert_array_equal(weights[1], [1, 0, 0, 0])
    np.testing.assert_array_equal(weights[2], [1, 0, 0, 0])
    np.testing.assert_array_equal(joints[2], [1, 0, 0, 0])  # zero-weight slots name joint 0


def test_no_joint_is_used_with_zero_weight(model: smpl135.SMPLModel) -> None:
    """glTF validators warn (ACCESSOR_JOINTS_USED_ZERO_WEIGHT) about a JOINTS_0 index other than
    0 in a slot whose WEIGHTS_0 is 0: the SMPL body has none."""
    joints, weights = gltf.top4_skin_weights(np.asarray(model.arrays["weights"]))
    assert not np.any((weights == 0) & (joints != 0))
    assert np.all(weights[:, 0] > 0)


def test_smpl_glb_loads_back(
    model: smpl135.SMPLModel, fit: smpl135.ClipResult, tmp_path: Path
) -> None:
    path = tmp_path / "body.glb"
    doc = gltf.smpl_gltf(model, fit.global_orient, fit.body_pose, fit.transl, fps=20.0)
    gltf.save_glb(path, doc)
    doc = pygltflib.GLTF2().load(str(path))
    check_buffers(doc, path)
    t, n_verts = len(fit.transl), len(model.v_template)
    assert doc.asset.version == "2.0" and len(doc.meshes) == 1 and len(doc.skins) == 1
    prim = doc.meshes[0].primitives[0]
    attr = prim.attributes
    for name in ("POSITION", "NORMAL", "JOINTS_0", "WEIGHTS_0"):
        assert doc.accessors[getattr(attr, name)].count == n_verts
    np.testing.assert_allclose(accessor(doc, attr.POSITION), model.v_template, atol=1e-6)
    pos_acc = doc.accessors[attr.POSITION]
    np.testing.assert_allclose(pos_acc.min, model.v_template.min(0), atol=1e-6)
    faces = model.arrays["f"]
    assert doc.accessors[prim.indices].count == faces.size
    np.testing.assert_array_equal(accessor(doc, prim.indices).reshape(-1, 3), faces)
    normals = accessor(doc, attr.NORMAL)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    weights = accessor(doc, attr.WEIGHTS_0)
    joints = accessor(doc, attr.JOINTS_0)
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-6)
    assert joints.max() < 24
    # the largest weight is each vertex's largest SMPL weight
    np.testing.assert_array_equal(joints[:, 0], model.arrays["weights"].argmax(1))
    # the skeleton: 24 SMPL joints with SMPL's parents, bound at the rest joints
    skin = doc.skins[0]
    assert len(skin.joints) == 24
    assert parents_of(doc, skin.joints) == list(model.parents)
    assert doc.nodes[skin.joints[0]].name == "pelvis"
    ibm = accessor(doc, skin.inverseBindMatrices).reshape(24, 4, 4).transpose(0, 2, 1)
    np.testing.assert_allclose(ibm[:, :3, 3], -model.rest_joints(), atol=1e-6)
    body = [n for n in doc.nodes if n.mesh is not None]
    assert len(body) == 1 and body[0].skin == 0
    # the animation: T keys at 20 fps, 22 rotations + the pelvis translation
    anim = doc.animations[0]
    assert len(anim.channels) == 23
    times = accessor(doc, anim.samplers[0].input)
    assert len(times) == t and times[-1] == pytest.approx((t - 1) / 20.0)
    assert doc.accessors[anim.samplers[0].input].max == [pytest.approx((t - 1) / 20.0)]
    # played back, the file's skeleton lands on the fitted joints
    for frame in (0, t // 2, t - 1):
        world = animated_world_positions(doc, skin.joints, frame)
        np.testing.assert_allclose(world[:22], fit.fitted_joints[frame], atol=1e-4)


def test_skeleton_glb_reproduces_the_joints(features: np.ndarray, tmp_path: Path) -> None:
    joints = hml263.recover_from_ric(features)
    path = tmp_path / "skeleton.glb"
    gltf.save_glb(path, gltf.skeleton_gltf(joints, fps=20.0, extras={"title": "walk"}))
    doc = pygltflib.GLTF2().load(str(path))
    check_buffers(doc, path)
    assert not doc.meshes and len(doc.skins) == 1
    nodes = doc.skins[0].joints
    assert [doc.nodes[n].name for n in nodes] == hml263.JOINT_NAMES
    assert parents_of(doc, nodes) == hml263.PARENTS
    assert doc.scenes[0].nodes == [nodes[0]] and doc.scenes[0].extras["title"] == "walk"
    anim = doc.animations[0]
    assert {ch.target.path for ch in anim.channels} == {"translation"} and len(anim.channels) == 22
    times = accessor(doc, anim.samplers[0].input)
    assert len(times) == len(joints) and times[-1] == pytest.approx((len(joints) - 1) / 20.0)
    for frame in (0, 17, len(joints) - 1):
        world = animated_world_positions(doc, nodes, frame)
        np.testing.assert_allclose(world, joints[frame], atol=1e-5)


def test_glb_loads_with_trimesh_when_present(
    model: smpl135.SMPLModel, fit: smpl135.ClipResult, tmp_path: Path
) -> None:
    trimesh = pytest.importorskip("trimesh")
    path = tmp_path / "body.glb"
    gltf.save_glb(path, gltf.smpl_gltf(model, fit.global_orient, fit.body_pose, fit.transl))
    scene = trimesh.load(str(path))
    mesh = next(iter(scene.geometry.values()))
    assert len(mesh.vertices) == len(model.v_template)


def test_glb_inputs_are_checked(model: smpl135.SMPLModel) -> None:
    with pytest.raises(InvalidInputError, match=r"\(T, 22, 3\)"):
        gltf.skeleton_gltf(np.zeros((5, 21, 3)))
    with pytest.raises(InvalidInputError, match="finite"):
        gltf.skeleton_gltf(np.full((5, 22, 3), np.nan))
    with pytest.raises(InvalidInputError, match="body_pose"):
        gltf.smpl_gltf(model, np.zeros((4, 3)), np.zeros((4, 60)), np.zeros((4, 3)))


def test_without_pygltflib_glb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pygltflib", None)
    with pytest.raises(MissingDependencyError, match=r"hftrainer-mogents\[render\]"):
        gltf.skeleton_gltf(np.zeros((5, 22, 3)))
    with pytest.raises(MissingDependencyError, match="glb"):
        parse_formats("npy,glb")


def test_parse_formats_checks_the_smpl_model(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="--format smpl needs .* --model-dir"):
        parse_formats("npy,smpl")
    with pytest.raises(ArtifactNotFoundError, match="no SMPL neutral model"):
        parse_formats("smpl", model_dir=tmp_path)
    assert parse_formats("smpl,glb,smpl", model_dir=folder / "smpl") == ["smpl", "glb"]
    assert parse_formats("glb") == ["glb"]  # the skeleton needs no model


def test_a_model_without_matching_skin_weights_is_refused(model: smpl135.SMPLModel) -> None:
    from dataclasses import replace

    bad = replace(model, arrays={**model.arrays, "weights": model.arrays["weights"][:, :22]})
    with pytest.raises(
        InvalidInputError, match=r"skin weights \(6890, 22\), expected \(6890, 24\)"
    ):
        gltf.smpl_gltf(bad, np.zeros((4, 3)), np.zeros((4, 63)), np.zeros((4, 3)))
    bare = replace(model, arrays={k: v for k, v in model.arrays.items() if k != "f"})
    with pytest.raises(InvalidInputError, match=r"has no \['f'\]"):
        gltf.smpl_gltf(bare, np.zeros((4, 3)), np.zeros((4, 63)), np.zeros((4, 3)))


def test_a_glb_body_needs_a_model_with_weights_and_faces(folder: Path, tmp_path: Path) -> None:
    from hftrainer_mogents.outputs import load_export_model

    with np.load(folder / "smpl" / "SMPL_NEUTRAL.npz") as data:
        arrays = {k: data[k] for k in data.files if k not in ("weights", "f")}
    np.savez(tmp_path / "SMPL_NEUTRAL.npz", **arrays)
    assert load_export_model(["npy"], tmp_path) is None  # no format uses it: not even read
    assert load_export_model(["smpl"], tmp_path).path.endswith("SMPL_NEUTRAL.npz")
    with pytest.raises(
        InvalidInputError, match="--format glb: the SMPL model .* has no weights, f"
    ):
        load_export_model(["smpl", "glb"], tmp_path)


def _gltf_validator() -> Path:
    """The Khronos glTF validator (npm ``gltf-validator``): ``$MOGENTS_GLTF_VALIDATOR`` (its
    folder) or where ``.ci/run`` installs it; skipped, with the reason, where it or node is
    missing."""
    import os
    import shutil

    if shutil.which("node") is None:
        pytest.skip("node is not installed: the glTF validator runs on node")
    root = Path(__file__).resolve().parents[1]
    found = (
        os.environ.get("MOGENTS_GLTF_VALIDATOR") or root / ".ci/node/node_modules/gltf-validator"
    )
    if not (Path(found) / "package.json").is_file():
        pytest.skip(f"no gltf-validator at {found}: `npm install --prefix .ci/node gltf-validator`")
    return Path(found)


_VALIDATE_JS = """
const v = require(process.argv[1]); const fs = require('fs');
v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[2]))).then(r => {
  console.log(JSON.stringify({errors: r.issues.numErrors, warnings: r.issues.numWarnings,
    codes: r.issues.messages.filter(m => m.severity <= 1).map(m => m.code)}));
});
"""


def test_every_glb_passes_the_khronos_validator(
    model: smpl135.SMPLModel, fit: smpl135.ClipResult, tmp_path: Path
) -> None:
    import json
    import subprocess

    validator = _gltf_validator()
    body = tmp_path / "body.glb"
    gltf.save_glb(body, gltf.smpl_gltf(model, fit.global_orient, fit.body_pose, fit.transl))
    rng = np.random.default_rng(0)
    joints = np.cumsum(rng.normal(0, 0.01, (40, 22, 3)), axis=0) + rng.normal(0, 0.3, (1, 22, 3))
    skeleton = tmp_path / "skeleton.glb"
    gltf.save_glb(skeleton, gltf.skeleton_gltf(joints))
    sticks = tmp_path / "skeleton_bones.glb"  # the web demo's viewer file
    gltf.save_glb(sticks, gltf.skeleton_gltf(joints, bones=True))
    for path in (body, skeleton, sticks):
        out = subprocess.run(
            ["node", "-e", _VALIDATE_JS, str(validator), str(path)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        assert report == {"errors": 0, "warnings": 0, "codes": []}, (path.name, report)
