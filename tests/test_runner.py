"""The job runner (utils/runner.py) and the writer table (exports.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hftrainer_mogents.exports import FORMATS, WRITERS, MotionToWrite, save_motion
from hftrainer_mogents.utils.io import atomic_save_npy
from hftrainer_mogents.utils.runner import output_problem, run_job, write_summary


def _job(out, items, *, fail_at=None, kill_at=None, **kwargs):
    """A job writing item ``k`` as ``<k>.npy``; ``fail_at`` is reported failed, ``kill_at``
    raises (a killed process)."""

    def work(chunk):
        failures = []
        for k in chunk:
            if k == kill_at:
                raise KeyboardInterrupt
            if k == fail_at:
                failures.append({"sid": k, "error": "bad"})
                continue
            atomic_save_npy(out / f"{k}.npy", np.full((3, 2), k, np.float32))
        return failures

    def done(k):
        return output_problem(out / f"{k}.npy", shape=(None, 2)) is None

    return run_job(items, work, done=done, **kwargs)


def test_interrupted_then_resumed_is_byte_identical_to_a_whole_run(tmp_path):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    whole.mkdir(), resumed.mkdir()
    _job(whole, list(range(7)), chunk_size=2)
    with pytest.raises(KeyboardInterrupt):
        _job(resumed, list(range(7)), chunk_size=2, kill_at=5)
    assert sorted(p.name for p in resumed.iterdir()) == [f"{k}.npy" for k in range(5)]
    (resumed / "1.npy").write_bytes(b"\x93NUMPY")  # a file cut short
    run = _job(resumed, list(range(7)), chunk_size=2, skip_existing=True)
    assert run.todo == [1, 5, 6] and run.skipped == 4 and run.failures == []
    for k in range(7):
        assert (resumed / f"{k}.npy").read_bytes() == (whole / f"{k}.npy").read_bytes()


def test_shards_split_the_items_and_failures_are_reported(tmp_path):
    runs = [_job(tmp_path, list(range(5)), num_shards=2, shard_index=i, fail_at=3) for i in (0, 1)]
    assert runs[0].items == [0, 2, 4] and runs[1].items == [1, 3]
    assert runs[1].failures == [{"sid": 3, "error": "bad"}] and runs[0].failures == []
    assert runs[1].shard == {"num_shards": 2, "shard_index": 1}
    assert not (tmp_path / "3.npy").exists()


def test_chunks_go_to_work_in_order():
    seen = []
    run_job(list("abcde"), lambda chunk: seen.append(chunk), chunk_size=2)
    assert seen == [["a", "b"], ["c", "d"], ["e"]]
    seen.clear()
    run_job(list("abc"), lambda chunk: seen.append(chunk), chunk_size=None)
    assert seen == [["a", "b", "c"]]


def test_output_problem_names_what_is_wrong(tmp_path):
    np.save(tmp_path / "ok.npy", np.zeros((4, 3), np.float32))
    np.save(tmp_path / "nan.npy", np.full((4, 3), np.nan, np.float32))
    np.save(tmp_path / "empty.npy", np.zeros((0, 3), np.float32))
    np.save(tmp_path / "ints.npy", np.zeros((4, 3), np.int32))
    np.savez(tmp_path / "a.npz", m=np.ones((2, 5)))
    (tmp_path / "cut.npy").write_bytes(b"\x93NUMPY\x01")
    (tmp_path / "blank.gif").write_bytes(b"")
    (tmp_path / "x.gif").write_bytes(b"GIF89a")
    assert output_problem(tmp_path / "ok.npy", shape=(None, 3)) is None
    assert output_problem(tmp_path / "ok.npy", shape=(5, 3)).startswith("shape (4, 3)")
    assert output_problem(tmp_path / "missing.npy") == "missing"
    assert output_problem(tmp_path / "nan.npy") == "not finite floating-point values"
    assert output_problem(tmp_path / "ints.npy") == "not finite floating-point values"
    assert output_problem(tmp_path / "empty.npy") is not None
    assert output_problem(tmp_path / "cut.npy").startswith("unreadable")
    assert output_problem(tmp_path / "a.npz", key="m", shape=(None, 5)) is None
    assert output_problem(tmp_path / "a.npz", key="q").startswith("unreadable (KeyError")
    assert output_problem(tmp_path / "blank.gif") == "empty"
    assert output_problem(tmp_path / "x.gif") is None


def test_write_summary_names_shards_and_keeps_order(tmp_path):
    path = write_summary(
        tmp_path, "_s", {"b": 1, "a": 2}, num_shards=3, shard_index=2, sort_keys=False
    )
    assert path.name == "_s_s02_of_03.json" and list(json.loads(path.read_text())) == ["b", "a"]
    assert write_summary(tmp_path, "run", {"b": 1, "a": 2}).name == "run.json"
    assert list(json.loads((tmp_path / "run.json").read_text())) == ["a", "b"]


def test_the_writer_table_covers_every_format_and_save_motion_uses_it(tmp_path, monkeypatch):
    assert tuple(WRITERS) == FORMATS
    calls = []

    def fake(path, item):
        calls.append((path.name, item.motion.shape))
        return {"note": 1}

    for name in ("npy", "bvh"):
        monkeypatch.setitem(WRITERS, name, WRITERS[name].__class__(WRITERS[name].suffix, fake))
    files = save_motion(tmp_path, "m", np.zeros((8, 263), np.float32), ["bvh", "npy"])
    assert calls == [("m.npy", (8, 263)), ("m.bvh", (8, 263))]  # the table's order
    assert files == {"npy": "m.npy", "bvh": "m.bvh", "note": 1}


def test_the_bvh_writer_checks_the_file_it_wrote(fixtures_dir, tmp_path):
    from conftest import require_fixture

    from hftrainer_mogents.motion import bvh

    path = require_fixture(fixtures_dir / "humanml3d_sample" / "004822_protocol.npz")
    item = MotionToWrite(np.load(path)["hml263"].astype(np.float32))
    notes = WRITERS["bvh"].write(tmp_path / "a.bvh", item)
    fk = bvh.bvh_forward_kinematics(bvh.read_bvh(tmp_path / "a.bvh"), names=bvh.JOINT_NAMES)
    error = np.linalg.norm(fk - item.joints, axis=-1) * 100.0
    assert notes["bvh_fk_error_cm"] == {
        "mean": round(float(error.mean()), 4),
        "max": round(float(error.max()), 4),
    }


def test_output_problem_checks_the_headers_of_animations_and_npz_members(tmp_path):
    import io
    import zipfile

    (tmp_path / "cut.gif").write_bytes(b"GI")
    (tmp_path / "text.bvh").write_bytes(b"not a bvh")
    (tmp_path / "ok.bvh").write_bytes(b"HIERARCHY\nROOT Pelvis")
    (tmp_path / "bad.glb").write_bytes(b"\0" * 20)
    (tmp_path / "bad.mp4").write_bytes(b"\0\0\0\x18fty")
    buffer = io.BytesIO()
    np.savez(buffer, a=np.ones(100))
    data = bytearray(buffer.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        offset = archive.getinfo("a.npy").header_offset + 30 + len("a.npy") + 140
    data[offset] ^= 0xFF  # one flipped byte of the array: the member's CRC fails
    (tmp_path / "flipped.npz").write_bytes(bytes(data))
    assert output_problem(tmp_path / "cut.gif") == "not a .gif file (bad header)"
    assert output_problem(tmp_path / "text.bvh") == "not a .bvh file (bad header)"
    assert output_problem(tmp_path / "ok.bvh") is None
    assert output_problem(tmp_path / "bad.glb") is not None
    assert output_problem(tmp_path / "bad.mp4") is not None
    assert output_problem(tmp_path / "flipped.npz").startswith("unreadable")


def test_folder_lock_refuses_a_second_holder_and_takes_over_a_dead_ones(tmp_path, caplog):
    import os
    import socket
    import subprocess
    import sys

    from hftrainer_mogents.errors import FolderInUseError
    from hftrainer_mogents.utils.runner import (
        LOCK_FILE,
        check_folder_lock,
        folder_lock,
        remove_temporary_files,
    )

    with folder_lock(tmp_path) as lock:
        holder = json.loads(lock.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(FolderInUseError, match=f"pid {os.getpid()} on"), folder_lock(tmp_path):
            pass
        assert lock.is_file()  # the refused run leaves the holder's lock
    assert not (tmp_path / LOCK_FILE).exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = {"pid": dead.pid, "host": socket.gethostname(), "started": "then"}
    (tmp_path / LOCK_FILE).write_text(json.dumps(stale))
    check_folder_lock(tmp_path)  # a dead holder does not refuse
    with folder_lock(tmp_path):
        assert "taking over the lock" in caplog.text
    other_host = {**stale, "host": "elsewhere"}  # a pid of another host cannot be checked
    (tmp_path / LOCK_FILE).write_text(json.dumps(other_host))
    with pytest.raises(FolderInUseError, match="elsewhere"):
        check_folder_lock(tmp_path)
    (tmp_path / ".a.x1.tmp.gif").write_bytes(b"GIF8")
    (tmp_path / "a.gif").write_bytes(b"GIF8")
    assert remove_temporary_files(tmp_path) == [".a.x1.tmp.gif"]
    assert (tmp_path / "a.gif").is_file()
