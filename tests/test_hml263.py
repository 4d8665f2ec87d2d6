"""motion.hml263: recover_from_ric against the upstream references, constants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_fixture

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.motion import hml263


@pytest.fixture(scope="module")
def ric_cases(fixtures_dir: Path) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
    folder = require_fixture(fixtures_dir / "hml263_eval_tiny")
    ref = np.load(folder / "reference.npz")
    return [
        (
            np.load(folder / "recover_from_ric" / f"input_{i}.npy"),
            {k: ref[f"recover_{i}_{k}"] for k in ("joints", "root_quat", "root_pos")},
        )
        for i in range(3)
    ]


def test_recover_from_ric_numpy_matches_upstream(ric_cases) -> None:
    for features, ref in ric_cases:
        joints = hml263.recover_from_ric(features)
        assert isinstance(joints, np.ndarray)
        assert joints.dtype == features.dtype
        assert joints.shape == features.shape[:-1] + (22, 3)
        np.testing.assert_allclose(joints, ref["joints"], atol=1e-5, rtol=0)
        quat, pos = hml263.recover_root_rot_pos(features)
        np.testing.assert_allclose(quat, ref["root_quat"], atol=1e-5, rtol=0)
        np.testing.assert_allclose(pos, ref["root_pos"], atol=1e-5, rtol=0)


def test_recover_from_ric_torch_batched_float64(ric_cases) -> None:
    features, ref = ric_cases[1]
    batch = torch.from_numpy(np.stack([features, features[::-1].copy()])).double()
    joints = hml263.recover_from_ric(batch)
    assert isinstance(joints, torch.Tensor)
    assert joints.dtype == torch.float64
    assert joints.shape == (2, len(features), 22, 3)
    np.testing.assert_allclose(joints[0].numpy(), ref["joints"], atol=1e-5, rtol=0)
    single = hml263.recover_from_ric(batch[1])
    torch.testing.assert_close(joints[1], single)


def test_recover_from_ric_rejects_wrong_width() -> None:
    with pytest.raises(InvalidInputError, match=r"\(\.\.\., T, 263\)"):
        hml263.recover_from_ric(np.zeros((10, 20), dtype=np.float32))


def test_skeleton_constants_are_consistent() -> None:
    assert len(hml263.JOINT_NAMES) == len(hml263.PARENTS) == len(hml263.RAW_OFFSETS) == 22
    assert isinstance(hml263.JOINT_NAMES, list)
    for chain in hml263.KINEMATIC_CHAIN:
        for parent, child in zip(chain[:-1], chain[1:]):
            assert hml263.PARENTS[child] == parent
    covered = {j for chain in hml263.KINEMATIC_CHAIN for j in chain}
    assert covered == set(range(22))
    # the layout slices tile the 263 channels
    slices = [
        hml263.ROOT_ROT_VEL,
        hml263.ROOT_LIN_VEL,
        hml263.ROOT_Y,
        hml263.RIC,
        hml263.ROT,
        hml263.LOCAL_VEL,
        hml263.FOOT_CONTACT,
    ]
    assert [s.start for s in slices[1:]] == [s.stop for s in slices[:-1]]
    assert slices[-1].stop == hml263.DIM_HML263


@pytest.mark.parametrize("name", ["walk_turn", "sway_arms", "short_spin"])
def test_joints_to_hml263_round_trip(fixtures_dir: Path, name: str) -> None:
    """Features made from joints recover the same joints (after HumanML3D's normalisation), and
    HumanML3D's own rotations point each raw axis along its bone."""
    path = require_fixture(fixtures_dir / "ms272_tiny" / "motions" / f"{name}.npz")
    with np.load(path) as data:
        joints = data["fk_joints22_20fps"]
    features = hml263.joints_to_hml263(joints, skeleton="keep")
    assert features.shape == (len(joints) - 1, 263) and features.dtype == np.float32
    rec = hml263.recover_from_ric(features.astype(np.float64))
    # expected: floor at 0, frame-0 root at the xz origin, then the frame-0 yaw that faces +z
    ref = joints[:-1] - joints[0, 0] * np.array([1.0, 0.0, 1.0])
    ref[..., 1] -= joints[..., 1].min()
    across = (ref[0, 2] - ref[0, 1]) + (ref[0, 17] - ref[0, 16])
    forward = np.cross([0.0, 1.0, 0.0], across)
    yaw = -np.arctan2(forward[0], forward[2])
    c, s = np.cos(yaw), np.sin(yaw)
    ref = ref @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T
    np.testing.assert_allclose(rec, ref, atol=1e-5)
    glob = hml263.recover_global_bone_rotations(features.astype(np.float64))
    raw = np.asarray(hml263.RAW_OFFSETS, dtype=np.float64)
    for k in range(1, 22):
        bone = rec[:, k] - rec[:, hml263.PARENTS[k]]
        bone /= np.linalg.norm(bone, axis=-1, keepdims=True)
        np.testing.assert_allclose(glob[:, k] @ raw[k], bone, atol=1e-5)
    torch_features = hml263.joints_to_hml263(torch.from_numpy(joints), skeleton="keep")
    assert isinstance(torch_features, torch.Tensor)
    np.testing.assert_allclose(torch_features.numpy(), features, atol=1e-5)


@pytest.fixture(scope="module")
def official_sample(fixtures_dir: Path) -> dict[str, np.ndarray]:
    path = require_fixture(fixtures_dir / "humanml3d_sample" / "004822_protocol.npz")
    with np.load(path) as data:
        return {k: data[k] for k in ("joints", "hml263")}


def test_joints_to_hml263_reproduces_official_humanml3d_file(official_sample) -> None:
    """The default (the dataset's processing) gives clip 004822's official 263 features."""
    features = hml263.joints_to_hml263(official_sample["joints"])
    ref = official_sample["hml263"]
    assert features.shape == ref.shape == (199, 263) and features.dtype == np.float32
    np.testing.assert_allclose(features, ref, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(features[:, hml263.FOOT_CONTACT], ref[:, hml263.FOOT_CONTACT])
    # today's other mode keeps the subject's skeleton, so it is not the dataset's file
    kept = hml263.joints_to_hml263(official_sample["joints"], skeleton="keep")
    assert np.abs(kept - ref).max() > 1e-2
    # torch input: the same numbers, as a tensor of the input's dtype
    as_torch = hml263.joints_to_hml263(torch.from_numpy(official_sample["joints"]))
    assert isinstance(as_torch, torch.Tensor) and as_torch.dtype == torch.float32
    np.testing.assert_array_equal(as_torch.numpy(), features)


def test_joints_to_hml263_default_is_on_the_target_skeleton(official_sample) -> None:
    """Recovered joints have clip 000021's bone lengths whatever the input's bones were."""
    joints = official_sample["joints"].astype(np.float64)
    bones = [np.linalg.norm(joints[0, k] - joints[0, hml263.PARENTS[k]]) for k in range(1, 22)]
    target = np.asarray(hml263.HML263_TARGET_BONE_LENGTHS[1:])
    assert np.abs(np.asarray(bones) - target).max() > 0.01  # the subject is not on it already
    stretched = joints * 1.3  # a taller subject: the dataset's retarget removes the scale
    for source in (joints, stretched):
        rec = hml263.recover_from_ric(hml263.joints_to_hml263(source).astype(np.float64))
        for k in range(1, 22):
            length = np.linalg.norm(rec[:, k] - rec[:, hml263.PARENTS[k]], axis=-1)
            np.testing.assert_allclose(length, target[k - 1], atol=2e-5)
    np.testing.assert_allclose(
        hml263.joints_to_hml263(stretched), hml263.joints_to_hml263(joints), atol=1e-4
    )


def test_joints_to_hml263_rejects_unknown_skeleton(official_sample) -> None:
    with pytest.raises(InvalidInputError, match=r"unknown skeleton 'smpl'.*'humanml3d', 'keep'"):
        hml263.joints_to_hml263(official_sample["joints"], skeleton="smpl")
    with pytest.raises(InvalidInputError, match=r"\(T >= 2, 22, 3\)"):
        hml263.joints_to_hml263(np.zeros((1, 22, 3), np.float32))
