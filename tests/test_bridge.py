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
from hftrainer_mogents.cli.bridge import ik_main
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.jobs import bridge
from hftrainer_mogents.motion import hml263, ms272, smpl135

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

    # 272 from the IK files: by default on the zoo's canon272 skeleton, no body model needed
    s272 = bridge.run_272(tmp_path / "ik", tmp_path / "272", progress=False)
    assert s272["count"] == 3 and s272["failed"] == 0 and s272["skeleton"] == "canon272"
    feats = np.load(tmp_path / "272" / "000001.npy")
    assert feats.shape == (len(m135), 272) and feats.dtype == np.float32
    m = torch.from_numpy(m135).double()
    ref = ms272.motion135_to_272(m).numpy()
    np.testing.assert_allclose(feats, ref, atol=1e-5)
    # on the SMPL skeleton: from the IK files' joints, or from the model: the same features
    rest = torch.from_numpy(smpl135.load_smpl_model(model_dir).rest_joints())
    ref_smpl = ms272.motion135_to_272(m, rest, skeleton="smpl").numpy()
    s_smpl = bridge.run_272(tmp_path / "ik", tmp_path / "272s", skeleton="smpl", progress=False)
    assert s_smpl["skeleton"] == "smpl" and s_smpl["joints_from"] == "npz fitted_joints"
    np.testing.assert_allclose(np.load(tmp_path / "272s" / "000001.npy"), ref_smpl, atol=1e-5)
    assert np.abs(ref_smpl[:, ms272.POSITIONS] - ref[:, ms272.POSITIONS]).max() > 0.01
    np.testing.assert_allclose(
        fitted, smpl135.smpl135_joints(torch.from_numpy(m135).double(), rest), atol=1e-5
    )
    np.save(tmp_path / "ik" / "bare.npy", m135)  # a bare motion_135: canon272 needs no model
    s272 = bridge.run_272(tmp_path / "ik", tmp_path / "272", skip_existing=True, progress=False)
    assert s272["failed"] == 0 and s272["count"] == 4
    np.testing.assert_allclose(np.load(tmp_path / "272" / "bare.npy"), ref, atol=1e-5)
    s_smpl = bridge.run_272(
        tmp_path / "ik", tmp_path / "272s", skeleton="smpl", skip_existing=True, progress=False
    )
    assert s_smpl["failed"] == 1 and "--model-dir" in s_smpl["failures"][0]["error"]
    s_smpl = bridge.run_272(
        tmp_path / "ik", tmp_path / "272s", skeleton="smpl", model_dir=model_dir,
        skip_existing=True, progress=False,
    )  # fmt: skip
    assert s_smpl["failed"] == 0 and s_smpl["count"] == 4 and s_smpl["joints_from"] == "model"
    np.testing.assert_allclose(np.load(tmp_path / "272s" / "bare.npy"), ref_smpl, atol=1e-5)
    with pytest.raises(InvalidInputError, match=r"unknown 272 skeleton 'smplh'"):
        bridge.run_272(tmp_path / "ik", tmp_path / "x", skeleton="smplh", progress=False)


def test_run_ik_zoo_flags(fixtures_dir: Path, model_dir: Path, tmp_path: Path) -> None:
    """auto start, locked root orientation, target lengths, root translation from sidecars."""
    clips = generated_looking(fixtures_dir)
    write_inputs(tmp_path / "in", clips, bad=False)
    anno = tmp_path / "anno.json"
    anno.write_text(json.dumps({"data_list": [{"motion_id": "000000", "num_frames": 50},
                                              {"id": "000002", "num_frames": 61},
                                              {"motion_id": "zzz"}]}))  # fmt: skip
    assert bridge.load_target_lengths(anno) == {"000000": 50, "000002": 61}
    meta = tmp_path / "meta"
    meta.mkdir()
    source = np.stack([np.linspace(0, 1, 7), np.full(7, 0.9), np.linspace(0, -2, 7)], 1)
    np.savez(meta / "000001.npz", source_motion135_transl=source.astype(np.float32))
    cfg = smpl135.IKConfig(iters=10, rotation_init="auto", lock_global_orient=True)
    summary = bridge.run_ik(
        tmp_path / "in", tmp_path / "ik", model_dir=model_dir, config=cfg, progress=False,
        target_lengths=bridge.load_target_lengths(anno), canonical_meta_dir=meta,
        ms272_dir=tmp_path / "272",
    )  # fmt: skip
    assert summary["failed"] == 0 and summary["ms272_skeleton"] == "canon272"
    assert summary["config"]["lock_global_orient"] is True
    model = smpl135.load_smpl_model(model_dir)
    rest = torch.from_numpy(model.rest_joints()[:22]).double()
    for name, clip in clips.items():
        with np.load(tmp_path / "ik" / f"{name}.npz") as data:
            out = {k: data[k] for k in data.files}
        frames = {"000000": 50, "000002": 61}.get(name, round(len(clip) * 1.5))
        assert out["motion_135"].shape == (frames, 135)
        assert str(out["rotation_init"]) == "hml263"  # auto on 263 input
        # the locked root keeps HumanML3D's start: the same as a fit with no steps
        start = smpl135.fit_clips(
            [smpl135.prepare_clip(clip, smpl135.IKConfig(iters=0, rotation_init="hml263"),
                                  target_length=frames)],
            model, smpl135.IKConfig(iters=0, rotation_init="hml263"),
        )[0]  # fmt: skip
        np.testing.assert_allclose(out["global_orient"], start.global_orient, atol=1e-6)
        assert np.abs(out["body_pose"] - start.body_pose).max() > 1e-4  # the body did move
        restored = bool(out["root_translation_restored"])
        assert restored == (name == "000001")
        if restored:
            grid = np.linspace(0, 6, frames)
            want = np.stack([np.interp(grid, np.arange(7), source[:, k]) for k in range(3)], 1)
            np.testing.assert_allclose(out["transl"], want, atol=1e-6)
            np.testing.assert_allclose(out["motion_135"][:, :3], want, atol=1e-6)
            assert np.abs(out["canonical_transl"] - want).max() > 0.01
            fk = smpl135.smpl135_joints(torch.from_numpy(out["motion_135"]).double(), rest)
            np.testing.assert_allclose(out["fitted_joints"], fk, atol=1e-5)
        else:
            np.testing.assert_array_equal(out["transl"], out["canonical_transl"])
        feats = np.load(tmp_path / "272" / f"{name}.npy")
        m = torch.from_numpy(out["motion_135"]).double()
        np.testing.assert_allclose(feats, ms272.motion135_to_272(m).numpy(), atol=1e-5)
    with pytest.raises(InvalidInputError, match=r"unknown restore_root_translation 'x'"):
        bridge.run_ik(tmp_path / "in", tmp_path / "ik2", model_dir=model_dir,
                      restore_root_translation="x", progress=False)  # fmt: skip


def test_auto_start_on_joint_input_is_the_joints_ik(fixtures_dir: Path, model_dir: Path) -> None:
    with np.load(fixtures_dir / "ms272_tiny" / "motions" / "short_spin.npz") as data:
        joints = data["fk_joints22_20fps"]
    cfg = smpl135.IKConfig(iters=0, rotation_init="auto")
    res = smpl135.fit_clips(
        [smpl135.prepare_clip(joints, cfg)], smpl135.load_smpl_model(model_dir), cfg
    )[0]
    assert res.rotation_init == "joints"


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


def test_cli_bridge_and_scripts_zoo_flags(
    fixtures_dir: Path, model_dir: Path, tmp_path: Path
) -> None:
    from hftrainer_mogents.cli.bridge import convert272_main, ik_main

    write_inputs(tmp_path / "in", generated_looking(fixtures_dir, count=2), bad=False)
    anno = tmp_path / "anno.json"
    anno.write_text(json.dumps({"000001": {"num_frames": 40}}))
    args = ["bridge", "--in-dir", str(tmp_path / "in"), "--out-dir", str(tmp_path / "out"),
            "--model-dir", str(model_dir), "--iters", "3", "--no-progress",
            "--rotation-init", "auto", "--lock-global-orient", "--skeleton", "smpl",
            "--target-length-anno", str(anno)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["ms272_skeleton"] == "smpl" and shown["target_lengths"] == 1
    assert np.load(tmp_path / "out" / "000001.npy").shape == (40, 272)
    with np.load(tmp_path / "out" / "smpl135" / "000001.npz") as data:
        m135, fitted = data["motion_135"], data["fitted_joints"]
        assert str(data["rotation_init"]) == "hml263"
    rot = smpl135.motion135_to_smpl_params(torch.from_numpy(m135).double())[1]
    np.testing.assert_allclose(
        np.load(tmp_path / "out" / "000001.npy"),
        ms272.encode_272(torch.from_numpy(fitted).double(), rot).numpy(),
        atol=1e-5,
    )
    # the zoo's scripts: auto is their default, the 272 skeleton canon272
    argv = ["--in-dir", str(tmp_path / "in"), "--out-dir", str(tmp_path / "ik"),
            "--model-dir", str(model_dir), "--refine-iters", "2", "--no-progress",
            "--target-length-anno", str(anno), "--lock-global-orient"]  # fmt: skip
    assert ik_main(argv) == 0
    summary = json.loads((tmp_path / "ik" / "_retarget_summary.json").read_text())
    assert summary["config"]["rotation_init"] == "auto"
    assert summary["config"]["lock_global_orient"] is True
    assert {it["rotation_init"] for it in summary["items"]} == {"hml263"}
    assert convert272_main(["--in-dir", str(tmp_path / "ik"), "--out-dir", str(tmp_path / "b"),
                            "--no-progress"]) == 0  # fmt: skip
    s272 = json.loads((tmp_path / "b" / "_convert272_summary.json").read_text())
    assert s272["skeleton"] == "canon272" and s272["count"] == 2
    assert np.load(tmp_path / "b" / "000001.npy").shape == (40, 272)


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
    assert config["ms272_skeleton"] == "canon272" and config["rotation_init"] == "auto"
    s272 = json.loads((tmp_path / "pred272" / "_convert272_summary.json").read_text())
    assert s272["skeleton"] == "canon272"
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


def test_chain_script_bridged_reference(
    fixtures_dir: Path, model_dir: Path, tmp_path: Path
) -> None:
    """REFERENCE=bridged: the ground truth goes through the same bridge (stage G) and stage C
    scores against it; predictions equal to the ground truth then score FID 0, while the raw
    reference (other 272 files) does not."""
    from hftrainer_mogents.convert.evaluator_ms272 import convert_ms272_evaluator

    clips = generated_looking(fixtures_dir)
    write_inputs(tmp_path / "pred263", clips, bad=False)
    write_inputs(tmp_path / "gt263", clips, bad=False)  # a generator that reproduces the data
    ids = sorted(clips)
    (tmp_path / "ids.txt").write_text("\n".join(ids[:2]) + "\n")
    data = tmp_path / "humanml3d_272"
    for sub in ("motion_data", "texts", "split"):
        (data / sub).mkdir(parents=True)
    rng = np.random.default_rng(1)
    for k, sid in enumerate(ids):  # the raw reference: other motions of the right length
        frames = round(len(clips[sid]) * 1.5)
        raw = rng.normal(0, 1, size=(frames, 272)).astype(np.float32)
        np.save(data / "motion_data" / f"{sid}.npy", raw)
        (data / "texts" / f"{sid}.txt").write_text(f"a person walks {k}#x#0.0#0.0\n")
    (data / "split" / "test.txt").write_text("\n".join(ids[:2]) + "\n")
    shutil.copytree(fixtures_dir / "ms272_tiny" / "mean_std", data / "mean_std")
    evaluator = convert_ms272_evaluator(
        fixtures_dir / "ms272_tiny" / "evaluator" / "epoch=99.ckpt",
        tmp_path / "evaluator",
        text_model=fixtures_dir / "ms272_tiny" / "evaluator" / "distilbert_tiny",
    )
    env = _env() | {
        "PYTHON": sys.executable,
        "PRED263": str(tmp_path / "pred263"),
        "SMPL135": str(tmp_path / "smpl135"),
        "PRED272": str(tmp_path / "pred272"),
        "GT263": str(tmp_path / "gt263"),
        "GT_IDS": str(tmp_path / "ids.txt"),
        "GT_DATA_ROOT": str(data),
        "GT_SMPL135": str(tmp_path / "gt_smpl135"),
        "GT272": str(tmp_path / "gt272"),
        "MODEL_DIR": str(model_dir),
        "NUM_GPUS": "0",
        "NUM_SHARDS": "2",
        "IK_ITERS": "5",
        "DEVICE": "cpu",
        "N_REPEATS": "2",
        "REFERENCE": "bridged",
        "EVAL_ARGS": f"--ms272-data-root {data} --ms272-evaluator {evaluator} "
        "--ms272-batch-size 2 --ms272-diversity-times 2 --device cpu",
    }
    script = REPO_ROOT / "scripts" / "run_mogents_hml263_to_ms272_chain.sh"
    run = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert sorted(p.stem for p in (tmp_path / "gt272").glob("0*.npy")) == ids[:2]  # GT_IDS
    for sid in ids[:2]:  # the same bridge on the same clips: the same 272 files
        np.testing.assert_array_equal(
            np.load(tmp_path / "gt272" / f"{sid}.npy"), np.load(tmp_path / "pred272" / f"{sid}.npy")
        )
    ref_root = tmp_path / "gt272" / "_humanml3d_272_bridged"
    assert (ref_root / "motion_data").resolve() == (tmp_path / "gt272").resolve()
    assert json.loads((ref_root / "reference.json").read_text())["bridge_summary"]["skeleton"] == (
        "canon272"
    )
    config = json.loads((tmp_path / "pred272" / "run_config.json").read_text())
    summary = json.loads((tmp_path / "pred272" / "metrics" / "run_summary.json").read_text())
    assert config["reference"] == summary["reference"] == "bridged"
    assert str(ref_root) in summary["reference_desc"]
    bridged = json.loads(Path(summary["metric_json_ms272"]).read_text())
    assert bridged["n_samples_used"] == 2 and bridged["fid"] == pytest.approx(0.0, abs=1e-3)
    # the raw reference: the same predictions against the dataset's own (other) 272 files
    env |= {"REFERENCE": "raw", "STAGES": "C"}
    run = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads((tmp_path / "pred272" / "metrics" / "run_summary.json").read_text())
    assert summary["reference"] == "raw"
    raw = json.loads(Path(summary["metric_json_ms272"]).read_text())
    assert raw["fid"] > 1e-2


def test_batch_jobs_with_failed_clips_exit_non_zero_unless_allowed(
    fixtures_dir: Path, model_dir: Path, tmp_path: Path
) -> None:
    """Failed clips are counted in the summary and give exit status 1; --allow-failures gives 0."""
    write_inputs(tmp_path / "in", generated_looking(fixtures_dir))  # three bad clips among them
    common = ["--in-dir", str(tmp_path / "in"), "--model-dir", str(model_dir), "--iters", "2"]
    failing = CliRunner().invoke(
        cli, ["bridge", *common, "--out-dir", str(tmp_path / "a"), "--no-progress"]
    )
    assert failing.exit_code == 1, failing.output
    assert json.loads(failing.stdout)["failed"] == 3
    assert "3 clip(s) failed" in failing.stderr and "--allow-failures" in failing.stderr
    allowed = CliRunner().invoke(
        cli,
        ["bridge", *common, "--out-dir", str(tmp_path / "b"), "--no-progress", "--allow-failures"],
    )
    assert allowed.exit_code == 0, allowed.output
    argv = ["--in-dir", str(tmp_path / "in"), "--model-dir", str(model_dir), "--refine-iters", "2"]
    assert ik_main([*argv, "--out-dir", str(tmp_path / "c"), "--no-progress"]) == 1
    assert (
        ik_main([*argv, "--out-dir", str(tmp_path / "d"), "--no-progress", "--allow-failures"]) == 0
    )


def test_resumed_bridge_jobs_redo_damaged_outputs(
    fixtures_dir: Path, model_dir: Path, tmp_path: Path, caplog
) -> None:
    """--skip-existing keeps only whole outputs: a truncated .npz or an empty/NaN .npy is redone."""
    write_inputs(tmp_path / "in", generated_looking(fixtures_dir), bad=False)
    cfg = smpl135.IKConfig(iters=2)
    first = bridge.run_ik(tmp_path / "in", tmp_path / "ik", model_dir=model_dir, config=cfg,
                          progress=False)  # fmt: skip
    assert first["failed"] == 0
    npz = sorted((tmp_path / "ik").glob("*.npz"))
    npz[0].write_bytes(npz[0].read_bytes()[:100])
    with caplog.at_level("WARNING", logger="hftrainer_mogents.jobs.bridge"):
        again = bridge.run_ik(tmp_path / "in", tmp_path / "ik", model_dir=model_dir, config=cfg,
                              skip_existing=True, progress=False)  # fmt: skip
    assert again["skipped_existing"] == len(npz) - 1 and f"{npz[0]} is not a whole output" in (
        caplog.text
    )
    with np.load(npz[0]) as data:
        assert data["motion_135"].shape[1] == 135
    s272 = bridge.run_272(tmp_path / "ik", tmp_path / "272", progress=False)
    outs = sorted((tmp_path / "272").glob("*.npy"))
    outs[0].write_bytes(b"")
    bad = np.load(outs[1])
    bad[0, 0] = np.nan
    np.save(outs[1], bad)
    redo = bridge.run_272(tmp_path / "ik", tmp_path / "272", skip_existing=True, progress=False)
    assert redo["count"] == s272["count"] and redo["failed"] == 0
    for path in outs[:2]:
        assert np.isfinite(np.load(path)).all() and np.load(path).shape[1] == 272


def test_bad_ik_settings_are_refused_naming_the_flag(
    fixtures_dir: Path, model_dir: Path, tmp_path: Path
) -> None:
    """--lr nan gave a traceback and --iters -5 --lr nan exited 0 with unrefined fits: every IK
    setting is checked before any work, the CLI and the zoo script naming their flag."""
    write_inputs(tmp_path / "in", generated_looking(fixtures_dir, count=1), bad=False)
    out = tmp_path / "out"
    base = ["bridge", "--in-dir", str(tmp_path / "in"), "--out-dir", str(out),
            "--model-dir", str(model_dir), "--no-progress"]  # fmt: skip
    cases = [
        (["--lr", "nan"], "'--lr' / '--refine-lr'"),
        (["--iters", "-5", "--lr", "nan"], "'--iters' / '--refine-iters'"),
        (["--refine-lr", "0"], "'--lr' / '--refine-lr'"),
        (["--lr", "inf"], "'--lr' / '--refine-lr'"),
        (["--smooth-weight", "-1"], "'--smooth-weight'"),
        (["--pose-keep-weight", "nan"], "'--pose-keep-weight'"),
        (["--source-fps", "0"], "'--source-fps'"),
        (["--target-fps", "-30"], "'--target-fps'"),
    ]
    for flags, named in cases:
        result = CliRunner().invoke(cli, [*base, *flags])
        assert result.exit_code == 2, (flags, result.output)
        assert named in result.output and "Traceback" not in result.output, result.output
        assert not out.exists(), flags
    ik = ["--in-dir", str(tmp_path / "in"), "--out-dir", str(out), "--model-dir", str(model_dir),
          "--refine-lr", "nan", "--no-progress"]  # fmt: skip
    assert ik_main(ik) == 2 and not out.exists()
    # the API: typed errors naming the setting, also for a config changed after construction
    with pytest.raises(smpl135.IKSettingError, match=r"IKConfig\.lr must be a finite number > 0"):
        smpl135.IKConfig(lr=float("nan"))
    for bad in ({"iters": -5}, {"iters": 2.5}, {"iters": True}, {"batch_frames": 0},
                {"pose_smooth_ratio": float("inf")}, {"resample_mode": "cubic"},
                {"rotation_init": "pose"}):  # fmt: skip
        with pytest.raises(InvalidInputError, match=f"IKConfig.{next(iter(bad))}"):
            smpl135.IKConfig(**bad)
    cfg = smpl135.IKConfig(iters=0)
    cfg.lr = float("nan")
    with pytest.raises(smpl135.IKSettingError, match="lr"):
        bridge.run_bridge(tmp_path / "in", out, to="smpl135", model_dir=model_dir, config=cfg)
    assert not out.exists()
