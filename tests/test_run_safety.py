"""The run of `mogents generate`/`edit`/`--sequence` loses nothing: --overwrite replaces an earlier
run only once the new one has produced, a folder is locked, a killed run resumes byte-identically,
damaged files and another model are noticed, and bad flags are refused before the model loads."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from hftrainer_mogents.cli import cli
from hftrainer_mogents.jobs import generate as jobs_generate

PROMPTS = ["a person walks", "a person jumps", "a person waves", "a person sits", "a person runs"]


def _generate(out, *args, model, formats="npy,joints"):
    return CliRunner().invoke(
        cli,
        ["generate", "--model", str(model), "--device", "cpu", "--out", str(out), "--steps", "2"]
        + ["--seed", "3", "--format", formats, *args],
    )


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "run.json"}


# item 1 ---------------------------------------------------------------------------------------


def test_overwrite_keeps_the_earlier_run_when_the_new_one_is_refused(tiny_artifact, tmp_path):
    out = tmp_path / "out"
    first = _generate(out, "a person walks", model=tiny_artifact)
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # a mistyped model: refused when it loads, the earlier run untouched
    typo = _generate(out, "a person waves", "--overwrite", model=tmp_path / "no_such_model")
    assert typo.exit_code != 0 and "no_such_model" in typo.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # a length below the minimum: refused before anything else, naming the flag
    short = _generate(out, "a person waves", "--overwrite", "--length", "10", model=tiny_artifact)
    assert short.exit_code != 0 and "--length" in short.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # a run that fails while generating its first batch leaves the earlier run too
    from hftrainer_mogents.pipeline import MoGenTSPipeline

    def broken(self, *args, **kwargs):
        raise RuntimeError("broken model")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MoGenTSPipeline, "__call__", broken)
        failed = _generate(out, "a person waves", "--overwrite", model=tiny_artifact)
    assert failed.exit_code != 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# item 5 ---------------------------------------------------------------------------------------


def test_a_second_run_into_the_same_folder_is_refused_naming_the_first(tiny_artifact, tmp_path):
    out = tmp_path / "out"
    seen = {}
    real_load = jobs_generate.ModelSource.load

    def load_and_start_another(self):
        # while the first run holds the folder, a second run into it starts
        seen["second"] = _generate(out, "a person jumps", model=tiny_artifact)
        return real_load(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jobs_generate.ModelSource, "load", load_and_start_another)
        first = _generate(out, "a person walks", model=tiny_artifact)
    assert first.exit_code == 0, first.output
    second = seen["second"]
    assert second.exit_code != 0
    assert "FolderInUseError" in second.output and f"pid {os.getpid()}" in second.output
    run = json.loads((out / "run.json").read_text())
    assert [item["text"] for item in run["items"]] == ["a person walks"]
    assert sorted(p.name for p in out.iterdir()) == [
        "000_a_person_walks.npy",
        "000_a_person_walks_joints.npy",
        "run.json",
    ]  # the lock is gone


def test_a_live_lock_refuses_and_a_dead_ones_is_taken_over(tiny_artifact, tmp_path, caplog):
    from hftrainer_mogents.utils.runner import LOCK_FILE

    out = tmp_path / "out"
    out.mkdir()
    holder = {"pid": os.getppid(), "host": socket.gethostname(), "started": "earlier"}
    (out / LOCK_FILE).write_text(json.dumps(holder))
    refused = _generate(out, "a person walks", model=tiny_artifact)
    assert refused.exit_code != 0 and f"pid {os.getppid()}" in refused.output
    assert "--out" in refused.output and not (out / "run.json").exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / LOCK_FILE).write_text(json.dumps({**holder, "pid": dead.pid}))
    taken = _generate(out, "a person walks", "--overwrite", model=tiny_artifact)
    assert taken.exit_code == 0, taken.output
    assert "taking over the lock" in caplog.text
    assert not (out / LOCK_FILE).exists() and (out / "run.json").is_file()


# item 2 ---------------------------------------------------------------------------------------


class Killed(BaseException):
    """Stands for SIGKILL: nothing of the run catches it."""


def _kill_after_saves(monkeypatch, n):
    real = jobs_generate.save_motion
    calls = {"n": 0}

    def save(*args, **kwargs):
        if calls["n"] == n:
            # a writer killed midway leaves its temporary file behind
            (args[0] / f".{args[1]}.abcd.tmp.gif").write_bytes(b"GIF8 half")
            raise Killed
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs_generate, "save_motion", save)


@pytest.mark.parametrize("saves", [0, 1, 3])
def test_a_killed_run_resumes_to_the_bytes_of_an_uninterrupted_one(
    tiny_artifact, tmp_path, monkeypatch, saves
):
    args = [*PROMPTS, "--length", "48", "--batch-size", "2"]
    whole = tmp_path / "whole"
    assert _generate(whole, *args, model=tiny_artifact).exit_code == 0
    out = tmp_path / "out"
    with monkeypatch.context() as mp:
        _kill_after_saves(mp, saves)
        with pytest.raises(Killed):
            CliRunner().invoke(
                cli,
                ["generate", "--model", str(tiny_artifact), "--device", "cpu", "--out", str(out)]
                + ["--steps", "2", "--seed", "3", "--format", "npy,joints", *args],
                catch_exceptions=False,
            )
    # the batches finished before the kill are on disk and recorded
    run = json.loads((out / "run.json").read_text())
    assert run["complete"] is False
    assert [item["index"] for item in run["items"]] == list(range(saves // 2 * 2))
    resumed = _generate(out, *args, "--skip-existing", model=tiny_artifact)
    assert resumed.exit_code == 0, resumed.output
    assert _files(out) == _files(whole)  # byte-identical, the temporary file gone
    final = json.loads((out / "run.json").read_text())
    assert final["complete"] is True and len(final["items"]) == len(PROMPTS)


def test_the_batched_run_writes_what_one_call_over_every_prompt_does(
    tiny_artifact, tiny_pipeline, tmp_path
):
    """A batch at a time, the run writes the bytes of today's single call (seed, batch size)."""
    out = tmp_path / "out"
    result = _generate(out, *PROMPTS, "--length", "48", "--batch-size", "2", model=tiny_artifact)
    assert result.exit_code == 0, result.output
    expected = tiny_pipeline(PROMPTS, [48] * len(PROMPTS), seed=3, batch_size=2, time_steps=2)
    run = json.loads((out / "run.json").read_text())
    for item, motion in zip(run["items"], expected.motions):
        np.testing.assert_array_equal(np.load(out / item["files"]["npy"]), motion)


# item 3 ---------------------------------------------------------------------------------------


def test_skip_existing_regenerates_damaged_files(tiny_artifact, tmp_path):
    args = [*PROMPTS[:3], "--length", "48", "--batch-size", "1"]
    out = tmp_path / "out"
    assert _generate(out, *args, model=tiny_artifact, formats="npy,joints,bvh").exit_code == 0
    whole = _files(out)
    # a features file of the wrong length, an empty joints array, a truncated BVH
    np.save(out / "000_a_person_walks.npy", np.zeros((12, 263), np.float32))
    np.save(out / "001_a_person_jumps_joints.npy", np.zeros((0, 22, 3), np.float32))
    (out / "002_a_person_waves.bvh").write_bytes(b"HIER")
    resumed = _generate(
        out, *args, "--skip-existing", model=tiny_artifact, formats="npy,joints,bvh"
    )
    assert resumed.exit_code == 0, resumed.output
    assert "kept 0 finished prompt(s)" not in resumed.output
    assert "wrote 3 motion(s)" in resumed.output
    assert _files(out) == whole


def test_skip_existing_refuses_another_model_or_dtype(tiny_artifact, tmp_path, monkeypatch):
    args = [*PROMPTS[:2], "--length", "48", "--batch-size", "1"]
    out = tmp_path / "out"
    assert _generate(out, *args, model=tiny_artifact).exit_code == 0
    run = json.loads((out / "run.json").read_text())
    assert len(run["model_fingerprint"]) == 64 and run["dtype"] == "float32"
    (out / "001_a_person_jumps.npy").unlink()
    before = _files(out)
    dtype = _generate(out, *args, "--skip-existing", "--dtype", "bfloat16", model=tiny_artifact)
    assert dtype.exit_code != 0 and "--dtype float32" in dtype.output
    assert "--overwrite" in dtype.output
    from hftrainer_mogents.pipeline import MoGenTSPipeline

    monkeypatch.setattr(MoGenTSPipeline, "fingerprint", lambda self: "0" * 64)
    other = _generate(out, *args, "--skip-existing", model=tiny_artifact)
    assert other.exit_code != 0 and "not the one of the earlier run" in other.output
    assert "--overwrite" in other.output and "--out" in other.output
    assert _files(out) == before


# item 7 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["un pas à gauche\n".encode("latin-1"), b"\x00\x01\xff\xfe"])
def test_a_prompt_file_that_is_not_utf8_is_named(tmp_path, data):
    prompts = tmp_path / "prompts.txt"
    prompts.write_bytes(data)
    out = tmp_path / "out"
    result = _generate(out, "--from-file", str(prompts), model=tmp_path / "no_model")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert str(prompts) in result.output and "UTF-8" in result.output
    assert not out.exists()


def test_a_full_disk_is_one_line_naming_the_folder(tiny_artifact, tmp_path, monkeypatch):
    from hftrainer_mogents.utils import io

    real = io.atomic_write_bytes
    writes = {"n": 0}

    def full(path, data):
        writes["n"] += 1
        if writes["n"] > 2:  # run.json and the first file fit, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(io, "atomic_write_bytes", full)
    out = tmp_path / "out"
    result = _generate(out, *PROMPTS[:2], "--length", "48", model=tiny_artifact)
    assert result.exit_code == 1 and result.exception.__class__ is SystemExit
    assert "disk is full" in result.output and str(out) in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "OutputWriteError" in errors[0] and "Traceback" not in result.output
    run = json.loads((out / "run.json").read_text())
    assert run["items"] == [] and run["complete"] is False  # nothing claimed done


# item 8 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["a person walks", "--length", "10"], "--length"),
        (["a person walks", "--length", "nan"], "--length"),
        (["a person walks", "--seed", "-1"], "--seed"),
        (["a person walks", "--batch-size", "0"], "--batch-size"),
        (["   "], "TEXTS"),
        (["--sequence", "walks:10"], "--sequence"),
        (["--sequence", "walks:80", "--transition", "6"], "--transition"),
    ],
)
def test_generate_flags_are_checked_before_the_model_loads(tmp_path, args, flag):
    out = tmp_path / "new" / "out"
    result = CliRunner().invoke(
        cli, ["generate", *args, "--model", str(tmp_path / "no_model"), "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert flag in result.output and "no_model" not in result.output
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("motion", "keep", "flag"),
    [
        (np.zeros((120, 263), np.float32), "0:400", "--keep"),
        (np.zeros((120, 100), np.float32), "0:40", "INPUT.npy"),
        (np.zeros((10, 263), np.float32), "0:4", "INPUT.npy"),
        (np.full((120, 263), np.nan, np.float32), "0:40", "INPUT.npy"),
    ],
)
def test_edit_flags_are_checked_before_the_model_loads(tmp_path, motion, keep, flag):
    src = tmp_path / "in.npy"
    np.save(src, motion)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["edit", str(src), "a man jumps", "--keep", keep, "--model", str(tmp_path / "no_model")]
        + ["--out", str(out)],
    )
    assert result.exit_code == 2, result.output
    assert flag in result.output and "no_model" not in result.output
    assert not out.exists()


def test_a_refused_model_leaves_no_empty_folder(tmp_path):
    out = tmp_path / "new" / "out"
    result = _generate(out, "a person walks", model=tmp_path / "no_model")
    assert result.exit_code != 0 and "no_model" in result.output
    assert not (tmp_path / "new").exists()


def test_a_run_killed_by_sigkill_resumes_to_the_same_bytes(tiny_artifact, tmp_path):
    """A real kill (SIGKILL of the CLI's process, once some prompts are recorded), then
    --skip-existing: the folder ends as an uninterrupted run's, byte for byte."""
    import signal
    import time

    prompts = [f"a person walks {n} steps" for n in range(12)]
    args = [*prompts, "--length", "48", "--batch-size", "1"]
    formats = "npy,joints,gif"
    whole = tmp_path / "whole"
    assert _generate(whole, *args, model=tiny_artifact, formats=formats).exit_code == 0
    out = tmp_path / "out"
    command = [sys.executable, "-m", "hftrainer_mogents.cli", "generate", "--model"]
    command += [str(tiny_artifact), "--device", "cpu", "--out", str(out), "--steps", "2"]
    command += ["--seed", "3", "--format", formats, *args]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if len(json.loads((out / "run.json").read_text())["items"]) >= 2:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = json.loads((out / "run.json").read_text())
    assert killed["complete"] is False and 2 <= len(killed["items"]) < len(prompts)
    resumed = _generate(out, *args, "--skip-existing", model=tiny_artifact, formats=formats)
    assert resumed.exit_code == 0, resumed.output
    assert _files(out) == _files(whole)


def test_edit_keep_off_the_token_grid_is_snapped_and_recorded_or_refused(tiny_artifact, tmp_path):
    """Issue 19 item 6 through the CLI: --keep 0:39 keeps 0:36 and run.json says so (with what
    was asked); --keep 0:2 keeps no whole 4-frame step and is refused before the model loads."""
    from hftrainer_mogents.cli import cli

    src = tmp_path / "src.npy"
    rng = np.random.default_rng(0)
    np.save(src, rng.standard_normal((80, 263)).astype(np.float32))
    base = ["edit", str(src), "a man jumps", "--model", str(tiny_artifact), "--device", "cpu"]
    out = tmp_path / "snapped"
    result = CliRunner().invoke(cli, [*base, "--keep", "0:39", "--out", str(out), "--seed", "1"])
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert run["edit"]["keep"] == [[0, 36]] and run["edit"]["keep_requested"] == [[0, 39]]
    refused = tmp_path / "refused"
    bad = CliRunner().invoke(
        cli,
        [*base[:3], "--model", str(tmp_path / "no_model"), "--keep", "0:2", "--out", str(refused)],
    )
    assert bad.exit_code == 2 and "--keep" in bad.output and "no_model" not in bad.output
    assert not refused.exists()


def test_sequence_transition_longer_than_the_first_window_is_refused_before_loading(tmp_path):
    from hftrainer_mogents.cli import cli

    out = tmp_path / "seq"
    result = CliRunner().invoke(
        cli,
        ["generate", "--sequence", "walks:40", "sits:60", "--transition", "80",
         "--model", str(tmp_path / "no_model"), "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--transition" in result.output and "no_model" not in result.output
    assert not out.exists()


def test_edit_writes_smpl_parameters_and_a_skinned_glb(tiny_artifact, fixtures_dir, tmp_path):
    """mogents edit takes --model-dir as mogents generate does: SMPL parameters and the skinned
    body for the edited motion, the model recorded in run.json."""
    pytest.importorskip("pygltflib")
    from conftest import require_fixture

    from hftrainer_mogents.cli import cli

    smpl_dir = require_fixture(fixtures_dir / "ms272_tiny" / "smpl")
    src = tmp_path / "src.npy"
    np.save(src, np.random.default_rng(0).standard_normal((80, 263)).astype(np.float32))
    out = tmp_path / "out"
    args = ["edit", str(src), "a man jumps", "--keep", "0:40", "--model", str(tiny_artifact),
            "--device", "cpu", "--seed", "2", "--format", "npy,smpl,glb",
            "--model-dir", str(smpl_dir), "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert run["smpl_model"].endswith("SMPL_NEUTRAL.npz")
    files = run["items"][0]["files"]
    assert files["glb_skinned"] is True
    with np.load(out / files["smpl"]) as data:
        assert data["transl"].shape == (80, 3) and data["body_pose"].shape == (80, 63)
    no_model = CliRunner().invoke(
        cli, [*args[:-4], "--format", "smpl", "--out", str(tmp_path / "x")]
    )
    assert no_model.exit_code == 1 and "--model-dir" in no_model.output
