"""motion.rotations against scipy's Rotation (an independent implementation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation, Slerp

from hftrainer_mogents.motion import rotations as rot


@pytest.fixture
def rotations() -> Rotation:
    """Random rotations plus the awkward ones: identity, tiny angles, exactly pi about each axis."""
    rng = np.random.default_rng(0)
    special = np.array(
        [[0, 0, 0], [1e-9, 0, 0], [0, 2e-5, 0], [np.pi, 0, 0], [0, np.pi, 0], [0, 0, np.pi]]
    )
    special = np.concatenate([special, np.pi * np.array([[1, 1, 0]]) / np.sqrt(2)])
    return Rotation.concatenate(
        [Rotation.from_rotvec(special), Rotation.random(64, random_state=rng)]
    )


def test_quat_matrix_axis_angle_match_scipy(rotations: Rotation) -> None:
    quat = torch.from_numpy(rotations.as_quat(scalar_first=True))
    mats = torch.from_numpy(rotations.as_matrix())
    rotvec = torch.from_numpy(rotations.as_rotvec())
    torch.testing.assert_close(rot.quat_to_matrix(quat), mats, atol=1e-12, rtol=0)
    torch.testing.assert_close(rot.axis_angle_to_matrix(rotvec), mats, atol=1e-12, rtol=0)
    # quaternion sign is free: compare matrices, and check w >= 0
    q_back = rot.matrix_to_quat(mats)
    assert (q_back[:, 0] >= 0).all()
    torch.testing.assert_close(rot.quat_to_matrix(q_back), mats, atol=1e-12, rtol=0)
    aa_back = rot.matrix_to_axis_angle(mats)
    torch.testing.assert_close(rot.axis_angle_to_matrix(aa_back), mats, atol=1e-9, rtol=0)
    assert (aa_back.norm(dim=-1) <= np.pi + 1e-9).all()
    torch.testing.assert_close(rot.quat_to_axis_angle(rot.axis_angle_to_quat(rotvec)), rotvec)


def test_quat_apply_and_mul_match_matrices(rotations: Rotation) -> None:
    q = torch.from_numpy(rotations.as_quat(scalar_first=True))
    v = torch.randn(len(q), 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    expected = torch.from_numpy(rotations.apply(v.numpy()))
    torch.testing.assert_close(rot.quat_apply(q, v), expected, atol=1e-12, rtol=0)
    q2 = q.flip(0)
    product = rot.quat_to_matrix(rot.quat_mul(q, q2))
    torch.testing.assert_close(product, rot.quat_to_matrix(q) @ rot.quat_to_matrix(q2))
    identity = rot.quat_mul(q, rot.quat_conjugate(q))
    torch.testing.assert_close(identity, q.new_tensor([1.0, 0, 0, 0]).expand_as(q))


def test_rot6d_layouts_store_the_named_entries() -> None:
    m = torch.arange(9, dtype=torch.float64).reshape(3, 3)  # entry (r, c) = 3r + c
    assert rot.matrix_to_rot6d_rows(m).tolist() == [0, 1, 2, 3, 4, 5]  # R00 R01 R02 R10 R11 R12
    assert rot.matrix_to_rot6d_cols(m).tolist() == [0, 3, 6, 1, 4, 7]  # R00 R10 R20 R01 R11 R21
    assert rot.matrix_to_rot6d_cols_interleaved(m).tolist() == [0, 1, 3, 4, 6, 7]


@pytest.mark.parametrize(
    ("encode", "decode"),
    [
        (rot.matrix_to_rot6d_rows, rot.rot6d_rows_to_matrix),
        (rot.matrix_to_rot6d_cols, rot.rot6d_cols_to_matrix),
        (rot.matrix_to_rot6d_cols_interleaved, rot.rot6d_cols_interleaved_to_matrix),
    ],
    ids=["rows", "cols", "cols_interleaved"],
)
def test_rot6d_round_trip(rotations: Rotation, encode, decode) -> None:
    mats = torch.from_numpy(rotations.as_matrix())
    torch.testing.assert_close(decode(encode(mats)), mats, atol=1e-12, rtol=0)
    # Gram-Schmidt turns a perturbed 6D into the nearest valid rotation
    noisy = encode(mats) * 1.3 + 1e-3
    out = decode(noisy)
    eye = torch.eye(3, dtype=out.dtype).expand_as(out)
    torch.testing.assert_close(out @ out.transpose(-1, -2), eye, atol=1e-12, rtol=0)
    torch.testing.assert_close(torch.linalg.det(out), torch.ones(len(out), dtype=out.dtype))


def test_rot6d_layouts_are_not_interchangeable(rotations: Rotation) -> None:
    mats = torch.from_numpy(rotations.as_matrix()[7:])  # the random ones
    wrong = rot.rot6d_rows_to_matrix(rot.matrix_to_rot6d_cols_interleaved(mats))
    assert (wrong - mats).abs().amax() > 0.5


def test_rotation_between_and_rot_y() -> None:
    g = torch.Generator().manual_seed(2)
    u = torch.randn(100, 3, dtype=torch.float64, generator=g)
    v = torch.randn(100, 3, dtype=torch.float64, generator=g)
    v[0] = -u[0] * 2.0  # anti-parallel
    v[1] = u[1] * 0.5  # parallel
    u[2] = torch.tensor([1.0, 0.0, 0.0])  # anti-parallel along x (the alternative axis)
    v[2] = torch.tensor([-1.0, 0.0, 0.0])
    r = rot.rotation_between(u, v)
    un = torch.nn.functional.normalize(u, dim=-1)
    vn = torch.nn.functional.normalize(v, dim=-1)
    torch.testing.assert_close((r @ un[..., None])[..., 0], vn, atol=1e-12, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(100, dtype=r.dtype))
    angle = torch.tensor([0.3, -2.0], dtype=torch.float64)
    expected = Rotation.from_rotvec(np.outer(angle.numpy(), [0, 1, 0])).as_matrix()
    torch.testing.assert_close(rot.rot_y(angle), torch.from_numpy(expected))


def test_quat_slerp_matches_scipy(rotations: Rotation) -> None:
    key = Rotation.concatenate([rotations[10], rotations[20]])
    times = np.linspace(0, 1, 7)
    expected = Slerp([0, 1], key)(times).as_matrix()
    q = torch.from_numpy(key.as_quat(scalar_first=True))
    q1 = -q[1]  # the other sign of the same rotation: slerp must take the short arc anyway
    out = rot.quat_slerp(q[0].expand(7, 4), q1.expand(7, 4), torch.from_numpy(times))
    torch.testing.assert_close(rot.quat_to_matrix(out), torch.from_numpy(expected))
