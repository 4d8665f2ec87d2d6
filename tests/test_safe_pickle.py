"""Pickled third-party files are read without running their code."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest
import torch

from hftrainer_mogents.convert.safe_pickle import (
    PickledObject,
    find_state_dicts,
    read_torch_zip,
    restricted_pickle_load,
    torch_load_weights_only,
)
from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError
from hftrainer_mogents.utils.safe_pickle import numpy_array_globals


class _Exploit:
    """Unpickling this would create a marker file (stands for arbitrary code execution)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _vq_tar(fixtures_dir):
    return fixtures_dir / "mogents_tiny/logs/humanml3d/pretrain_vq/model/net_best_fid.tar"


def test_weights_only_reads_official_layout_with_numpy_scalar(fixtures_dir):
    ckpt = torch_load_weights_only(_vq_tar(fixtures_dir))
    assert set(ckpt) == {"vq_model", "ep", "value"}
    assert isinstance(ckpt["value"], np.floating)
    assert all(isinstance(v, torch.Tensor) for v in ckpt["vq_model"].values())


def test_weights_only_accepts_numpy1_module_name(tmp_path):
    # official checkpoints were written under numpy 1.x: the scalar global is numpy.core.multiarray
    path = tmp_path / "np1.tar"
    torch.save({"w": torch.ones(2), "value": np.float64(0.25)}, path)
    with zipfile.ZipFile(path) as src:
        entries = {n: src.read(n) for n in src.namelist()}
    pkl = next(n for n in entries if n.endswith("data.pkl"))
    assert b"numpy._core.multiarray" in entries[pkl] or b"numpy.core.multiarray" in entries[pkl]
    entries[pkl] = entries[pkl].replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as dst:
        for name, data in entries.items():
            dst.writestr(name, data)
    ckpt = torch_load_weights_only(path)
    assert float(ckpt["value"]) == 0.25


def test_read_torch_zip_equals_torch_load(fixtures_dir):
    ref = torch_load_weights_only(_vq_tar(fixtures_dir))["vq_model"]
    ours = read_torch_zip(_vq_tar(fixtures_dir))["vq_model"]
    assert list(ours) == list(ref)
    for key in ref:
        assert torch.equal(ours[key], ref[key]), key


def test_read_torch_zip_stubs_torchscript_classes(fixtures_dir):
    root = read_torch_zip(fixtures_dir / "mogents_tiny/clip/ViT-B-32-tiny.pt")
    assert isinstance(root, PickledObject) and root.qualname == "__torch__.clip.model.CLIP"
    assert root.state["token_embedding"].state["weight"].dtype == torch.float16


def _pickle_exploit(tmp_path):
    marker = tmp_path / "pwned"
    return marker, _Exploit(marker)


def test_every_reader_refuses_code_execution(tmp_path):
    marker, exploit = _pickle_exploit(tmp_path)
    tar = tmp_path / "evil.tar"
    torch.save({"state": {"w": torch.ones(1)}, "payload": exploit}, tar)
    pkl = tmp_path / "evil.pkl"
    pkl.write_bytes(pickle.dumps(["ok", exploit]))
    marker.unlink(missing_ok=True)

    with pytest.raises(ArtifactFormatError, match="refused"):
        torch_load_weights_only(tar)
    with pytest.raises(ArtifactFormatError, match=r"global .*open. is not allowed"):
        read_torch_zip(tar, stub_unknown=False)
    stubbed = read_torch_zip(tar, stub_unknown=True)
    assert isinstance(stubbed["payload"], PickledObject)
    with pytest.raises(ArtifactFormatError, match=r"global .*open. is not allowed"):
        restricted_pickle_load(pkl)
    assert not marker.exists(), "a reader executed pickled code"


def test_restricted_pickle_reads_plain_containers(tmp_path, fixtures_dir):
    words = restricted_pickle_load(fixtures_dir / "hml263_eval_tiny/glove/our_vab_words.pkl")
    assert isinstance(words, list) and all(isinstance(w, str) for w in words)
    path = tmp_path / "np.pkl"
    path.write_bytes(pickle.dumps({"a": np.arange(3, dtype=np.int64), "s": np.float64(1.5)}))
    with pytest.raises(ArtifactFormatError):
        restricted_pickle_load(path)
    loaded = restricted_pickle_load(path, allow_numpy=True)
    np.testing.assert_array_equal(loaded["a"], np.arange(3))
    assert loaded["s"] == 1.5


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(ArtifactNotFoundError):
        torch_load_weights_only(tmp_path / "nope.tar")
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(ArtifactFormatError):
        torch_load_weights_only(garbage)
    with pytest.raises(ArtifactFormatError, match="not a torch zip"):
        read_torch_zip(garbage)


def test_find_state_dicts_lists_nested_tensor_maps(fixtures_dir):
    ckpt = torch_load_weights_only(
        fixtures_dir / "mogents_tiny/logs/humanml3d/pretrain_mtrans/model/net_best_fid.tar"
    )
    assert set(find_state_dicts(ckpt)) == {"t2m_transformer_aux", "t2m_transformer_ts"}


class _ObjectFromBuffer:
    """Asks numpy's protocol-5 reconstruction for an object array (pointers from raw bytes)."""

    def __reduce__(self):
        from numpy._core.numeric import _frombuffer

        return (_frombuffer, (b"\0" * 16, np.dtype(object), (2,), "C"))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_numpy_arrays_load_under_every_protocol(tmp_path, protocol):
    """Protocol 5 (Python's highest) writes arrays through numpy.core.numeric._frombuffer: it is
    allowed (under numpy 1.x and 2.x names); out-of-band buffers and object arrays are not."""
    arrays = {
        "f8": np.arange(12, dtype=np.float64).reshape(4, 3),
        "f4": np.ones((2, 24), np.float32),
        "u4": np.arange(6, dtype=np.uint32).reshape(2, 3),
        "i8": np.arange(48, dtype=np.int64).reshape(2, 24),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "scalar": np.float64(2.5),
    }
    path = tmp_path / "arrays.pkl"
    path.write_bytes(pickle.dumps(arrays, protocol=protocol))
    loaded = restricted_pickle_load(path, allow_numpy=True)
    for key, value in arrays.items():
        np.testing.assert_array_equal(loaded[key], value)
        assert np.asarray(loaded[key]).dtype == np.asarray(value).dtype, key
    with pytest.raises(ArtifactFormatError, match="not allowed"):
        restricted_pickle_load(path)  # numpy only when asked
    # numpy 1.x wrote the same globals under numpy.core
    allowed = numpy_array_globals()
    for base in ("numpy.core", "numpy._core"):
        assert (f"{base}.numeric", "_frombuffer") in allowed
        assert (f"{base}.multiarray", "_reconstruct") in allowed


def test_protocol5_out_of_band_and_object_buffers_are_refused(tmp_path):
    path = tmp_path / "oob.pkl"
    path.write_bytes(pickle.dumps(np.zeros(4), protocol=5, buffer_callback=lambda buf: False))
    with pytest.raises(ArtifactFormatError, match="out-of-band"):
        restricted_pickle_load(path, allow_numpy=True)
    path.write_bytes(pickle.dumps(_ObjectFromBuffer(), protocol=5))
    with pytest.raises(ArtifactFormatError, match="OBJECT"):
        restricted_pickle_load(path, allow_numpy=True)
