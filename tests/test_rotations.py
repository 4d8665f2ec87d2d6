"""motion.rotations against scipy's Rotation (an independent implementation) and by construction."""

from __future__ import annotations

import itertools
import math

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


def test_kabsch_rotation_matches_scipy_and_never_reflects() -> None:
    rng = np.random.default_rng(4)
    truth = Rotation.random(8, random_state=rng)
    src = rng.normal(size=(5, 3))
    dst = np.einsum("bij,kj->bki", truth.as_matrix(), src) + 0.01 * rng.normal(size=(8, 5, 3))
    got = rot.kabsch_rotation(torch.from_numpy(src), torch.from_numpy(dst))  # (8, 3, 3)
    for b in range(8):
        # scipy's align_vectors(a, b) rotates b onto a
        expected, _ = Rotation.align_vectors(dst[b], src)
        torch.testing.assert_close(got[b], torch.from_numpy(expected.as_matrix()))
    # a mirrored target: the best orthogonal map is a reflection, the answer stays a rotation
    mirrored = torch.from_numpy(src * np.array([1.0, 1.0, -1.0]))
    r = rot.kabsch_rotation(torch.from_numpy(src), mirrored)
    torch.testing.assert_close(torch.linalg.det(r), torch.tensor(1.0, dtype=r.dtype))
    torch.testing.assert_close(r @ r.mT, torch.eye(3, dtype=r.dtype))


# --------------------------------------------------------------------------------------------
# Euler angles

ORDERS = ["".join(p) for p in itertools.permutations("XYZ")]


@pytest.mark.parametrize("order", ORDERS)
def test_euler_round_trip_every_order(order: str) -> None:
    gen = torch.Generator().manual_seed(0)
    mats = rot.axis_angle_to_matrix(torch.randn(500, 3, generator=gen, dtype=torch.float64) * 2)
    angles = rot.matrix_to_euler(mats, order)
    assert angles[:, 1].abs().max() <= math.pi / 2 + 1e-12
    torch.testing.assert_close(rot.euler_to_matrix(angles, order), mats, atol=1e-10, rtol=0)
    # the other triple of the same rotation, which the unwrapping may pick
    a, b, c = angles.unbind(-1)
    alt = torch.stack((a + math.pi, math.pi - b, c + math.pi), dim=-1)
    torch.testing.assert_close(rot.euler_to_matrix(alt, order), mats, atol=1e-10, rtol=0)


def test_euler_to_matrix_is_the_left_to_right_product() -> None:
    angles = torch.tensor([0.3, -1.1, 2.0], dtype=torch.float64)
    axes = {"X": (1.0, 0, 0), "Y": (0, 1.0, 0), "Z": (0, 0, 1.0)}
    for order in ("ZYX", "YZX", "XZ", "Y"):
        expected = torch.eye(3, dtype=torch.float64)
        for letter, angle in zip(order, angles):
            expected = expected @ rot.axis_angle_to_matrix(
                torch.tensor(axes[letter], dtype=torch.float64) * angle
            )
        got = rot.euler_to_matrix(angles[: len(order)], order)
        torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("order", ["ZYX", "YZX"])
def test_matrix_to_euler_at_gimbal_lock(order: str) -> None:
    angles = torch.tensor(
        [[0.7, math.pi / 2, -0.4], [-2.0, -math.pi / 2, 1.0]], dtype=torch.float64
    )
    mats = rot.euler_to_matrix(angles, order)
    back = rot.matrix_to_euler(mats, order)
    torch.testing.assert_close(rot.euler_to_matrix(back, order), mats, atol=1e-7, rtol=0)
    assert torch.all(back[:, 2] == 0)


def test_unwrap_euler_keeps_the_rotations_and_removes_the_jumps() -> None:
    # a steady spin about y through +-pi: the wrapped angles jump by 2 pi, the unwrapped do not
    t = torch.linspace(0, 4 * math.pi, 60, dtype=torch.float64)
    mats = rot.euler_to_matrix(torch.stack((0.3 * torch.sin(t), t, 0.2 * t), -1)[:, None], "YZX")
    wrapped = rot.matrix_to_euler(mats, "YZX")  # (60, 1, 3)
    unwrapped = rot.unwrap_euler(wrapped)
    torch.testing.assert_close(rot.euler_to_matrix(unwrapped, "YZX"), mats, atol=1e-10, rtol=0)
    assert wrapped.diff(dim=0).abs().max() > math.pi
    assert unwrapped.diff(dim=0).abs().max() < 0.5
