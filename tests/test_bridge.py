"""Batch bridge: IK and 272 jobs, failures, resume, shards, CLI, scripts and the chain."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import DEVICES, REPO_ROOT, require_fixture

from hftrainer_mogents.cli import cli
from hftrainer_mogents.motion import bridge, hml263, ms272, smpl135

NAMES = ["walk_turn", "sway_arms", "short_spin"]


@pytest.fixture(scope="module")
def model_dir(fixtures_dir: Path) -> Path:
    return require_fixture(fixtures_dir / "ms272_tiny" / "smpl")


def generated_looking(fixtures_dir: Path, count: int = 3) -> dict[str, np.ndarray]:
    """263 clips like a generator's: fixture motions, encoded, with a little smooth noise."""
    rng = np.random.default_rng(0)
    clips = {}
    for k in range(count):
        name = NAMES[k % len(NAMES)]
        with np.load(fixtures_dir / "ms272_tiny" / "motions" / f"{name}.npz") as data:
            feats = hml263.joints_to_hml263(data["fk_joints22_20fps"])
        wobble = np.cumsum(rng.normal(0, 0.002, size=feats.shape), axis=0).astype(np.float32)
        clips[f"{k:06d}"] = feats + wobble
    return clips


def write_inputs(folder: Path, clips: dict[str, np.ndarray], bad: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, feats in clips.items():
        np.save(folder / f"{name}.npy", feats)
    if bad:
        nan = next(iter(clips.values())).copy()
        nan[5, 10] = np.nan
        np.save(folder / "bad_nan.npy", nan)
        np.save(folder / "bad_short.npy", np.zeros((2, 263), np.float32))
        np.save(folder / "bad_shape.npy", np.zeros((30, 250), np.float32))


def test_run_ik_and_272_record_failures_and_resume(
    fixtures_dir: Path, model_dir: Path, tmp_path: Path
) -> None:
    write_inputs(tmp_path / "in", generated_looking(fixtures_dir))
    cfg = smpl135.IKConfig(iters=10)
    summary = bridge.run_ik(
        tmp_path / "in", tmp_path / "ik", model_dir=model_dir, config=cfg, chunk_clips=2,
        progress=False,
    )  # fmt: skip
    assert summary["count"] == 3 and summary["failed"] == 3
    errors = {f["sid"]: f["error"] for f in summary["failures"]}
    assert "NaN" in errors["bad_nan"] and "at least 4" in errors["bad_short"]
    assert "(T, 263)" in errors["bad_shape"]
    assert 0 < summary["median_mpjpe_mm"] <= summary["p95_frame_mpjpe_mm_mean"] < 100
    on_disk = json.loads((tmp_path / "ik" / "_retarget_summary.json").read_text())
    assert on_disk["count"] == 3 and on_disk["failures"] == summary["failures"]
    with np.load(tmp_path / "ik" / "000001.npz") as data:
        assert {"motion_135", "transl", "global_orient", "body_pose", "target_joints",
                "fitted_joints", "fit_mpjpe_mm"} <= set(data.files)  # fmt: skip
        assert data["motion_135"].shape[1] == 135 and data["motion_135"].dtype == np.float32
        m135, fitted = data["motion_135"], data["fitted_joints"]
    mtime = (tmp_path / "ik" / "000001.npz").stat().st_mtime_ns
    again = bridge.run_ik(
        tmp_path / "in", tmp_path / "ik", model_dir=model_dir, config=cfg, skip_existing=True,
        progress=False,
    )  # fmt: skip
    assert again["processed"] == 0 - 3 + 3 and again["skipped_existing"] == 3
    assert again["count"] == 3 and again["mean_mpjpe_mm"] == summary["mean_mpjpe_mm"]
    assert (tmp_path / "ik" / "000001.npz").stat().st_mtime_ns == mtime

    # 272 from the IK files (their joints), and from the model: the same features
    s272 = bridge.run_272(tmp_path / "ik", tmp_path / "272", progress=False)
    assert s272["count"] == 3 and s272["failed"] == 0
    feats = np.load(tmp_path / "272" / "000001.npy")
    assert feats.shape == (len(m135), 272) and feats.dtype == np.float32
    rest = torch.from_numpy(smpl135.load_smpl_model(model_dir).rest_joints())
    ref = ms272.motion135_to_272(torch.from_numpy(m135).double(), rest).numpy()
    np.testing.assert_allclose(feats, ref, atol=1e-5)
    np.testing.assert_allclose(
        fitted, smpl135.smpl135_joints(torch.from_numpy(m135).double(), rest), atol=1e-5
    )
    np.save(tmp_path / "ik" / "bare.npy", m135)  # a bare motion_135 needs the model
    s272 = bridge.run_272(tmp_path / "ik", tmp_path / "272", skip_existing=True, progress=False)
    assert s272["failed"] == 1 and "--model-dir" in s272["failures"][0]["error"]
    s272 = bridge.run_272(
        tmp_path / "ik", tmp_path / "272", model_dir=model_dir, skip_existing=True, progress=False
    )
    assert s272["failed"] == 0 and s272["count"] == 4
    np.testing.assert_allclose(np.load(tmp_path / "272" / "bare.npy"), ref, atol=1e-5)


def test_cli_bridge_to_ms272_sharded(fixtures_dir: Path, model_dir: Path, tmp_path: Path) -> None:
    write_inputs(tmp_path / "in", generated_looking(fixtures_dir), bad=False)
    out = tmp_path / "out"
    for index in range(2):
        args = ["bridge", "--in-dir", str(tmp_path / "in"), "--out-dir", str(out),
                "--model-dir", str(model_dir), "--iters", "5", "--num-shards", "2",
                "--shard-index", str(index), "--no-progress"]  # fmt: skip
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        shown = json.loads(result.output)
        assert shown["count"] == (2 if index == 0 else 1)
    assert sorted(p.name for p in out.glob("*.npy")) == ["000000.npy", "000001.npy", "000002.npy"]
    assert len(list((out / "smpl135").glob("*.npz"))) == 3
    assert (out / "_retarget_summary_s01_of_02.json").is_file()
    missing = CliRunner().invoke(
        cli,
        [
            "bridge",
            "--in-dir",
            str(tmp_path / "in"),
            "--out-dir",
            str(out),
            "--model-dir",
            str(tmp_path / "nowhere"),
        ],  # fmt: skip
    )
    assert missing.exit_code == 1 and "SMPL_NEUTRAL.npz" in missing.output


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_ik_script_killed_then_resumed(fixtures_dir: Path, model_dir: Path, tmp_path: Path) -> None:
    """A killed run leaves only complete files; the rerun finishes the rest."""
    write_inputs(tmp_path / "in", generated_looking(fixtures_dir, count=4), bad=False)
    cmd = [sys.executable, str(REPO_ROOT / "scripts" / "hml263_to_smpl_ik.py"),
           "--in-dir", str(tmp_path / "in"), "--out-dir", str(tmp_path / "ik"),
           "--model-dir", str(model_dir), "--floor-align", "--refine-iters", "40",
           "--batch-size", "1", "--skip-existing", "--no-progress", "--device", "cpu"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if list((tmp_path / "ik").glob("0*.npz")):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for path in (tmp_path / "ik").glob("*.npz"):  # every final-named file is complete
        with np.load(path) as data:
            assert data["motion_135"].shape[1] == 135
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "ik" / "_retarget_summary.json").read_text())
    assert summary["count"] == 4 and summary["failed"] == 0
    assert not [p for p in (tmp_path / "ik").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("device", DEVICES)
def test_chain_script_three_stages(
    fixtures_dir: Path, model_dir: Path, tmp_path: Path, device: str
) -> None:
    """Stages A (IK, 2 shards) and B (272), then C (MotionStreamer-272 metrics) on a tiny split;
    on CUDA the shards are spread over the visible GPUs (NUM_GPUS)."""
    from hftrainer_mogents.convert.evaluator_ms272 import convert_ms272_evaluator

    write_inputs(tmp_path / "pred263", generated_looking(fixtures_dir), bad=False)
    env = _env() | {
        "PYTHON": sys.executable,
        "PRED263": str(tmp_path / "pred263"),
        "SMPL135": str(tmp_path / "smpl135"),
        "PRED272": str(tmp_path / "pred272"),
        "MODEL_DIR": str(model_dir),
        "NUM_GPUS": "1" if device == "cuda" else "0",
        "NUM_SHARDS": "2",
        "IK_ITERS": "5",
        "DEVICE": device,
        "STAGES": "A B",
    }
    script = REPO_ROOT / "scripts" / "run_mogents_hml263_to_ms272_chain.sh"
    run = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    config = json.loads((tmp_path / "pred272" / "run_config.json").read_text())
    assert config["bridge"] == "hml263_to_smpl135_ik_refine5_to_ms272"
    assert config["num_shards"] == 2
    summary = json.loads((tmp_path / "pred272" / "metrics" / "run_summary.json").read_text())
    assert (summary["n_pred263"], summary["n_smpl135"], summary["n_pred272"]) == (3, 3, 3)
    assert summary["metric_json_ms272"] == ""
    assert (tmp_path / "smpl135" / "_retarget_summary_s00_of_02.json").is_file()
    assert (tmp_path / "pred272" / "_logs" / "ik_s01.log").is_file()

    # stage C on a split whose real motions are the bridged ones
    data = tmp_path / "humanml3d_272"
    for sub in ("motion_data", "texts", "split"):
        (data / sub).mkdir(parents=True)
    ids = sorted(p.stem for p in (tmp_path / "pred272").glob("0*.npy"))
    for k, sid in enumerate(ids):
        shutil.copyfile(tmp_path / "pred272" / f"{sid}.npy", data / "motion_data" / f"{sid}.npy")
        (data / "texts" / f"{sid}.txt").write_text(f"a person walks {k}#x#0.0#0.0\n")
    (data / "split" / "test.txt").write_text("\n".join(ids) + "\n")
    shutil.copytree(fixtures_dir / "ms272_tiny" / "mean_std", data / "mean_std")
    evaluator = convert_ms272_evaluator(
        fixtures_dir / "ms272_tiny" / "evaluator" / "epoch=99.ckpt",
        tmp_path / "evaluator",
        text_model=fixtures_dir / "ms272_tiny" / "evaluator" / "distilbert_tiny",
    )
    env |= {
        "STAGES": "C",
        "N_REPEATS": "2",
        "EVAL_ARGS": f"--ms272-data-root {data} --ms272-evaluator {evaluator} "
        f"--ms272-batch-size 2 --ms272-diversity-times 2 --device {device}",
    }
    run = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads((tmp_path / "pred272" / "metrics" / "run_summary.json").read_text())
    metrics = json.loads(Path(summary["metric_json_ms272"]).read_text())
    assert metrics["n_samples_used"] == 2 and metrics["fid"] == pytest.approx(0.0, abs=1e-3)
