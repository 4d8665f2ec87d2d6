"""Rotations as pure torch functions: quaternions, matrices, axis-angle, 6D layouts, Euler angles.

Conventions (every function here follows them, none is implied):

- Matrices act on **column vectors**: ``v' = R @ v``; shape ``(..., 3, 3)``.
- Quaternions are ``(w, x, y, z)``, scalar first; shape ``(..., 4)``.
- Axis-angle is ``angle * unit_axis``; shape ``(..., 3)``.
- Euler angles are radians, one per letter of an axis order, composed left to right as the
  letters read (``"ZYX"``: ``R = Rz @ Ry @ Rx``), as BVH channels are.
- 6D rotations come in three layouts, and the layout is in every function's name:

  ==========================  =============================  ==================================
  name                        the 6 numbers                  used by
  ==========================  =============================  ==================================
  ``rot6d_rows``              ``R00 R01 R02 R10 R11 R12``    MotionStreamer-272 ``[140:272]``,
                              (first two rows)               pytorch3d ``matrix_to_rotation_6d``
  ``rot6d_cols``              ``R00 R10 R20 R01 R11 R21``    HumanML3D-263 ``cont6d`` (rot_data)
                              (first two columns, one
                              after the other)
  ``rot6d_cols_interleaved``  ``R00 R01 R10 R11 R20 R21``    SMPL ``motion_135`` (the zoo's
                              (``R[:, :2]`` flattened        "row" layout: the 3x2 block of the
                              row by row)                    first two columns, row-major)
  ==========================  =============================  ==================================

  Decoding any layout runs Gram-Schmidt on the two stored vectors; feeding one layout to another's
  decoder gives a valid but wrong rotation, which is why the names are explicit.

Device and dtype always come from the inputs.
"""

from __future__ import annotations

import math

import torch

from hftrainer_mogents.errors import InvalidInputError

__all__ = [
    "quat_mul",
    "quat_conjugate",
    "quat_apply",
    "quat_normalize",
    "quat_to_matrix",
    "matrix_to_quat",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "axis_angle_to_quat",
    "quat_to_axis_angle",
    "matrix_to_rot6d_rows",
    "rot6d_rows_to_matrix",
    "matrix_to_rot6d_cols",
    "rot6d_cols_to_matrix",
    "matrix_to_rot6d_cols_interleaved",
    "rot6d_cols_interleaved_to_matrix",
    "rot_y",
    "rotation_between",
    "kabsch_rotation",
    "quat_slerp",
    "euler_to_matrix",
    "matrix_to_euler",
    "unwrap_euler",
]


# --------------------------------------------------------------------------------------------
# quaternions (w, x, y, z)


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``a * b`` (apply ``b`` first, then ``a``).

    Args:
        a: (..., 4) quaternions (w, x, y, z).
        b: (..., 4) quaternions, broadcastable with ``a``.

    Returns:
        (..., 4) the product.
    """
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        dim=-1,
    )


def quat_conjugate(q: torch.Tensor) -> torch.Tensor:
    """Conjugate ``(w, -x, -y, -z)``: the inverse of a unit quaternion.

    Args:
        q: (..., 4).

    Returns:
        (..., 4).
    """
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def quat_apply(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors by unit quaternions: ``v + 2 (w (u x v) + u x (u x v))``, ``u = q.xyz``.

    Args:
        q: (..., 4) unit quaternions.
        v: (..., 3) vectors, same leading shape as ``q``.

    Returns:
        (..., 3) rotated vectors.
    """
    u = q[..., 1:]
    uv = torch.linalg.cross(u, v, dim=-1)
    uuv = torch.linalg.cross(u, uv, dim=-1)
    return v + 2 * (q[..., :1] * uv + uuv)


def quat_normalize(q: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Scale to unit norm.

    Args:
        q: (..., 4).

    Returns:
        (..., 4).
    """
    return q / q.norm(dim=-1, keepdim=True).clamp_min(eps)


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternions to rotation matrices.

    Args:
        q: (..., 4) (w, x, y, z); normalised here.

    Returns:
        (..., 3, 3) matrices acting on column vectors.
    """
    w, x, y, z = quat_normalize(q).unbind(-1)
    two = 2.0
    m = torch.stack(
        (
            1 - two * (y * y + z * z),
            two * (x * y - z * w),
            two * (x * z + y * w),
            two * (x * y + z * w),
            1 - two * (x * x + z * z),
            two * (y * z - x * w),
            two * (x * z - y * w),
            two * (y * z + x * w),
            1 - two * (x * x + y * y),
        ),
        dim=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))  # (..., 9) -> (..., 3, 3)


def matrix_to_quat(m: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to unit quaternions with ``w >= 0``.

    Uses the largest of the four candidate denominators per element, so it is stable for every
    rotation (including 180 degrees).

    Args:
        m: (..., 3, 3).

    Returns:
        (..., 4) (w, x, y, z).
    """
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4*w^2, 4*x^2, 4*y^2, 4*z^2
    sq = torch.stack(
        (
            1 + m00 + m11 + m22,
            1 + m00 - m11 - m22,
            1 - m00 + m11 - m22,
            1 - m00 - m11 + m22,
        ),
        dim=-1,
    )
    root = sq.clamp_min(0).sqrt()  # (..., 4) = 2|w|, 2|x|, 2|y|, 2|z|
    # one candidate per largest component; each row is (w, x, y, z) * (2 * that component)
    cands = torch.stack(
        (
            torch.stack((root[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01), -1),
            torch.stack((m21 - m12, root[..., 1] ** 2, m10 + m01, m02 + m20), -1),
            torch.stack((m02 - m20, m10 + m01, root[..., 2] ** 2, m12 + m21), -1),
            torch.stack((m10 - m01, m20 + m02, m21 + m12, root[..., 3] ** 2), -1),
        ),
        dim=-2,
    )  # (..., 4 candidates, 4)
    best = root.argmax(dim=-1)  # (...)
    denom = (2 * root.gather(-1, best[..., None])).clamp_min(1e-12)  # (..., 1)
    idx = best[..., None, None].expand(best.shape + (1, 4))
    q = cands.gather(-2, idx).squeeze(-2) / denom
    q = quat_normalize(q)
    return torch.where(q[..., :1] < 0, -q, q)


def axis_angle_to_quat(aa: torch.Tensor) -> torch.Tensor:
    """Axis-angle to unit quaternions (smooth at zero angle).

    Args:
        aa: (..., 3) ``angle * axis``.

    Returns:
        (..., 4) (w, x, y, z).
    """
    angle2 = (aa * aa).sum(-1, keepdim=True)  # (..., 1)
    small = angle2 < 1e-12
    angle = torch.where(small, torch.ones_like(angle2), angle2).sqrt()
    half = 0.5 * torch.where(small, torch.zeros_like(angle), angle)
    # sin(a/2)/a, with its Taylor series near 0
    k = torch.where(small, 0.5 - angle2 / 48.0, torch.sin(half) / angle)
    return torch.cat((torch.cos(half), aa * k), dim=-1)


def quat_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternions to axis-angle with angle in ``[0, pi]``.

    Args:
        q: (..., 4) (w, x, y, z).

    Returns:
        (..., 3).
    """
    q = quat_normalize(q)
    q = torch.where(q[..., :1] < 0, -q, q)
    xyz = q[..., 1:]
    s = xyz.norm(dim=-1, keepdim=True)  # sin(a/2)
    angle = 2 * torch.atan2(s, q[..., :1])
    small = s < 1e-6
    # a / sin(a/2), with its limit 2 near 0
    k = torch.where(small, 2.0 + angle * angle / 12.0, angle / torch.where(small, 1.0, s))
    return xyz * k


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """Axis-angle to rotation matrices (Rodrigues' formula, smooth at zero angle).

    ``R = I + a [v]x + b [v]x^2`` with ``a = sin t / t``, ``b = (1 - cos t) / t^2``, written entry
    by entry (``[v]x^2 = v v^T - |v|^2 I``): several times cheaper, forward and backward, than
    building and multiplying 3x3 tensors, which matters inside the IK loop.

    Args:
        aa: (..., 3) ``angle * axis``.

    Returns:
        (..., 3, 3).
    """
    x, y, z = aa.unbind(-1)
    t2 = x * x + y * y + z * z
    small = t2 < 1e-8
    # keep the unused branch finite too, so gradients at zero angle are not NaN
    safe2 = torch.where(small, torch.ones_like(t2), t2)
    t = safe2.sqrt()
    a = torch.where(small, 1 - t2 / 6.0, torch.sin(t) / t)
    b = torch.where(small, 0.5 - t2 / 24.0, (1 - torch.cos(t)) / safe2)
    bx, by, bz = b * x, b * y, b * z
    ax, ay, az = a * x, a * y, a * z
    bxy, bxz, byz = bx * y, bx * z, by * z
    m = torch.stack(
        (
            1 - (by * y + bz * z),
            bxy - az,
            bxz + ay,
            bxy + az,
            1 - (bx * x + bz * z),
            byz - ax,
            bxz - ay,
            byz + ax,
            1 - (bx * x + by * y),
        ),
        dim=-1,
    )
    return m.reshape(aa.shape[:-1] + (3, 3))  # (..., 9) -> (..., 3, 3)


def matrix_to_axis_angle(m: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to axis-angle (angle in ``[0, pi]``), through quaternions.

    Args:
        m: (..., 3, 3).

    Returns:
        (..., 3).
    """
    return quat_to_axis_angle(matrix_to_quat(m))


# --------------------------------------------------------------------------------------------
# 6D layouts


def _gram_schmidt(a1: torch.Tensor, a2: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Orthonormal ``(b1, b2, b3)`` with ``b1 ~ a1``, ``b2`` in the plane of ``a1, a2``."""
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = torch.nn.functional.normalize(b2, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return b1, b2, b3


def matrix_to_rot6d_rows(m: torch.Tensor) -> torch.Tensor:
    """First two **rows**: ``[R00, R01, R02, R10, R11, R12]`` (MotionStreamer-272, pytorch3d).

    Args:
        m: (..., 3, 3).

    Returns:
        (..., 6).
    """
    return m[..., :2, :].reshape(m.shape[:-2] + (6,))  # (..., 2, 3) -> (..., 6)


def rot6d_rows_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`matrix_to_rot6d_rows`: Gram-Schmidt, results stacked as **rows**.

    Args:
        d6: (..., 6).

    Returns:
        (..., 3, 3).
    """
    b1, b2, b3 = _gram_schmidt(d6[..., :3], d6[..., 3:])
    return torch.stack((b1, b2, b3), dim=-2)


def matrix_to_rot6d_cols(m: torch.Tensor) -> torch.Tensor:
    """First two **columns**, one after the other: ``[R00, R10, R20, R01, R11, R21]``
    (HumanML3D ``cont6d``).

    Args:
        m: (..., 3, 3).

    Returns:
        (..., 6).
    """
    return torch.cat((m[..., :, 0], m[..., :, 1]), dim=-1)


def rot6d_cols_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`matrix_to_rot6d_cols`: Gram-Schmidt, results stacked as **columns**.

    Args:
        d6: (..., 6).

    Returns:
        (..., 3, 3).
    """
    b1, b2, b3 = _gram_schmidt(d6[..., :3], d6[..., 3:])
    return torch.stack((b1, b2, b3), dim=-1)


def matrix_to_rot6d_cols_interleaved(m: torch.Tensor) -> torch.Tensor:
    """First two **columns, interleaved** (``R[:, :2]`` row-major): ``[R00, R01, R10, R11, R20,
    R21]`` (SMPL ``motion_135``; the zoo calls this its "row" layout).

    Args:
        m: (..., 3, 3).

    Returns:
        (..., 6).
    """
    return m[..., :, :2].reshape(m.shape[:-2] + (6,))  # (..., 3, 2) -> (..., 6)


def rot6d_cols_interleaved_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`matrix_to_rot6d_cols_interleaved`: columns ``d6.reshape(3, 2)[:, 0]`` and
    ``[:, 1]``, Gram-Schmidt, stacked as **columns**.

    Args:
        d6: (..., 6).

    Returns:
        (..., 3, 3).
    """
    cols = d6.reshape(d6.shape[:-1] + (3, 2))  # (..., 6) -> (..., 3, 2)
    b1, b2, b3 = _gram_schmidt(cols[..., 0], cols[..., 1])
    return torch.stack((b1, b2, b3), dim=-1)


# --------------------------------------------------------------------------------------------
# helpers


def _axis_rotation(axis: int, angle: torch.Tensor) -> torch.Tensor:
    """(...) radians -> (..., 3, 3) rotation about coordinate axis ``axis`` (0=x, 1=y, 2=z)."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    if axis == 0:
        m = (one, zero, zero, zero, c, -s, zero, s, c)
    elif axis == 1:
        m = (c, zero, s, zero, one, zero, -s, zero, c)
    else:
        m = (c, -s, zero, s, c, zero, zero, zero, one)
    return torch.stack(m, dim=-1).reshape(angle.shape + (3, 3))  # (..., 9) -> (..., 3, 3)


def rot_y(angle: torch.Tensor) -> torch.Tensor:
    """Rotation about +y: ``[[cos, 0, sin], [0, 1, 0], [-sin, 0, cos]]``.

    Args:
        angle: (...) radians.

    Returns:
        (..., 3, 3).
    """
    return _axis_rotation(1, angle)


def rotation_between(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The smallest rotation taking direction ``u`` to direction ``v``.

    Anti-parallel inputs turn by pi about an axis perpendicular to ``u``.

    Args:
        u: (..., 3) directions (any length > 0).
        v: (..., 3) directions, broadcastable with ``u``.

    Returns:
        (..., 3, 3) ``R`` with ``R @ u_hat = v_hat``.
    """
    u, v = torch.broadcast_tensors(u, v)
    u = torch.nn.functional.normalize(u, dim=-1)
    v = torch.nn.functional.normalize(v, dim=-1)
    w = 1 + (u * v).sum(-1, keepdim=True)  # 2 cos^2(a/2)
    xyz = torch.linalg.cross(u, v, dim=-1)
    # anti-parallel: any axis perpendicular to u (cross with x, or with y when u ~ x)
    ex = torch.zeros_like(u)
    ex[..., 0] = 1
    ey = torch.zeros_like(u)
    ey[..., 1] = 1
    alt = torch.linalg.cross(u, torch.where(u[..., :1].abs() < 0.9, ex, ey), dim=-1)
    opposite = w < 1e-7
    q = torch.where(opposite, torch.cat((torch.zeros_like(w), alt), -1), torch.cat((w, xyz), -1))
    return quat_to_matrix(q)


def kabsch_rotation(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Rotation ``R`` minimising ``sum_k |R src_k - dst_k|^2`` (Kabsch), never a reflection.

    Args:
        src: (K, 3) vectors, e.g. a joint's rest offsets to its children.
        dst: (..., K, 3) vectors to turn them onto, e.g. the bones to those children per frame.

    Returns:
        (..., 3, 3) proper rotations.
    """
    cov = torch.einsum("...ki,kj->...ij", dst, src)  # sum_k dst_k src_k^T: (..., 3, 3)
    u, _, vh = torch.linalg.svd(cov)
    d = torch.sign(torch.linalg.det(u @ vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    fix = torch.diag_embed(torch.stack((torch.ones_like(d), torch.ones_like(d), d), dim=-1))
    return u @ fix @ vh


def quat_slerp(q0: torch.Tensor, q1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical linear interpolation along the shorter arc.

    Args:
        q0: (..., 4) unit quaternions at ``t = 0``.
        q1: (..., 4) unit quaternions at ``t = 1``.
        t: (...) or (..., 1) weights in ``[0, 1]``, broadcastable.

    Returns:
        (..., 4) unit quaternions.
    """
    if t.dim() == q0.dim() - 1:
        t = t[..., None]
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)
    dot = dot.abs().clamp(max=1.0)
    theta = torch.acos(dot)
    sin_theta = torch.sin(theta)
    near = sin_theta < 1e-6
    safe = torch.where(near, torch.ones_like(sin_theta), sin_theta)
    w0 = torch.where(near, 1 - t, torch.sin((1 - t) * theta) / safe)
    w1 = torch.where(near, t, torch.sin(t * theta) / safe)
    return quat_normalize(w0 * q0 + w1 * q1)


# --------------------------------------------------------------------------------------------
# Euler angles


def _parse_order(order: str) -> tuple[int, ...]:
    axes = tuple("XYZ".index(a) for a in order.upper() if a in "XYZ")
    if len(axes) != len(order):
        raise InvalidInputError(f"Euler order {order!r}: use the letters X, Y and Z")
    return axes


def euler_to_matrix(angles: torch.Tensor, order: str = "ZYX") -> torch.Tensor:
    """Rotation matrices from Euler angles composed left to right, as BVH channels are.

    Args:
        angles: (..., N) radians, one per letter of ``order``.
        order: N axis letters, e.g. ``"ZYX"`` for ``R = Rz(a0) @ Ry(a1) @ Rx(a2)``; any length
            (BVH files may list one, two or more rotation channels).

    Returns:
        (..., 3, 3) matrices acting on column vectors.
    """
    axes = _parse_order(order)
    if angles.shape[-1] != len(axes):
        raise InvalidInputError(
            f"euler_to_matrix: {len(axes)} angles for order {order!r}, got {tuple(angles.shape)}"
        )
    out = torch.eye(3, dtype=angles.dtype, device=angles.device).expand(angles.shape[:-1] + (3, 3))
    for k, axis in enumerate(axes):
        out = out @ _axis_rotation(axis, angles[..., k])
    return out


def matrix_to_euler(m: torch.Tensor, order: str = "ZYX") -> torch.Tensor:
    """Euler angles of rotation matrices, inverse of :func:`euler_to_matrix` for 3 distinct axes.

    The middle angle is in ``[-pi/2, pi/2]``; at gimbal lock (middle angle +-pi/2) the last angle
    is set to 0.

    Args:
        m: (..., 3, 3) rotation matrices (column vectors).
        order: three distinct axis letters (Tait-Bryan), e.g. ``"ZYX"``.

    Returns:
        (..., 3) radians, one per letter of ``order``.
    """
    axes = _parse_order(order)
    if sorted(axes) != [0, 1, 2]:
        raise InvalidInputError(f"matrix_to_euler needs three distinct axes, got {order!r}")
    i, j, k = axes
    # +1 for the cyclic orders XYZ, YZX, ZXY, -1 for the others
    s = 1.0 if (j - i) % 3 == 1 else -1.0
    cos_b = torch.sqrt(m[..., i, i] ** 2 + m[..., i, j] ** 2)
    b = torch.atan2(s * m[..., i, k], cos_b)
    a = torch.atan2(-s * m[..., j, k], m[..., k, k])
    c = torch.atan2(-s * m[..., i, j], m[..., i, i])
    # gimbal lock: only a +- c is defined; put it all in a
    locked = cos_b < 1e-9
    a = torch.where(locked, torch.atan2(s * m[..., k, j], m[..., j, j]), a)
    c = torch.where(locked, torch.zeros_like(c), c)
    return torch.stack((a, b, c), dim=-1)


def unwrap_euler(angles: torch.Tensor) -> torch.Tensor:
    """Make Tait-Bryan angle triples continuous over time.

    Each frame takes whichever of its two equivalent triples, ``(a, b, c)`` or
    ``(a + pi, pi - b, c + pi)``, each angle shifted by a multiple of 2 pi, lies closer to the
    previous frame.

    Args:
        angles: (T, J, 3) radians.

    Returns:
        (T, J, 3) radians describing the same rotations.
    """
    out = angles.clone()
    alt = torch.stack(
        (angles[..., 0] + math.pi, math.pi - angles[..., 1], angles[..., 2] + math.pi), dim=-1
    )
    two_pi = 2 * math.pi
    for t in range(1, angles.shape[0]):
        prev = out[t - 1]  # (J, 3)
        cands = torch.stack((angles[t], alt[t]), dim=0)  # (2, J, 3)
        cands = cands - two_pi * torch.round((cands - prev) / two_pi)
        dist = (cands - prev).abs().sum(-1)  # (2, J)
        out[t] = torch.where((dist[1] < dist[0])[:, None], cands[1], cands[0])
    return out
