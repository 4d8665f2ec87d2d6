"""Atomic writes and sharding helpers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.utils.device import resolve_device
from hftrainer_mogents.utils.io import (
    atomic_dir,
    atomic_path,
    atomic_save_npy,
    atomic_save_npz,
    atomic_write_json,
    is_temporary,
)
from hftrainer_mogents.utils.sharding import resolve_shard, select_shard, shard_summary_name


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "sub" / "out.npy"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".npy" and is_temporary(tmp)
        np.save(tmp, np.arange(3))
        assert not target.exists()
    np.testing.assert_array_equal(np.load(target), np.arange(3))
    assert [p.name for p in target.parent.iterdir()] == ["out.npy"]


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError, match="killed"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_writers_round_trip(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"b": 1, "a": [1, 2]})
    assert json.loads((tmp_path / "a.json").read_text()) == {"a": [1, 2], "b": 1}
    atomic_save_npy(tmp_path / "x.npy", np.eye(2, dtype=np.float32))
    assert np.load(tmp_path / "x.npy", allow_pickle=False).dtype == np.float32
    atomic_save_npz(tmp_path / "y.npz", a=np.ones(2), b=np.zeros(1))
    with np.load(tmp_path / "y.npz", allow_pickle=False) as data:
        assert sorted(data.files) == ["a", "b"]
    with pytest.raises(ValueError):
        atomic_save_npy(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    assert not any(is_temporary(p) for p in tmp_path.iterdir())


def test_atomic_dir_replaces_whole_folder(tmp_path):
    target = tmp_path / "artifact"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"
    with pytest.raises(FileExistsError), atomic_dir(target):
        pass
    with pytest.raises(RuntimeError), atomic_dir(target, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("2")
        raise RuntimeError("fail midway")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    with atomic_dir(target, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact"]


def test_resolve_shard_explicit_env_and_default():
    assert resolve_shard(4, 2, env={}) == (4, 2)
    assert resolve_shard(env={}) == (1, 0)
    assert resolve_shard(env={"WORLD_SIZE": "8", "RANK": "5"}) == (8, 5)
    assert resolve_shard(env={"LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == (2, 1)
    assert resolve_shard(3, None, env={"RANK": "7"}) == (3, 0)


@pytest.mark.parametrize(("n", "i"), [(0, 0), (2, 2), (2, -1)])
def test_resolve_shard_rejects_bad_values(n, i):
    with pytest.raises(InvalidInputError, match="num_shards|shard_index"):
        resolve_shard(n, i, env={})


def test_select_shard_partitions():
    items = list(range(10))
    parts = [select_shard(items, 3, i) for i in range(3)]
    assert parts[1] == [1, 4, 7]
    assert sorted(x for p in parts for x in p) == items


def test_shard_summary_name():
    assert shard_summary_name("_generation_summary", 1, 0) == "_generation_summary.json"
    assert shard_summary_name("_retarget_summary", 4, 2) == "_retarget_summary_s02_of_04.json"
    names = {shard_summary_name("_x", 12, i) for i in range(12)}
    assert len(names) == 12  # shards in one folder never share a summary


def test_resolve_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected and resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(InvalidInputError, match="not a device name"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match="CUDA is not available"):
            resolve_device("cuda:1")


def test_atomic_files_get_normal_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "a.json", {})
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "x").write_text("1")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_cuda_graph_cache_runs_cpu_tensors_eagerly():
    from hftrainer_mogents.utils.cuda_graphs import CUDAGraphCache

    calls = []

    def fn(x, y):
        calls.append(1)
        return x * 2 + y

    cache = CUDAGraphCache()
    x, y = torch.arange(3.0), torch.ones(3)
    assert torch.equal(cache(("k", 1), fn, x, y), torch.tensor([1.0, 3.0, 5.0]))
    assert torch.equal(cache(("k", 1), fn, x, y * 0), torch.tensor([0.0, 2.0, 4.0]))
    assert len(calls) == 2 and len(cache) == 0  # called each time, nothing captured


def test_full_fp32_turns_tf32_off_and_restores_the_flags():
    from hftrainer_mogents.utils.precision import full_fp32

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
        with pytest.raises(RuntimeError, match="inside"), full_fp32():
            assert not torch.backends.cudnn.allow_tf32
            assert not torch.backends.cuda.matmul.allow_tf32
            raise RuntimeError("inside")
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_keep_freed_memory(monkeypatch):
    import platform
    import sys

    from hftrainer_mogents.utils import memory

    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert memory.keep_freed_memory() is True
    monkeypatch.setattr(memory.sys, "platform", "darwin")
    assert memory.keep_freed_memory() is False


def test_checksums_name_the_file_and_the_record(tmp_path):
    from hftrainer_mogents.errors import ArtifactNotFoundError, ChecksumMismatchError
    from hftrainer_mogents.utils.io import check_checksums, checksum_map, sha256_file

    (tmp_path / "sub").mkdir()
    (tmp_path / "b.bin").write_bytes(b"b")
    (tmp_path / "sub" / "a.txt").write_text("a")
    checksums = checksum_map(tmp_path, ["sub/a.txt", "b.bin"])
    assert list(checksums) == ["b.bin", "sub/a.txt"]
    assert checksums["b.bin"] == sha256_file(tmp_path / "b.bin")
    check_checksums(tmp_path, checksums, recorded_in="index.json")
    (tmp_path / "b.bin").write_bytes(b"c")
    check_checksums(tmp_path, checksums, ["sub/a.txt", "unlisted"])  # only the files asked for
    with pytest.raises(ChecksumMismatchError, match=r"b\.bin: sha256 .* recorded in index\.json"):
        check_checksums(tmp_path, checksums, recorded_in="index.json")
    (tmp_path / "sub" / "a.txt").unlink()
    with pytest.raises(ArtifactNotFoundError, match=r"sub/a\.txt is listed in index\.json"):
        check_checksums(tmp_path, checksums, ["sub/a.txt"], recorded_in="index.json")


def test_safetensors_round_trip_and_strict_loading(tmp_path):
    from hftrainer_mogents.errors import ArtifactFormatError
    from hftrainer_mogents.utils.io import (
        load_safetensors,
        load_state_dict_strict,
        safetensors_shapes,
        save_safetensors,
    )

    module = torch.nn.Linear(3, 2)
    path = save_safetensors(tmp_path / "w.safetensors", module.state_dict(), metadata={"k": "v"})
    assert safetensors_shapes(path) == {"weight": ((2, 3), "F32"), "bias": ((2,), "F32")}
    assert not any(is_temporary(p) for p in tmp_path.iterdir())
    fresh = load_state_dict_strict(torch.nn.Linear(3, 2), load_safetensors(path), source=str(path))
    assert torch.equal(fresh.weight, module.weight)
    with pytest.raises(
        ArtifactFormatError, match=r"w\.safetensors: .*weight: \(2, 3\) in the file"
    ):
        load_state_dict_strict(torch.nn.Linear(4, 2), load_safetensors(path), source=str(path))
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ArtifactFormatError, match=r"w\.safetensors"):
        load_safetensors(path)
