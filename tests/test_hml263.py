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
