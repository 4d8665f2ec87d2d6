"""`mogents generate`: files per prompt, run.json, progress, formats."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DEVICES, require_fixture

from hftrainer_mogents.cli import cli
from hftrainer_mogents.generation_config import GenerationConfig
from hftrainer_mogents.motion.hml263 import recover_from_ric


@pytest.mark.parametrize("device", DEVICES)
def test_generate_writes_every_format(tiny_artifact, tmp_path, device):
    out = tmp_path / "out"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# a comment\na man jumps up and down twice.\n\n")
    result = CliRunner().invoke(
        cli,
        [
            "generate",
            "a person walks forward then turns around",
            "--from-file",
            str(prompts),
            "--model",
            str(tiny_artifact),
            "--device",
            device,
            "--length",
            "80",
            "--length",
            "66",
            "--seed",
            "0",
            "--steps",
            "4",
            "--res-temperature",
            "0.5",
            "--out",
            str(out),
            "--format",
            "npy,joints,gif,bvh",
        ],
    )
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["seed"] == 0 and run["settings"]["time_steps"] == 4
    # the whole GenerationConfig, every field, as the command built it
    assert run["generation_config"] == GenerationConfig(time_steps=4, res_temperature=0.5).to_dict()
    assert run["model"] == str(tiny_artifact) and run["hftrainer_mogents"]
    assert [item["frames"] for item in run["items"]] == [80, 64]
    first = run["items"][0]
    assert first["text"] == "a person walks forward then turns around"
    motion = np.load(out / first["files"]["npy"])
    joints = np.load(out / first["files"]["joints"])
    assert motion.shape == (80, 263) and joints.shape == (80, 22, 3)
    np.testing.assert_allclose(joints, recover_from_ric(motion), atol=1e-6)
    assert (out / first["files"]["gif"]).stat().st_size > 0
    bvh_text = (out / first["files"]["bvh"]).read_text()
    assert bvh_text.startswith("HIERARCHY") and "Frames: 80" in bvh_text
    assert set(first["files"]["bvh_fk_error_cm"]) == {"mean", "max"}
    # the same seed gives the same motion
    again = CliRunner().invoke(
        cli,
        [
            "generate",
            "a person walks forward then turns around",
            "--model",
            str(tiny_artifact),
            "--device",
            device,
            "--length",
            "80",
            "--seed",
            "0",
            "--steps",
            "4",
            "--res-temperature",
            "0.5",
            "--out",
            str(tmp_path / "again"),
            "--format",
            "npy",
        ],
    )
    assert again.exit_code == 0, again.output
    np.testing.assert_array_equal(np.load(tmp_path / "again" / first["files"]["npy"]), motion)


def test_generate_mp4_without_ffmpeg_is_refused_before_compute(tmp_path, monkeypatch):
    from hftrainer_mogents.motion import render

    monkeypatch.setattr(render, "ffmpeg_executable", lambda: None)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        # a model that does not exist: the format is refused before anything is loaded
        ["generate", "a person walks", "--model", str(tmp_path / "no_model"), "--out", str(out)]
        + ["--format", "mp4,npy"],
    )
    assert result.exit_code != 0
    assert "--format mp4" in result.output and "hftrainer-mogents[render]" in result.output
    assert "no_model" not in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "npy,avi"], "unknown output format 'avi'"),
        (
            ["--length", "80", "--length", "90", "--length", "100"],
            "3 --length values for 1 prompts",
        ),
        (["--steps", "0"], "Invalid value for --steps: time_steps must be an integer >= 1"),
        (["--topkr", "1.5"], "Invalid value for --topkr: topkr must be in [0, 1)"),
        (["--res-temperature", "0"], "--res-temperature: res_temperature must be a finite"),
        pytest.param(
            ["--device", "cuda:5"],
            "CUDA is not available",
            marks=pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="GPU present"),
        ),
    ],
)
def test_generate_bad_arguments(tiny_artifact, tmp_path, args, message):
    result = CliRunner().invoke(
        cli,
        [
            "generate",
            "a person walks",
            "--model",
            str(tiny_artifact),
            "--out",
            str(tmp_path),
            *args,
        ],
    )
    assert result.exit_code != 0
    assert message in result.output


def test_generate_without_prompt(tmp_path):
    result = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "at least one prompt" in result.output


def _generate(out, *args, model):
    return CliRunner().invoke(
        cli,
        ["generate", "--model", str(model), "--device", "cpu", "--out", str(out), "--steps", "2"]
        + ["--seed", "3", "--format", "npy", *args],
    )


def test_generate_checks_the_destination_before_loading_the_model(tmp_path):
    """No model here: each error below comes from the destination check, before any load."""
    missing_model = tmp_path / "no_model"
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    result = _generate(a_file / "sub", "a person walks", model=missing_model)
    assert result.exit_code != 0 and "cannot write to --out" in result.output
    result = _generate(a_file, "a person walks", model=missing_model)
    assert result.exit_code != 0 and f"'{a_file}' is a file" in result.output
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    result = _generate(busy, "a person walks", model=missing_model)
    assert result.exit_code != 0 and "already holds 1 file(s)" in result.output
    assert "--overwrite" in result.output and "--skip-existing" in result.output
    assert "no_model" not in result.output


def test_generate_overwrite_replaces_only_the_earlier_runs_files(tiny_artifact, tmp_path):
    out = tmp_path / "out"
    first = _generate(out, "a person walks", "a person jumps", model=tiny_artifact)
    assert first.exit_code == 0, first.output
    old = {p.name for p in out.glob("*.npy")}
    (out / "notes.txt").write_text("mine")
    second = _generate(out, "a person waves", "--overwrite", model=tiny_artifact)
    assert second.exit_code == 0, second.output
    run = json.loads((out / "run.json").read_text())
    assert [item["text"] for item in run["items"]] == ["a person waves"]
    assert not old & {p.name for p in out.glob("*.npy")}
    assert {p.name for p in out.iterdir()} == {"notes.txt", "run.json", "000_a_person_waves.npy"}


def test_generate_skip_existing_resumes_as_the_full_run(tiny_artifact, tmp_path):
    prompts = ["a person walks", "a person jumps", "a person waves"]
    out = tmp_path / "out"
    full = _generate(out, *prompts, "--length", "48", model=tiny_artifact)
    assert full.exit_code == 0, full.output
    before = {p.name: np.load(p) for p in out.glob("*.npy")}
    (out / "001_a_person_jumps.npy").unlink()  # as if the run had been killed there
    resumed = _generate(out, *prompts, "--length", "48", "--skip-existing", model=tiny_artifact)
    assert resumed.exit_code == 0, resumed.output
    assert "kept 2 finished prompt(s)" in resumed.output and "wrote 1 motion(s)" in resumed.output
    for name, motion in before.items():
        # kept as they were, or regenerated in the batch of the full run: the same bytes
        np.testing.assert_array_equal(np.load(out / name), motion)
    run = json.loads((out / "run.json").read_text())
    assert [item["index"] for item in run["items"]] == [0, 1, 2]
    changed = _generate(
        out, *prompts, "--length", "48", "--skip-existing", "--topkr", "0.5", model=tiny_artifact
    )
    assert changed.exit_code != 0 and "differs (the generation settings)" in changed.output


def test_a_bvh_far_from_its_joints_is_warned_about_and_recorded(fixtures_dir, tmp_path, caplog):
    """A real clip's BVH meets its joints; joints whose bones stretch (what a broken model
    gives) are flagged, in the log and in the files record that run.json stores."""
    from hftrainer_mogents.outputs import save_motion

    path = require_fixture(fixtures_dir / "humanml3d_sample" / "004822_protocol.npz")
    features = np.load(path)["hml263"].astype(np.float32)
    real = save_motion(tmp_path, "real", features, ["bvh"])
    assert real["bvh_fk_error_cm"]["max"] < 0.01 and "bvh_fk_warning" not in real
    stretched = features.copy()
    stretched[::2, 4 : 4 + 21 * 3] *= 1.3  # root-relative joints: bones change length
    with caplog.at_level(logging.WARNING, logger="hftrainer_mogents.exports"):
        bad = save_motion(tmp_path, "bad", stretched, ["bvh"])
    assert bad["bvh_fk_error_cm"]["max"] > 2.0
    assert bad["bvh_fk_warning"].startswith("bad.bvh: the BVH skeleton misses the joints by up to")
    assert bad["bvh_fk_warning"] in caplog.text


def test_generate_help_says_how_lengths_and_prompt_files_are_read():
    text = " ".join(CliRunner().invoke(cli, ["generate", "--help"]).output.split())
    assert "give it once for all prompts, or once per prompt in their order" in text
    assert "lines starting with # are skipped" in text
    assert "--overwrite" in text and "--skip-existing" in text


def test_messages_name_the_flag_beside_the_keyword(tmp_path):
    from hftrainer_mogents.utils.io import atomic_dir

    (tmp_path / "taken").mkdir()
    with (
        pytest.raises(FileExistsError, match=r"overwrite=True \(--overwrite on the command line\)"),
        atomic_dir(tmp_path / "taken"),
    ):
        pass


# --------------------------------------------------------------------------------------------
# --format smpl / glb


def test_generate_writes_smpl_parameters_and_a_skinned_glb(tiny_artifact, fixtures_dir, tmp_path):
    pygltflib = pytest.importorskip("pygltflib")
    import torch

    from hftrainer_mogents.motion import smpl135
    from hftrainer_mogents.motion.rotations import axis_angle_to_matrix

    smpl_dir = require_fixture(fixtures_dir / "ms272_tiny" / "smpl")
    out = tmp_path / "out"
    result = _generate(
        out,
        "a person walks",
        "a person jumps",
        "--length",
        "40",
        "--length",
        "52",
        "--format",
        "npy,smpl,glb",
        "--model-dir",
        str(smpl_dir),
        model=tiny_artifact,
    )
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert run["formats"] == ["npy", "smpl", "glb"]
    assert run["smpl_model"].endswith("SMPL_NEUTRAL.npz")
    model = smpl135.load_smpl_model(smpl_dir)
    rest = torch.from_numpy(model.rest_joints()[:22])
    for item in run["items"]:
        files = item["files"]
        assert files["smpl"] == files["npy"].replace(".npy", "_smpl.npz")
        assert files["glb"] == files["npy"].replace(".npy", ".glb") and files["glb_skinned"]
        motion = np.load(out / files["npy"])
        t = motion.shape[0]
        with np.load(out / files["smpl"]) as data:
            npz = {k: data[k] for k in data.files}
        assert npz["transl"].shape == (t, 3) and float(npz["fps"]) == 20.0  # one frame each
        # the recorded error is the distance of SMPL's FK of the file to the motion's joints
        aa = np.concatenate((npz["global_orient"], npz["body_pose"]), 1).reshape(t, 22, 3)
        rot = axis_angle_to_matrix(torch.from_numpy(aa).double())
        fk = smpl135.forward_kinematics(rot, rest, transl=torch.from_numpy(npz["transl"]).double())
        dist = np.linalg.norm(fk.joints.numpy() - recover_from_ric(motion), axis=-1).mean(-1)
        np.testing.assert_allclose(npz["fit_mpjpe_mm"], dist * 1000.0, rtol=1e-3, atol=0.05)
        assert files["smpl_fit_error_mm"]["mean"] == pytest.approx(dist.mean() * 1000, rel=1e-3)
        doc = pygltflib.GLTF2().load(str(out / files["glb"]))
        assert doc.accessors[doc.meshes[0].primitives[0].attributes.POSITION].count == 6890
        times = doc.accessors[doc.animations[0].samplers[0].input]
        assert times.count == t and times.max[0] == pytest.approx((t - 1) / 20.0)


def test_generate_glb_without_a_smpl_model_is_the_skeleton(tiny_artifact, tmp_path):
    pygltflib = pytest.importorskip("pygltflib")
    out = tmp_path / "out"
    result = _generate(
        out, "a person walks", "--length", "40", "--format", "glb", model=tiny_artifact
    )
    assert result.exit_code == 0, result.output
    files = json.loads((out / "run.json").read_text())["items"][0]["files"]
    assert files["glb_skinned"] is False
    doc = pygltflib.GLTF2().load(str(out / files["glb"]))
    assert not doc.meshes and len(doc.skins[0].joints) == 22
    assert doc.accessors[doc.animations[0].samplers[0].input].count == 40


def test_generate_smpl_without_model_dir_is_refused_before_compute(tmp_path, monkeypatch):
    out = tmp_path / "out"
    # a generator that does not exist: the format is refused before anything is loaded
    result = _generate(out, "a person walks", "--format", "smpl", model=tmp_path / "no_model")
    assert result.exit_code != 0
    assert "--format smpl needs the SMPL neutral model: pass --model-dir" in result.output
    assert "no_model" not in result.output and not out.exists()
    result = _generate(
        out, "a person walks", "--format", "smpl", "--model-dir", str(tmp_path),
        model=tmp_path / "no_model",
    )  # fmt: skip
    assert result.exit_code != 0 and "no SMPL neutral model found" in result.output
    assert not out.exists()
    monkeypatch.setitem(__import__("sys").modules, "pygltflib", None)
    result = _generate(out, "a person walks", "--format", "glb", model=tmp_path / "no_model")
    assert result.exit_code != 0 and "hftrainer-mogents[render]" in result.output
    assert not out.exists()


def test_skip_existing_keeps_prompts_whose_bvh_carries_a_warning(tiny_artifact, tmp_path):
    """run.json notes (bvh_fk_warning) are not file names: a finished prompt stays finished."""
    out = tmp_path / "out"
    args = ["a person walks", "--length", "48", "--format", "npy,bvh"]
    first = _generate(out, *args, model=tiny_artifact)
    assert first.exit_code == 0, first.output
    item = json.loads((out / "run.json").read_text())["items"][0]
    assert "bvh_fk_warning" in item["files"]  # random weights: bones that stretch
    # the listing names the files only, not the note beside them
    assert "[0] 48 frames -> 000_a_person_walks.npy, 000_a_person_walks.bvh\n" in first.output
    again = _generate(out, *args, "--skip-existing", model=tiny_artifact)
    assert again.exit_code == 0, again.output
    assert "kept 1 finished prompt(s)" in again.output and "wrote 0 motion(s)" in again.output
