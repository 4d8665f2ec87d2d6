"""motion.bvh: BVH text, reader, forward kinematics and the joints round trip."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_fixture

from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError, InvalidInputError
from hftrainer_mogents.motion import bvh as B
from hftrainer_mogents.motion.hml263 import JOINT_NAMES, PARENTS, recover_from_ric

# depth-first order of the SMPL tree, as the file lists it
DFS_NAMES = [
    "pelvis",
    "left_hip",
    "left_knee",
    "left_ankle",
    "left_foot",
    "right_hip",
    "right_knee",
    "right_ankle",
    "right_foot",
    "spine1",
    "spine2",
    "spine3",
    "neck",
    "head",
    "left_collar",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_collar",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
]
LEAVES = {"left_foot", "right_foot", "head", "left_wrist", "right_wrist"}


@pytest.fixture(scope="module")
def smpl_motions(fixtures_dir: Path) -> dict[str, np.ndarray]:
    """Joints of rigid SMPL-skeleton motions (smplx FK), float64 (T, 22, 3) metres."""
    folder = require_fixture(fixtures_dir / "ms272_tiny" / "motions")
    return {
        p.stem: np.load(p)["fk_joints24"][:, :22].astype(np.float64)
        for p in sorted(folder.glob("*.npz"))
    }


@pytest.fixture(scope="module")
def hml_features(fixtures_dir: Path) -> dict[str, np.ndarray]:
    """Raw 263 fixture motions (synthetic: random features, not realistic bodies)."""
    folder = require_fixture(fixtures_dir / "hml263_eval_tiny")
    files = sorted((folder / "dataset" / "HumanML3D" / "new_joint_vecs").glob("*.npy"))[:3]
    files += sorted((folder / "recover_from_ric").glob("input_*.npy"))
    return {p.stem: np.load(p) for p in files}


def _round_trip(tmp_path: Path, joints, **kwargs) -> tuple[np.ndarray, B.BVHMotion]:
    written = B.write_bvh(tmp_path / "clip.bvh", joints, **kwargs)
    fk = B.bvh_forward_kinematics(B.read_bvh(tmp_path / "clip.bvh"), names=JOINT_NAMES)
    return fk, written


# --------------------------------------------------------------------------------------------
# the file


def test_bvh_text_structure(tmp_path: Path, smpl_motions) -> None:
    joints = smpl_motions["walk_turn"][:12]
    B.write_bvh(tmp_path / "a.bvh", joints)
    text = (tmp_path / "a.bvh").read_text()
    head, motion = text.split("MOTION\n")
    assert head.startswith("HIERARCHY\nROOT pelvis\n")
    assert re.findall(r"(?:ROOT|JOINT) (\S+)", head) == DFS_NAMES
    assert head.count("{") == head.count("}") == 22 + 5
    assert head.count("End Site") == 5
    channels = re.findall(r"CHANNELS (\d+)((?: \S+)+)", head)
    assert channels[0] == ("6", " Xposition Yposition Zposition Yrotation Zrotation Xrotation")
    assert all(c == ("3", " Zrotation Yrotation Xrotation") for c in channels[1:])
    assert len(channels) == 22
    assert re.search(r"ROOT pelvis\n\{\n\tOFFSET 0\.000000 0\.000000 0\.000000\n", head)
    lines = motion.rstrip("\n").split("\n")
    assert lines[0] == "Frames: 12"
    assert lines[1] == "Frame Time: 0.050000"
    rows = [[float(v) for v in line.split()] for line in lines[2:]]
    assert len(rows) == 12 and all(len(r) == 6 + 21 * 3 for r in rows)
    # root position channels are the pelvis, in metres
    np.testing.assert_allclose(np.array(rows)[:, :3], joints[:, 0], atol=1e-6, rtol=0)


def test_leaves_carry_zero_rotations_and_end_sites(smpl_motions) -> None:
    bvh = B.joints_to_bvh(smpl_motions["sway_arms"])
    assert bvh.names == DFS_NAMES
    starts = np.cumsum([0] + [len(c) for c in bvh.channels])
    for j, name in enumerate(bvh.names):
        block = bvh.motion[:, starts[j] : starts[j + 1]]
        if name in LEAVES:
            assert j in bvh.end_sites
            np.testing.assert_array_equal(block, 0.0)
        else:
            assert j not in bvh.end_sites
            assert np.abs(block).max() > 0.1
    assert set(bvh.end_sites) == {bvh.names.index(n) for n in LEAVES}


def test_read_bvh_matches_what_was_written(tmp_path: Path, smpl_motions) -> None:
    written = B.write_bvh(tmp_path / "a.bvh", smpl_motions["short_spin"], fps=30, units="cm")
    read = B.read_bvh(tmp_path / "a.bvh")
    assert read.names == written.names
    assert read.parents == written.parents
    assert read.channels == written.channels
    assert read.frame_time == pytest.approx(1 / 30, abs=1e-6)
    np.testing.assert_allclose(read.offsets, written.offsets, atol=5e-7, rtol=0)
    np.testing.assert_allclose(read.motion, written.motion, atol=5e-7, rtol=0)
    assert read.end_sites.keys() == written.end_sites.keys()
    for k, v in written.end_sites.items():
        np.testing.assert_allclose(read.end_sites[k], v, atol=5e-7, rtol=0)
    # the parents in file order are the SMPL tree's
    name_parent = {n: (read.names[p] if p >= 0 else None) for n, p in zip(read.names, read.parents)}
    for j, name in enumerate(JOINT_NAMES):
        assert name_parent[name] == (JOINT_NAMES[PARENTS[j]] if PARENTS[j] >= 0 else None)


def test_format_bvh_reorders_a_non_depth_first_motion(smpl_motions) -> None:
    bvh = B.joints_to_bvh(smpl_motions["walk_turn"][:5])
    index_order = B._reorder(bvh, [bvh.names.index(n) for n in JOINT_NAMES])
    assert index_order.names == JOINT_NAMES
    assert B.format_bvh(index_order) == B.format_bvh(bvh)


# --------------------------------------------------------------------------------------------
# round trip joints -> BVH -> FK


def test_round_trip_is_exact_on_rigid_smpl_motions(tmp_path: Path, smpl_motions) -> None:
    for name, joints in smpl_motions.items():
        fk, _ = _round_trip(tmp_path, joints)
        err = np.linalg.norm(fk - joints, axis=-1)
        # 6-decimal text: well under 0.1 mm
        assert err.max() < 1e-5, f"{name}: max error {err.max() * 100:.5f} cm"


def test_round_trip_in_centimetres_and_from_torch(tmp_path: Path, smpl_motions) -> None:
    joints = smpl_motions["sway_arms"]
    fk, _ = _round_trip(tmp_path, torch.from_numpy(joints).float(), units="cm")
    err = np.linalg.norm(fk / 100 - joints, axis=-1)
    assert err.max() < 1e-5, f"max error {err.max() * 100:.5f} cm"


def test_round_trip_on_noisy_motions_stays_under_2cm(tmp_path: Path, smpl_motions) -> None:
    """A generated motion's bones stretch from frame to frame; 1 cm of joint noise stands in."""
    gen = np.random.default_rng(0)
    for name, joints in smpl_motions.items():
        noisy = joints + gen.normal(0, 0.01, joints.shape)
        fk, _ = _round_trip(tmp_path, noisy)
        err = np.linalg.norm(fk - noisy, axis=-1)
        assert err.mean() < 0.02, f"{name}: mean error {err.mean() * 100:.2f} cm"
        assert err.max() < 0.10, f"{name}: max error {err.max() * 100:.2f} cm"
        # the fit does better than the stretch it cannot represent
        assert err.mean() < B.bone_length_stats(noisy).std[1:].mean() * 1.5


def test_round_trip_on_hml263_fixture_features(tmp_path: Path, hml_features) -> None:
    """Random 263 features give bones that stretch by ~10 cm, so the error is large; check what
    the solver promises instead: fixed mean bone lengths, and every joint below a single-child
    joint on the ray from where its parent was placed towards its target."""
    lengths_ok = 0
    for name, features in hml_features.items():
        joints = recover_from_ric(features).astype(np.float64)
        fk, written = _round_trip(tmp_path, features)
        assert B.format_bvh(written) == B.format_bvh(B.joints_to_bvh(joints))
        stats = B.bone_length_stats(joints)
        fk_bones = np.linalg.norm(fk[:, 1:] - fk[:, PARENTS[1:]], axis=-1)  # (T, 21)
        np.testing.assert_allclose(
            fk_bones, np.broadcast_to(stats.mean[1:], fk_bones.shape), atol=2e-6
        )
        lengths_ok += 1
        for j in range(1, 22):
            p = PARENTS[j]
            if p in (0, 9):  # children of the three-child joints: least-squares fit
                continue
            aim = joints[:, j] - fk[:, p]
            expected = fk[:, p] + stats.mean[j] * aim / np.linalg.norm(aim, axis=-1, keepdims=True)
            np.testing.assert_allclose(fk[:, j], expected, atol=2e-5, err_msg=f"{name} joint {j}")
    assert lengths_ok == len(hml_features)


def test_euler_curves_are_continuous_through_a_spin(smpl_motions) -> None:
    # the root turns through +-90 and 180 degrees of heading
    bvh = B.joints_to_bvh(smpl_motions["short_spin"])
    jumps = np.abs(np.diff(bvh.motion[:, 3:], axis=0))
    assert jumps.max() < 20.0, f"largest frame-to-frame change {jumps.max():.1f} degrees"


def test_bone_length_stats_against_numpy(smpl_motions) -> None:
    joints = smpl_motions["walk_turn"] + np.random.default_rng(1).normal(0, 0.01, (90, 22, 3))
    lengths = np.linalg.norm(joints[:, 1:] - joints[:, PARENTS[1:]], axis=-1)
    stats = B.bone_length_stats(joints)
    np.testing.assert_allclose(stats.mean[1:], lengths.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.std[1:], lengths.std(0), rtol=1e-9)
    np.testing.assert_allclose(stats.max[1:], lengths.max(0), rtol=1e-12)
    assert stats.mean[0] == 0


# --------------------------------------------------------------------------------------------
# other BVH files and errors


HAND_WRITTEN = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Arm
  {
    OFFSET 1 0 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    End Site
    {
      OFFSET 0 -1 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.0333333
1 2 3 0 0 0 0 0 0
1 2 3 0 0 90 0 0 90
"""


def test_forward_kinematics_of_a_hand_written_file() -> None:
    bvh = B.parse_bvh(HAND_WRITTEN)
    assert bvh.names == ["Hips", "Arm"] and bvh.parents == [-1, 0]
    joints = B.bvh_forward_kinematics(bvh)
    # frame 1: the root turns 90 degrees about y, so the +x offset points to -z
    np.testing.assert_allclose(joints[0], [[1, 2, 3], [2, 2, 3]], atol=1e-12)
    np.testing.assert_allclose(joints[1], [[1, 2, 3], [1, 2, 2]], atol=1e-12)
    np.testing.assert_allclose(B.bvh_forward_kinematics(bvh, names=["Arm"]), joints[:, 1:], atol=0)
    named_end = B.parse_bvh(HAND_WRITTEN.replace("End Site", "End Site Fingertip"))
    np.testing.assert_array_equal(named_end.end_sites[1], [0, -1, 0])


def test_parse_errors_are_typed(tmp_path: Path) -> None:
    with pytest.raises(ArtifactFormatError, match="numbers"):
        B.parse_bvh(HAND_WRITTEN.rsplit("\n", 2)[0])  # a frame cut short
    with pytest.raises(ArtifactFormatError, match="HIERARCHY"):
        B.parse_bvh("MOTION\nFrames: 0\n")
    with pytest.raises(ArtifactFormatError, match="unknown channels"):
        B.parse_bvh(
            HAND_WRITTEN.replace("Zrotation Xrotation Yrotation", "Zrotation Xrot Yrotation")
        )
    with pytest.raises(ArtifactNotFoundError):
        B.read_bvh(tmp_path / "missing.bvh")
    with pytest.raises(InvalidInputError, match="not in the BVH hierarchy"):
        B.bvh_forward_kinematics(B.parse_bvh(HAND_WRITTEN), names=["Spine"])


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 22)),
        np.zeros((10, 21, 3)),
        np.zeros((0, 22, 3)),
        np.zeros((22, 3)),
        np.zeros((2, 10, 22, 3)),
    ],
    ids=["2d-not-263", "21-joints", "no-frames", "one-pose-no-T", "batched"],
)
def test_bad_shapes_name_the_expected_ones(tmp_path: Path, bad: np.ndarray) -> None:
    with pytest.raises(InvalidInputError, match=r"\(T, 263\).*\(T, 22, 3\)"):
        B.write_bvh(tmp_path / "x.bvh", bad)
    assert list(tmp_path.iterdir()) == []


def test_other_bad_inputs(tmp_path: Path, smpl_motions) -> None:
    joints = smpl_motions["walk_turn"][:4]
    with pytest.raises(InvalidInputError, match="NaN"):
        B.write_bvh(tmp_path / "x.bvh", np.full((4, 22, 3), np.nan))
    with pytest.raises(InvalidInputError, match="units"):
        B.write_bvh(tmp_path / "x.bvh", joints, units="mm")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="fps"):
        B.write_bvh(tmp_path / "x.bvh", joints, fps=0)
    with pytest.raises(InvalidInputError, match="names"):
        B.write_bvh(tmp_path / "x.bvh", joints, names=["left hip"] * 22)
    with pytest.raises(InvalidInputError, match="numpy array or torch tensor"):
        B.write_bvh(tmp_path / "x.bvh", joints.tolist())  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_custom_names_are_written(tmp_path: Path, smpl_motions) -> None:
    names = [f"J{k:02d}" for k in range(22)]
    B.write_bvh(tmp_path / "x.bvh", smpl_motions["walk_turn"][:3], names=names)
    read = B.read_bvh(tmp_path / "x.bvh")
    assert sorted(read.names) == names and read.names[:3] == ["J00", "J01", "J04"]


def test_failed_write_leaves_nothing_behind(tmp_path: Path, smpl_motions, monkeypatch) -> None:
    target = tmp_path / "out" / "x.bvh"
    B.write_bvh(target, smpl_motions["walk_turn"][:3])
    before = target.read_bytes()

    def broken(_text: str, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("hftrainer_mogents.utils.io.os.fsync", broken)
    with pytest.raises(OSError, match="disk full"):
        B.write_bvh(target, smpl_motions["walk_turn"][:6])
    assert target.read_bytes() == before  # the old file is intact
    assert [p.name for p in target.parent.iterdir()] == ["x.bvh"]
