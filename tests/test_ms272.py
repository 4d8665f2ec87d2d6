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
    # the converter path: motion_135 -> FK on the fixture model -> 272
    torch.testing.assert_close(
        ms272.motion135_to_272(torch.from_numpy(d["motion135_cols"]), rest), ref, atol=1e-5, rtol=0
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
    torch.testing.assert_close(ms272.motion135_to_272(m135, rest), x, atol=1e-5, rtol=0)


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
