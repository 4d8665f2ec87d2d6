"""`mogents generate`: files per prompt, run.json, progress, formats."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DEVICES

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
