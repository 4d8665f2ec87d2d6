"""convert.smpl_model: official (chumpy) SMPL pickles read and converted without chumpy."""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from click.testing import CliRunner
from conftest import require_fixture

from hftrainer_mogents.cli import cli
from hftrainer_mogents.cli.convert import smpl_model_main
from hftrainer_mogents.convert import smpl_model
from hftrainer_mogents.errors import ArtifactFormatError
from hftrainer_mogents.motion import smpl135


class _Ch:
    """Stands in for ``chumpy.ch.Ch`` when writing a file: a leaf keeps its value in ``x``."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x
        self._cache = {"r": x}

    def __getstate__(self) -> dict:
        return {"x": self.x, "_dirty_vars": set(), "_itr": None}


@pytest.fixture
def fake_chumpy(monkeypatch: pytest.MonkeyPatch) -> type:
    """Make pickle record ``_Ch`` as ``chumpy.ch.Ch`` (chumpy itself is not installed)."""
    module = types.ModuleType("chumpy.ch")
    _Ch.__module__ = "chumpy.ch"
    _Ch.__qualname__ = "Ch"
    module.Ch = _Ch  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", module)
    return _Ch


@pytest.fixture
def arrays(fixtures_dir: Path) -> dict[str, np.ndarray]:
    path = require_fixture(fixtures_dir / "ms272_tiny" / "smpl" / "SMPL_NEUTRAL.npz")
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("protocol", [0, 2], ids=["protocol0", "protocol2"])
def test_chumpy_pickle_is_refused_at_run_time_and_converted_safely(
    fake_chumpy: type, arrays: dict, tmp_path: Path, protocol: int
) -> None:
    official = dict(arrays)
    official["v_template"] = fake_chumpy(arrays["v_template"])
    official["shapedirs"] = fake_chumpy(arrays["shapedirs"])
    official["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
    official["bs_style"] = "lbs"
    src = tmp_path / "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl"
    src.write_bytes(pickle.dumps(official, protocol=protocol))

    with pytest.raises(ArtifactFormatError, match="chumpy pickle") as err:
        smpl135.load_smpl_model(src)
    assert f"mogents convert-smpl-model {src}" in str(err.value)

    dst = tmp_path / "out" / "SMPL_NEUTRAL.npz"
    assert smpl_model_main([str(src), str(dst)]) == 0
    with np.load(dst, allow_pickle=False) as data:
        for key in smpl_model.SMPL_KEYS:
            np.testing.assert_array_equal(data[key], arrays[key])
    # the mogents command is the same job: the same file
    again = tmp_path / "again" / "SMPL_NEUTRAL.npz"
    result = CliRunner().invoke(cli, ["convert-smpl-model", str(src), str(again)])
    assert result.exit_code == 0, result.output
    assert f"wrote {again}" in result.output
    with np.load(dst, allow_pickle=False) as first, np.load(again, allow_pickle=False) as second:
        assert sorted(first.files) == sorted(second.files)
        for key in first.files:
            np.testing.assert_array_equal(first[key], second[key])
    converted = smpl135.load_smpl_model(tmp_path / "out")
    np.testing.assert_array_equal(converted.j_regressor, arrays["J_regressor"])


def test_pickle_naming_other_code_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    src = tmp_path / "SMPL_NEUTRAL.pkl"
    src.write_bytes(pickle.dumps({"v_template": Evil()}))
    for allow in (False, True):
        with pytest.raises(ArtifactFormatError, match="not allowed"):
            smpl_model.read_smpl_pickle(src, allow_chumpy=allow)


def test_the_converter_reads_with_the_body_models_reader() -> None:
    """One SMPL pickle reader, next to the body model; the converter's names are re-exports."""
    from hftrainer_mogents.motion.smpl135 import body_model

    assert smpl_model.read_smpl_pickle is body_model.read_smpl_pickle
    assert smpl_model.SMPL_KEYS is body_model.SMPL_KEYS
    assert smpl_model.CHUMPY_HOWTO is body_model.CHUMPY_HOWTO
