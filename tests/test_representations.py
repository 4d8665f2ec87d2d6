"""motion.representations: the zoo's registry, and field boundaries equal to what our code reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, require_fixture

from hftrainer_mogents.errors import InvalidInputError, UnknownRepresentationError
from hftrainer_mogents.motion import (
    get_spec,
    hml263,
    infer_spec_from_dim,
    list_specs,
    ms272,
    representations,
    rotations,
    smpl135,
)
from hftrainer_mogents.motion.representations import FieldSpec, MotionRepr

# the zoo's registry (zoo_host_interfaces.md section 5): name -> (aliases, rot6d convention)
ZOO = {
    "motion_135": (("135", "smpl22_135", "hymotion_m2m"), "row"),
    "motion_138": (("138",), "column"),
    "motion_198": (("198",), "row"),
    "motion_147": (("147",), "row"),
    "motion_151": (("151",), "row"),
    "motion_201": (("201",), "row"),
    "hml263": (("263", "humanml263", "humanml3d_263", "h3d263"), "column"),
    "ms272": (("272", "motionstreamer_272", "humanml3d_272", "h3d272", "gotozero_272"), "row"),
    "interhuman_262": (("262",), "row"),
}


def _motion(fixtures_dir: Path, name: str) -> dict[str, np.ndarray]:
    folder = require_fixture(fixtures_dir / "ms272_tiny")
    with np.load(folder / "motions" / f"{name}.npz") as data:
        return dict(data)


# ---------------------------------------------------------------------------------------------
# the registry


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_names_aliases_and_conventions(name: str) -> None:
    aliases, convention = ZOO[name]
    spec = get_spec(name)
    assert spec.name == name
    assert spec.rot6d_convention == convention
    assert spec.dim == int(name.rsplit("_", 1)[-1][-3:])  # every zoo name ends in its width
    for alias in aliases:
        assert get_spec(alias) is spec
    assert get_spec(f"  {name.upper()} ") is spec  # lower-cased and stripped, as the zoo's


def test_frame_rates_and_joints() -> None:
    assert (get_spec("hml263").fps, get_spec("ms272").fps, get_spec("motion_135").fps) == (
        20,
        30,
        30,
    )
    assert get_spec("joints22").fps is None  # keeps the rate of what it came from
    assert {s.num_joints for s in list_specs()} == {22}


def test_list_specs_once_each_and_every_alias_resolves() -> None:
    specs = list_specs()
    assert len({s.name for s in specs}) == len(specs) == 10
    assert [s.name for s in specs][:9] == [
        "motion_135",
        "motion_138",
        "motion_198",
        "motion_147",
        "motion_151",
        "motion_201",
        "hml263",
        "ms272",
        "interhuman_262",
    ]
    for spec in specs:
        for key in (spec.name, *spec.aliases):
            assert representations.REGISTRY[key] is spec
        assert sum(f.size for f in spec.fields) == spec.dim
    assert len(representations.REGISTRY) == sum(1 + len(s.aliases) for s in specs)


def test_unknown_name_is_a_typed_key_error() -> None:
    with pytest.raises(KeyError):
        get_spec("smpl_85")
    with pytest.raises(UnknownRepresentationError) as err:
        get_spec("smpl_85")
    message = str(err.value)
    assert message.startswith("unknown motion representation 'smpl_85'; known: motion_135, ")
    assert "joints22" in message and "humanml263" in message


def test_infer_spec_from_dim() -> None:
    for dim, name in [(263, "hml263"), (272, "ms272"), (135, "motion_135"), (66, "joints22")]:
        assert infer_spec_from_dim(dim).name == name
    for spec in list_specs():
        assert infer_spec_from_dim(spec.dim) is spec  # widths are unique today
    with pytest.raises(UnknownRepresentationError, match=r"no motion representation is 100 "):
        infer_spec_from_dim(100)


def test_infer_spec_from_dim_refuses_an_ambiguous_width(monkeypatch: pytest.MonkeyPatch) -> None:
    twin = MotionRepr("twin", 263, 20, "x", 22, None, None, (FieldSpec("all", 0, 263),))
    monkeypatch.setattr(representations, "_ALL", (*list_specs(), twin))
    with pytest.raises(KeyError, match=r"263 channels fit \['hml263', 'twin'\]; name the"):
        infer_spec_from_dim(263)


def test_fields_must_tile_the_vector() -> None:
    with pytest.raises(InvalidInputError, match=r"bad: field sizes sum to 5 but dim=6"):
        MotionRepr("bad", 6, 30, "x", 1, None, None, (FieldSpec("a", 0, 5),))
    with pytest.raises(InvalidInputError, match=r"field 'b' is \[3:6\), expected it to start at 2"):
        MotionRepr("gap", 6, 30, "x", 1, None, None, (FieldSpec("a", 0, 2), FieldSpec("b", 3, 6)))
    with pytest.raises(UnknownRepresentationError, match=r"hml263 has no field 'rot'; its fields"):
        get_spec("hml263").field("rot")


def test_describe_lists_every_block() -> None:
    text = get_spec("ms272").describe()
    assert text.splitlines()[0].startswith("ms272: dim=272, fps=30, body=smpl_22, joints=22")
    assert "[140:272] joint_rot6d" in text


def test_importable_from_motion_without_torch() -> None:
    code = (
        "import sys; from hftrainer_mogents.motion import get_spec, list_specs, "
        "infer_spec_from_dim; assert get_spec('272').dim == 272; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


@pytest.mark.parametrize("name", ["hml263", "ms272", "motion_135", "motion_198", "motion_201"])
def test_rot6d_layout_names_a_rotations_function(name: str) -> None:
    spec = get_spec(name)
    encode = getattr(rotations, f"matrix_to_{spec.rot6d_layout}")
    decode = getattr(rotations, f"{spec.rot6d_layout}_to_matrix")
    rot = rotations.axis_angle_to_matrix(torch.randn(5, 3, dtype=torch.float64))
    torch.testing.assert_close(decode(encode(rot)), rot)


# ---------------------------------------------------------------------------------------------
# the field boundaries are the slices our code reads


def test_hml263_fields_are_the_module_slices() -> None:
    spec = get_spec("hml263")
    assert [f.as_slice() for f in spec.fields] == [
        hml263.ROOT_ROT_VEL,
        hml263.ROOT_LIN_VEL,
        hml263.ROOT_Y,
        hml263.RIC,
        hml263.ROT,
        hml263.LOCAL_VEL,
        hml263.FOOT_CONTACT,
    ]
    assert spec.dim == hml263.DIM_HML263 and spec.fps == hml263.FPS


def test_hml263_blocks_read_back_through_our_functions() -> None:
    spec = get_spec("hml263")
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(3, 263, dtype=torch.float64)
    x[:, spec.slice("root_y")] = 0.9
    x[1, spec.slice("root_rot_vel")] = 0.25  # half the yaw step from frame 1 to frame 2
    x[0, spec.slice("root_lin_vel")] = torch.tensor([0.1, -0.2], dtype=torch.float64)
    ric = torch.randn(3, 21, 3, generator=gen, dtype=torch.float64)
    x[:, spec.slice("ric_data")] = ric.flatten(-2)
    hip = rotations.axis_angle_to_matrix(torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64))
    local = torch.eye(3, dtype=torch.float64).repeat(21, 1, 1)
    local[0] = hip  # joint 1 (left hip): its global rotation is the root yaw times this
    x[:, spec.slice("rot_data")] = rotations.matrix_to_rot6d_cols(local).flatten()

    quat, pos = hml263.recover_root_rot_pos(x)
    assert torch.equal(pos[:, 1], torch.full((3,), 0.9, dtype=torch.float64))
    torch.testing.assert_close(quat[2], torch.tensor([np.cos(0.25), 0, np.sin(0.25), 0]).double())
    # frame 0's velocity, in frame 1's heading frame (no yaw yet): frame 1's root xz
    torch.testing.assert_close(pos[1, [0, 2]], torch.tensor([0.1, -0.2], dtype=torch.float64))
    joints = hml263.recover_from_ric(x)
    torch.testing.assert_close(joints[0, 1:], ric[0])  # frame 0: no yaw, root xz at the origin
    glob = hml263.recover_global_bone_rotations(x)
    torch.testing.assert_close(glob[0, 1], hip)


def test_hml263_velocity_and_contact_blocks(fixtures_dir: Path) -> None:
    # joints_to_hml263's output, read back: the local velocities are the recovered joints'
    # differences in the heading frame, the contacts their thresholded squared speeds
    spec = get_spec("hml263")
    feats = torch.from_numpy(
        hml263.joints_to_hml263(_motion(fixtures_dir, "walk_turn")["fk_joints22_20fps"])
    )
    feats = feats.double()
    quat, _ = hml263.recover_root_rot_pos(feats)
    joints = hml263.recover_from_ric(feats)  # (T', 22, 3)
    step = joints[1:] - joints[:-1]  # (T'-1, 22, 3)
    local_vel = rotations.quat_apply(quat[:-1, None, :].expand(-1, 22, -1), step)
    stored = feats[:-1, spec.slice("local_velocity")].reshape(-1, 22, 3)
    torch.testing.assert_close(stored, local_vel, atol=1e-4, rtol=0)
    speed2 = (step**2).sum(-1)[:, hml263.FOOT_JOINTS_LEFT + hml263.FOOT_JOINTS_RIGHT]
    contacts = feats[:-1, spec.slice("foot_contact")]
    clear = (speed2 - 0.002).abs() > 1e-5  # float32 features: skip speeds on the threshold
    assert torch.equal(contacts[clear], (speed2 < 0.002).double()[clear])
    assert set(contacts.unique().tolist()) <= {0.0, 1.0}


def test_ms272_fields_are_the_module_slices() -> None:
    spec = get_spec("ms272")
    assert tuple(f.as_slice() for f in spec.fields) == ms272.STD_GROUPS
    assert (spec.dim, spec.fps) == (ms272.DIM_MS272, ms272.FPS)
    assert [spec.slice(n) for n in ("root_lin_vel", "heading_delta", "joint_pos")] == [
        ms272.ROOT_VEL,
        ms272.HEADING_VEL,
        ms272.POSITIONS,
    ]
    assert [spec.slice(n) for n in ("joint_vel", "joint_rot6d")] == [
        ms272.VELOCITIES,
        ms272.ROTATIONS,
    ]


def test_ms272_blocks_against_the_upstream_fixture(fixtures_dir: Path) -> None:
    # the fixture's 272 vectors and recovered joints come from MotionStreamer's own code
    spec = get_spec("ms272")
    data = _motion(fixtures_dir, "sway_arms")
    x = data["ms272"]
    np.testing.assert_array_equal(x[0, spec.slice("heading_delta")], [1, 0, 0, 0, 1, 0])
    assert not x[0, spec.slice("root_lin_vel")].any() and not x[0, spec.slice("joint_vel")].any()
    pos = x[:, spec.slice("joint_pos")]
    np.testing.assert_allclose(x[1:, spec.slice("joint_vel")], pos[1:] - pos[:-1], atol=1e-9)
    # frame 0 has no heading and its root at the origin: the stored positions are the joints
    rec = data["recovered_joints22"]
    np.testing.assert_allclose(pos[0].reshape(22, 3), rec[0], atol=1e-6)
    # frame 1's root moved by frame 1's stored velocity (frame 0's heading frame is the world's)
    np.testing.assert_allclose(x[1, spec.slice("root_lin_vel")], rec[1, 0, [0, 2]], atol=1e-6)
    # joints 1..21: the SMPL parent-relative rotations, as stored by the layout the spec names
    d6 = torch.from_numpy(x[:, spec.slice("joint_rot6d")]).reshape(-1, 22, 6)
    rot = getattr(rotations, f"{spec.rot6d_layout}_to_matrix")(d6)
    np.testing.assert_allclose(rot[:, 1:].numpy(), data["local_rotmats22"][:, 1:], atol=1e-6)
    # and our own recovery reads the same blocks
    ours = ms272.recover_joints_272(torch.from_numpy(x))
    np.testing.assert_allclose(ours.numpy(), rec, atol=1e-5)


def test_motion_135_fields(fixtures_dir: Path) -> None:
    spec = get_spec("motion_135")
    assert spec.dim == smpl135.DIM_SMPL135 and spec.fps == smpl135.FPS
    data = _motion(fixtures_dir, "walk_turn")
    # the fixture's motion_135 (the zoo's layout, built from the SMPL parameters upstream)
    m135 = data["motion135_cols"]
    np.testing.assert_allclose(m135[:, spec.slice("transl")], data["smpl_transl"], atol=1e-6)
    d6 = torch.from_numpy(m135[:, spec.slice("rot6d")]).reshape(-1, 22, 6)
    rot = getattr(rotations, f"{spec.rot6d_layout}_to_matrix")(d6)
    np.testing.assert_allclose(rot.numpy(), data["local_rotmats22"], atol=1e-6)
    # our packing writes the same blocks, our unpacking reads them
    transl = torch.from_numpy(data["smpl_transl"]).double()
    rots = torch.from_numpy(data["local_rotmats22"]).double()
    ours = smpl135.smpl_params_to_motion135(transl, rots)
    np.testing.assert_allclose(ours.numpy(), m135, atol=1e-6)
    back_transl, back_rot = smpl135.motion135_to_smpl_params(ours)
    torch.testing.assert_close(back_transl, ours[:, spec.slice("transl")])
    torch.testing.assert_close(back_rot, rots)


def test_joints22_is_flattened_joint_positions(fixtures_dir: Path) -> None:
    spec = get_spec("joints")
    joints = _motion(fixtures_dir, "short_spin")["recovered_joints22"]
    flat = joints.reshape(len(joints), -1)
    assert infer_spec_from_dim(flat.shape[-1]) is spec
    np.testing.assert_array_equal(flat[:, spec.slice("positions")].reshape(-1, 22, 3), joints)


def test_separator_and_case_variants_name_one_representation() -> None:
    """The zoo's successor writes "humanml3d-263": '-'/'_'/space/case variants of a name or an
    alias are accepted where they name one representation; none is ambiguous today."""
    for variant, name in [
        ("humanml3d-263", "hml263"),
        ("HumanML3D_263", "hml263"),
        ("humanml3d 263", "hml263"),
        ("humanml3d263", "hml263"),
        ("motion-135", "motion_135"),
        ("MotionStreamer-272", "ms272"),
        ("humanml3d-272", "ms272"),
        ("joints-22", "joints22"),
        ("interhuman-262", "interhuman_262"),
    ]:
        assert get_spec(variant).name == name, variant
    assert None not in representations._SPELLINGS.values()
    with pytest.raises(UnknownRepresentationError, match="unknown motion representation 'hml-999'"):
        get_spec("hml-999")
