"""motion.converters: edge choice (host, other plugins, ours) and chained conversion."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_fixture

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.motion import converters, hml263, ms272, rotations, smpl135
from hftrainer_mogents.motion.resample import resample_linear
from hftrainer_mogents.zoo import plugin
from hftrainer_mogents.zoo.specs import ConverterSpec


def _ours() -> list[ConverterSpec]:
    return [ConverterSpec(s.src, s.dst, s.fn, plugin=plugin.PLUGIN_NAME) for s in plugin.CONVERTERS]


def double(motion, *, factor: float = 2.0):
    """A converter of a pretend plugin."""
    return np.asarray(motion) * factor


def test_chain_hml263_to_ms272_with_our_edges(fixtures_dir: Path) -> None:
    folder = require_fixture(fixtures_dir / "ms272_tiny")
    with np.load(folder / "motions" / "short_spin.npz") as data:
        feats = hml263.joints_to_hml263(data["fk_joints22_20fps"])
    edges = converters.available_edges(specs=_ours(), use_host=False)
    assert converters.describe_path("hml263", "ms272", edges) == [
        "hml263->smpl135: plugin:mogents (hftrainer_mogents.motion.smpl135:hml263_to_smpl135)",
        "smpl135->ms272: plugin:mogents (hftrainer_mogents.motion.ms272:smpl135_to_ms272)",
    ]
    cfg = smpl135.IKConfig(iters=10)
    out = converters.convert(
        feats, "hml263", "ms272", edges=edges, model_dir=folder / "smpl", config=cfg
    )
    # the same as calling the two edges by hand (kwargs reach only the functions naming them)
    m135 = smpl135.hml263_to_smpl135(feats, model_dir=folder / "smpl", config=cfg)
    np.testing.assert_allclose(out, ms272.smpl135_to_ms272(m135, model_dir=folder / "smpl"))
    assert out.shape == (round(len(feats) * 1.5), 272)
    joints = converters.convert(feats, "hml263", "joints22", edges=edges)
    np.testing.assert_allclose(joints, hml263.recover_from_ric(feats))


def test_other_plugin_beats_ours_and_host_beats_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = [
        *_ours(),
        ConverterSpec("smpl135", "ms272", f"{__name__}:double", plugin="other"),
    ]
    edges = converters.available_edges(specs=specs, use_host=False)
    assert edges[("smpl135", "ms272")].provider == "plugin:other"
    assert edges[("hml263", "smpl135")].provider == "plugin:mogents"
    out = converters.convert(np.ones((3, 135)), "smpl135", "ms272", edges=edges, factor=3.0)
    np.testing.assert_array_equal(out, np.full((3, 135), 3.0))

    # a pretend host that ships the zoo's motion135_to_272
    pkg = tmp_path / "hftrainer" / "motion" / "representation"
    pkg.mkdir(parents=True)
    for folder in (pkg.parent.parent, pkg.parent, pkg):
        (folder / "__init__.py").write_text("")
    (pkg / "motion272.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            def motion135_to_272(m135, rotation_space="local", skeleton="canon272"):
                return np.zeros((len(m135), 272)) + 7
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "hftrainer" or m.startswith("hftrainer.")]:
        monkeypatch.delitem(sys.modules, name)
    edges = converters.available_edges(specs=specs)
    assert edges[("smpl135", "ms272")].provider == "host"
    assert edges[("hml263", "smpl135")].provider == "plugin:mogents"  # the host lacks it here
    out = converters.convert(np.ones((4, 135)), "smpl135", "ms272", edges=edges)
    assert out.shape == (4, 272) and out.dtype == np.float32 and (out == 7).all()


def test_no_chain_lists_the_known_edges() -> None:
    edges = converters.available_edges(specs=_ours(), use_host=False)
    with pytest.raises(InvalidInputError, match=r"known edges: hml263->joints22"):
        converters.find_path("ms272", "motion_138", edges)  # in the registry, no edge reaches it
    assert converters.find_path("ms272", "ms272", edges) == []
    assert converters.find_path("272", "MotionStreamer_272", edges) == []  # aliases: one node


def test_unknown_names_get_the_registry_error_and_variants_convert() -> None:
    """An unknown name is the registry's error listing the known names (it was "no converter
    chain"); the zoo successor's spelling "humanml3d-263" is hml263."""
    from hftrainer_mogents.errors import UnknownRepresentationError

    edges = converters.available_edges(specs=_ours(), use_host=False)
    for src, dst in [("humanml3d-999", "ms272"), ("hml263", "smpl_85")]:
        with pytest.raises(UnknownRepresentationError, match=r"known: motion_135, .*joints22"):
            converters.convert(np.zeros((8, 263), np.float32), src, dst, edges=edges)
    path = converters.find_path("humanml3d-263", "joints-22", edges)
    assert [(e.src, e.dst) for e in path] == [("hml263", "joints22")]
    feats = np.zeros((8, 263), np.float32)
    np.testing.assert_array_equal(
        converters.convert(feats, "humanml3d-263", "joints_22", edges=edges),
        converters.convert(feats, "hml263", "joints22", edges=edges),
    )


def test_edges_out_of_ms272_are_registered() -> None:
    edges = converters.available_edges(specs=_ours(), use_host=False)
    assert converters.describe_path("ms272", "hml263", edges) == [
        "ms272->hml263: plugin:mogents (hftrainer_mogents.motion.ms272:ms272_to_hml263)"
    ]
    assert converters.describe_path("ms272", "joints22", edges) == [
        "ms272->joints22: plugin:mogents (hftrainer_mogents.motion.ms272:ms272_to_joints22)"
    ]
    # the zoo's name of SMPL motion_135 and ours are one node
    assert converters.describe_path("h3d272", "motion_135", edges) == [
        "ms272->smpl135: plugin:mogents (hftrainer_mogents.motion.ms272:ms272_to_smpl135)"
    ]
    # and the edges are in the plugin's hook, which is what the zoo reads
    assert {"ms272->joints22", "ms272->smpl135", "ms272->hml263"} <= {
        s.name for s in plugin.hftrainer_converters()
    }


def _bone_directions(joints: np.ndarray) -> np.ndarray:
    bones = joints[:, 1:] - joints[:, hml263.PARENTS[1:]]
    return bones / np.linalg.norm(bones, axis=-1, keepdims=True)


@pytest.mark.parametrize("name", ["walk_turn", "sway_arms", "short_spin"])
def test_convert_ms272_to_hml263_on_the_fixture_motions(fixtures_dir: Path, name: str) -> None:
    folder = require_fixture(fixtures_dir / "ms272_tiny")
    with np.load(folder / "motions" / f"{name}.npz") as data:
        x, upstream_joints, joints20 = (
            data["ms272"],
            data["recovered_joints22"],
            data["fk_joints22_20fps"],
        )
    edges = converters.available_edges(specs=_ours(), use_host=False)
    out = converters.convert(x, "ms272", "hml263", edges=edges)
    # 30 fps -> 20 fps on the bridge's grid, then HumanML3D drops the last frame
    assert out.shape == (round(len(x) * 20 / 30) - 1, 263) and out.dtype == np.float32
    # the same as encoding the joints MotionStreamer's own code recovers, resampled
    expected = hml263.joints_to_hml263(resample_linear(upstream_joints.astype(np.float64), 30, 20))
    np.testing.assert_allclose(out, expected, atol=1e-4)
    # the exact grid lands on the fixture's own 20 fps frames (k * 1.5): the recovered 263
    # joints have the fixture's bone directions, up to one global rotation (HumanML3D faces +z)
    exact = converters.convert(x, "272", "humanml263", edges=edges, resample_mode="exact")
    assert exact.shape == (len(joints20) - 1, 263)
    got = _bone_directions(hml263.recover_from_ric(exact.astype(np.float64)))
    want = _bone_directions(joints20[:-1].astype(np.float64))
    rot = rotations.kabsch_rotation(
        torch.from_numpy(want.reshape(-1, 3)), torch.from_numpy(got.reshape(-1, 3))
    ).numpy()
    np.testing.assert_allclose(want @ rot.T, got, atol=1e-4)
    np.testing.assert_allclose(rot[1], [0, 1, 0], atol=1e-4)  # a yaw: y stays up


def test_convert_ms272_to_joints22_and_motion_135(fixtures_dir: Path) -> None:
    folder = require_fixture(fixtures_dir / "ms272_tiny")
    with np.load(folder / "motions" / "walk_turn.npz") as data:
        x, local_rotmats = data["ms272"], data["local_rotmats22"]
    edges = converters.available_edges(specs=_ours(), use_host=False)
    joints = converters.convert(x, "ms272", "joints22", edges=edges)
    recovered = ms272.recover_joints_272(torch.from_numpy(x)).numpy()
    assert joints.shape == (len(x), 22, 3)  # same frame rate
    np.testing.assert_allclose(joints, recovered, atol=1e-6)

    # the fixture's 272 was made on the SMPL-neutral skeleton (MotionStreamer's own)
    m135 = converters.convert(
        x, "ms272", "motion_135", edges=edges, skeleton="smpl", model_dir=folder / "smpl"
    )
    assert m135.shape == (len(x), 135) and m135.dtype == np.float32
    # on the zoo's canon272 skeleton (the default both ways) 272 -> 135 -> 272 is the identity
    canon = ms272.smpl135_to_ms272(m135)
    again = ms272.smpl135_to_ms272(converters.convert(canon, "ms272", "motion_135", edges=edges))
    np.testing.assert_allclose(again, canon, atol=1e-5)
    # forward kinematics of the motion_135 puts the joints where the 272 vector has them
    rest = torch.from_numpy(smpl135.load_smpl_model(folder / "smpl").rest_joints()[:22])
    fk = smpl135.smpl135_joints(torch.from_numpy(m135).double(), rest.double()).numpy()
    np.testing.assert_allclose(fk, recovered, atol=1e-5)
    # the body rotations are the fixture's SMPL parameters (the root lost its frame-0 heading)
    _, rot = smpl135.motion135_to_smpl_params(torch.from_numpy(m135).double())
    np.testing.assert_allclose(rot[:, 1:].numpy(), local_rotmats[:, 1:], atol=1e-5)


def test_other_plugins_zoo_names_meet_ours() -> None:
    specs = [*_ours(), ConverterSpec("272", "motion_135", f"{__name__}:double", plugin="other")]
    edges = converters.available_edges(specs=specs, use_host=False)
    assert edges[("ms272", "smpl135")].provider == "plugin:other"
    out = converters.convert(np.ones((2, 272)), "ms272", "smpl135", edges=edges)
    np.testing.assert_array_equal(out, np.full((2, 272), 2.0))


def test_ms272_edges_refuse_bad_input() -> None:
    with pytest.raises(InvalidInputError, match=r"one MotionStreamer-272 clip of shape \(T, 272\)"):
        ms272.ms272_to_joints22(np.zeros((4, 263)))
    with pytest.raises(InvalidInputError, match=r"1 frames of 272 features, at least 2 needed"):
        ms272.ms272_to_hml263(np.zeros((1, 272)))
    bad = np.zeros((4, 272))
    bad[2, 9] = np.nan
    with pytest.raises(InvalidInputError, match=r"must be finite"):
        ms272.ms272_to_joints22(bad)


def test_plugin_edges_resolve() -> None:
    for edge in converters.available_edges(specs=_ours(), use_host=False).values():
        assert callable(edge.function())
