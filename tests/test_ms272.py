"""motion.ms272 against MotionStreamer's own encoding and recovery (fixture references)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_fixture

from hftrainer_mogents.motion import ms272, smpl135
from hftrainer_mogents.motion.rotations import axis_angle_to_matrix, rot_y

NAMES = ["walk_turn", "sway_arms", "short_spin"]


@pytest.fixture(scope="module")
def folder(fixtures_dir: Path) -> Path:
    return require_fixture(fixtures_dir / "ms272_tiny")


@pytest.fixture(scope="module")
def rest(folder: Path) -> torch.Tensor:
    return torch.from_numpy(smpl135.load_smpl_model(folder / "smpl").rest_joints())


def _motion(folder: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(folder / "motions" / f"{name}.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("name", NAMES)
def test_encode_matches_upstream(folder: Path, rest: torch.Tensor, name: str) -> None:
    d = _motion(folder, name)
    ref = torch.from_numpy(d["ms272"])
    # from SMPL joints and rotations, without MotionStreamer's face-z step
    direct = ms272.encode_272(
        torch.from_numpy(d["fk_joints24"][:, :22]).double(), torch.from_numpy(d["local_rotmats22"])
    )
    torch.testing.assert_close(direct, ref, atol=1e-5, rtol=0)
    # upstream's own inputs (face-z transformed)
    aa = torch.from_numpy(d["smpl85_face_z"][:, :66].astype(np.float64)).reshape(-1, 22, 3)
    facez = ms272.encode_272(
        torch.from_numpy(d["fk_joints24_face_z"][:, :22]).double(), axis_angle_to_matrix(aa)
    )
    torch.testing.assert_close(facez, ref, atol=1e-5, rtol=0)
    # the converter path on the SMPL skeleton: motion_135 -> FK on the fixture model -> 272
    torch.testing.assert_close(
        ms272.motion135_to_272(torch.from_numpy(d["motion135_cols"]), rest, skeleton="smpl"),
        ref,
        atol=1e-5,
        rtol=0,
    )


@pytest.mark.parametrize("name", NAMES)
def test_recovery_matches_upstream(folder: Path, rest: torch.Tensor, name: str) -> None:
    d = _motion(folder, name)
    x = torch.from_numpy(d["ms272"])
    joints = ms272.recover_joints_272(x)
    torch.testing.assert_close(joints, torch.from_numpy(d["recovered_joints22"]), atol=1e-5, rtol=0)
    smpl85 = ms272.recover_smpl85(x)
    torch.testing.assert_close(smpl85, torch.from_numpy(d["recovered_smpl85"]), atol=1e-5, rtol=0)
    # 272 -> motion_135 (transl = pelvis - rest pelvis) -> 272 is the identity
    m135 = ms272.ms272_to_motion135(x, rest)
    torch.testing.assert_close(
        ms272.motion135_to_272(m135, rest, skeleton="smpl"), x, atol=1e-5, rtol=0
    )


def test_encoding_ignores_global_yaw_and_translation(folder: Path) -> None:
    d = _motion(folder, "walk_turn")
    joints = torch.from_numpy(d["fk_joints24"][:, :22]).double()
    rot = torch.from_numpy(d["local_rotmats22"])
    turn = rot_y(torch.tensor(2.1, dtype=torch.float64))
    moved = joints @ turn.T + torch.tensor([3.0, 0.5, -7.0], dtype=torch.float64)
    moved_rot = rot.clone()
    moved_rot[:, 0] = turn @ rot[:, 0]
    torch.testing.assert_close(
        ms272.encode_272(moved, moved_rot), ms272.encode_272(joints, rot), atol=1e-9, rtol=0
    )


def test_batched_equals_single(folder: Path) -> None:
    d = _motion(folder, "short_spin")
    x = torch.from_numpy(d["ms272"])
    batch = torch.stack([x, x.flip(0)])
    torch.testing.assert_close(ms272.recover_joints_272(batch)[0], ms272.recover_joints_272(x))
    torch.testing.assert_close(
        ms272.recover_joints_272(batch)[1], ms272.recover_joints_272(batch[1])
    )


def test_group_std_matches_fixture_statistics(folder: Path) -> None:
    std = np.load(folder / "mean_std" / "Std.npy")
    np.testing.assert_allclose(ms272.group_std(std), std, rtol=1e-12)
    data = np.concatenate([_motion(folder, n)["ms272"] for n in NAMES])
    np.testing.assert_allclose(ms272.group_std(data.std(0)), std, rtol=1e-10)


# --- the zoo's canon272 skeleton -------------------------------------------------------------

# research/bridge_272_skeleton.md, section 1: the zoo's canon272 offsets to 4 decimals (metres)
NOTE_CANON272 = [
    (0, 0, 0), (0.0603, -0.0946, -0.0262), (-0.0655, -0.1059, -0.0210), (-0.0030, 0.1117, -0.0285),
    (0.0560, -0.3783, -0.0091), (-0.0453, -0.3619, -0.0170), (0.0102, 0.1337, -0.0058),
    (-0.0442, -0.4020, -0.0338), (0.0153, -0.4096, -0.0219), (-0.0117, 0.0534, 0.0300),
    (0.0480, -0.0573, 0.1186), (-0.0393, -0.0577, 0.1194), (-0.0128, 0.1677, -0.0323),
    (0.0473, 0.0864, -0.0068), (-0.0494, 0.0857, -0.0130), (0.0252, 0.1627, 0.0204),
    (0.1232, 0.0580, -0.0151), (-0.1059, 0.0539, -0.0131), (0.2544, -0.0725, -0.0444),
    (-0.2718, -0.0358, -0.0273), (0.2510, 0.0239, -0.0018), (-0.2484, -0.0049, -0.0148),
]  # fmt: skip
SMPL22_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]


def _zoo_fk(rot: np.ndarray, transl: np.ndarray, off: np.ndarray) -> np.ndarray:
    """The zoo's motion135_fk as the note states it: pos0 = transl + off0, Rg = Rg_p R,
    pos_j = pos_p + Rg_p off_j (plain loops, float64)."""
    frames = len(rot)
    pos = np.zeros((frames, 22, 3))
    glob = np.zeros((frames, 22, 3, 3))
    for t in range(frames):
        for j in range(22):
            p = SMPL22_PARENTS[j]
            if p < 0:
                glob[t, j] = rot[t, j]
                pos[t, j] = transl[t] + off[j]
            else:
                glob[t, j] = glob[t, p] @ rot[t, j]
                pos[t, j] = pos[t, p] + glob[t, p] @ off[j]
    return pos


def _roty(a: np.ndarray) -> np.ndarray:
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(a.shape + (3, 3))


def _official_272(joints: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """MotionStreamer's 272 layout in plain numpy, checked against its own output below."""
    frames = len(joints)
    pos = joints - np.array([joints[0, 0, 0], joints[..., 1].min(), joints[0, 0, 2]])
    root_step = pos[1:, 0] - pos[:-1, 0]
    pos = pos - pos[:, :1] * np.array([1.0, 0.0, 1.0])
    heading = -np.arctan2(rot[:, 0, 0, 2], rot[:, 0, 2, 2])
    hmat = _roty(heading)
    local = np.einsum("tij,tkj->tki", hmat, pos)
    out = np.zeros((frames, 272))
    out[1:, 0:2] = np.einsum("tij,tj->ti", hmat[:-1], root_step)[:, [0, 2]]
    out[:, 2:8] = np.array([1, 0, 0, 0, 1, 0])
    out[1:, 2:8] = _roty(heading[1:] - heading[:-1])[:, :2, :].reshape(-1, 6)
    out[:, 8:74] = local.reshape(frames, 66)
    out[1:, 74:140] = (local[1:] - local[:-1]).reshape(frames - 1, 66)
    rots = rot.copy()
    rots[:, 0] = hmat @ rot[:, 0]
    out[:, 140:272] = rots[:, :, :2, :].reshape(frames, 132)
    return out


def test_canon272_offsets_are_the_notes() -> None:
    from hftrainer_mogents.motion.skeletons import CANON272_BONE_OFFSETS

    assert CANON272_BONE_OFFSETS.shape == (22, 3)
    np.testing.assert_allclose(CANON272_BONE_OFFSETS, np.array(NOTE_CANON272), atol=5.1e-5)
    assert not CANON272_BONE_OFFSETS.flags.writeable


@pytest.mark.parametrize("name", NAMES)
def test_motion135_to_272_default_is_the_zoos_canon272_conversion(
    folder: Path, rest: torch.Tensor, name: str
) -> None:
    """Expected: the zoo's converter as the note describes it (fixed-skeleton FK, root at
    motion_135[:, :3], then the official 272 encoding), built here without our code."""
    from hftrainer_mogents.motion.skeletons import CANON272_BONE_OFFSETS

    d = _motion(folder, name)
    rot, transl = d["local_rotmats22"].astype(np.float64), d["smpl_transl"].astype(np.float64)
    # this test's encoder is MotionStreamer's: on the SMPL joints it gives upstream's file
    np.testing.assert_allclose(
        _official_272(d["fk_joints24"][:, :22].astype(np.float64), rot), d["ms272"], atol=1e-5
    )
    expected = _official_272(_zoo_fk(rot, transl, np.asarray(CANON272_BONE_OFFSETS)), rot)
    m135 = torch.from_numpy(d["motion135_cols"])
    ours = ms272.motion135_to_272(m135.double())
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-5, rtol=0)
    # the one-clip converter edge: no body model needed, float32
    edge = ms272.smpl135_to_ms272(d["motion135_cols"].astype(np.float32))
    assert edge.dtype == np.float32
    np.testing.assert_allclose(edge, expected, atol=1e-5, rtol=0)
    # the SMPL skeleton is the option: same rotations, other positions
    smpl = ms272.smpl135_to_ms272(d["motion135_cols"], skeleton="smpl", model_dir=folder / "smpl")
    np.testing.assert_allclose(smpl, d["ms272"], atol=1e-5)
    np.testing.assert_allclose(smpl[:, ms272.ROTATIONS], edge[:, ms272.ROTATIONS], atol=1e-6)
    assert np.abs(smpl[:, ms272.POSITIONS] - edge[:, ms272.POSITIONS]).max() > 0.01


def test_motion135_to_272_skeleton_errors(folder: Path, rest: torch.Tensor) -> None:
    from hftrainer_mogents.errors import InvalidInputError

    m135 = torch.from_numpy(_motion(folder, "short_spin")["motion135_cols"])
    with pytest.raises(InvalidInputError, match=r"rest_joints are only used with skeleton='smpl'"):
        ms272.motion135_to_272(m135, rest)
    with pytest.raises(InvalidInputError, match=r"skeleton='smpl' needs the body model"):
        ms272.motion135_to_272(m135, skeleton="smpl")
    with pytest.raises(InvalidInputError, match=r"unknown skeleton 'smplh'.*'canon272', 'smpl'"):
        ms272.motion135_to_272(m135, skeleton="smplh")
