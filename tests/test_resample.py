"""motion.resample: grids, linear interpolation and slerp."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_fixture
from scipy.spatial.transform import Rotation, Slerp

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.motion import resample
from hftrainer_mogents.motion.rotations import quat_to_matrix


def test_grids() -> None:
    zoo = resample.resample_times(120, 20, 30, "zoo")
    assert len(zoo) == 180 and zoo[0] == 0 and zoo[-1] == 119
    exact = resample.resample_times(120, 20, 30, "exact")
    assert len(exact) == 179
    np.testing.assert_allclose(exact, np.arange(179) * 2 / 3)
    assert len(resample.resample_times(43, 20, 30, "zoo")) == 64  # round(64.5) -> 64 (to even)
    np.testing.assert_array_equal(resample.resample_times(5, 30, 30), np.arange(5))
    with pytest.raises(InvalidInputError):
        resample.resample_times(0, 20, 30)
    with pytest.raises(InvalidInputError, match="unknown resample mode"):
        resample.resample_times(10, 20, 30, "cubic")  # type: ignore[arg-type]


def test_linear_matches_numpy_interp_for_numpy_and_torch() -> None:
    x = np.random.default_rng(0).normal(size=(41, 22, 3)).astype(np.float32)
    out = resample.resample_linear(x, 20, 30)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    times = resample.resample_times(41, 20, 30)
    expected = np.stack(
        [np.interp(times, np.arange(41), x[:, j, c]) for j in range(22) for c in range(3)], -1
    ).reshape(len(times), 22, 3)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    out_t = resample.resample_linear(torch.from_numpy(x).double(), 20, 30)
    assert out_t.dtype == torch.float64
    np.testing.assert_allclose(out_t.numpy(), expected, atol=1e-12)


def test_exact_grid_reproduces_the_fixture_downsampling(fixtures_dir: Path) -> None:
    data = np.load(require_fixture(fixtures_dir / "ms272_tiny" / "motions" / "walk_turn.npz"))
    joints30 = data["fk_joints24"][:, :22].astype(np.float64)
    out = resample.resample_linear(joints30, 30, 20, mode="exact")
    np.testing.assert_allclose(out, data["fk_joints22_20fps"], atol=1e-6)


def test_slerp_matches_scipy() -> None:
    rots = Rotation.random(12, random_state=np.random.default_rng(1))
    quat = torch.from_numpy(rots.as_quat(scalar_first=True))  # (12, 4) one track
    out = resample.resample_quat_slerp(quat[:, None], 20, 30)[:, 0]
    times = resample.resample_times(12, 20, 30)
    expected = Slerp(np.arange(12), rots)(times).as_matrix()
    torch.testing.assert_close(quat_to_matrix(out), torch.from_numpy(expected))
    mats = resample.resample_rotmats_slerp(torch.from_numpy(rots.as_matrix()), 20, 30)
    torch.testing.assert_close(mats, torch.from_numpy(expected))
