"""motion.converters: edge choice (host, other plugins, ours) and chained conversion."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import require_fixture

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.motion import converters, hml263, ms272, smpl135
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
        converters.find_path("ms272", "hml263", edges)
    assert converters.find_path("ms272", "ms272", edges) == []


def test_plugin_edges_resolve() -> None:
    for edge in converters.available_edges(specs=_ours(), use_host=False).values():
        assert callable(edge.function())
