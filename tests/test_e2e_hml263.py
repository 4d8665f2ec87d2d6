"""End to end with the real pipeline: the tiny MoGenTS artifact generates the HumanML3D test split
(scripts/mogents_t2m_h3d263.py) and the tiny official-layout evaluator scores it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DEVICES
from hml263_standin import make_humanml3d

from hftrainer_mogents.cli import cli
from hftrainer_mogents.convert.evaluator_hml263 import convert_hml263_evaluator
from hftrainer_mogents.evaluation.hml263.evaluator import HumanML263Evaluator

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def evaluator_dir(fixtures_dir, tmp_path_factory):
    from conftest import require_fixture

    fx = require_fixture(fixtures_dir / "hml263_eval_tiny")
    return convert_hml263_evaluator(
        fx / "checkpoints", tmp_path_factory.mktemp("ev") / "hml263", glove_dir=fx / "glove"
    )


@pytest.fixture(scope="module")
def dataset(evaluator_dir, tmp_path_factory):
    ev = HumanML263Evaluator.from_pretrained(evaluator_dir, device="cpu")
    return make_humanml3d(tmp_path_factory.mktemp("data") / "HumanML3D", ev.mean, ev.std)


@pytest.mark.parametrize("device", DEVICES)
def test_generate_split_with_the_pipeline_then_evaluate(
    tiny_artifact, dataset, evaluator_dir, tmp_path, device
):
    pred = tmp_path / "pred263"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    gen = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "mogents_t2m_h3d263.py"),
            "--model_path",
            str(tiny_artifact),
            "--data_root",
            str(dataset),
            "--out_dir",
            str(pred),
            "--seed",
            "0",
            "--time_steps",
            "4",
            "--batch_size",
            "16",
            "--device",
            device,
            "--mm_samples",
            "2",
            "--mm_repeats",
            "3",
            "--no_progress",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert gen.returncode == 0, gen.stderr
    plan = json.loads((pred / "generation.json").read_text())
    files = sorted(p for p in pred.glob("*.npy"))
    assert files and len(files) == len(plan["items"])
    for path in files[:5]:
        motion = np.load(path)
        assert motion.ndim == 2 and motion.shape[1] == 263 and motion.shape[0] % 4 == 0
        assert np.isfinite(motion).all()
    result = CliRunner(env=env).invoke(
        cli,
        [
            "evaluate",
            "hml263",
            "--pred-dir",
            str(pred),
            "--dataset-root",
            str(dataset),
            "--evaluator",
            str(evaluator_dir),
            "--n-repeats",
            "2",
            "--diversity-times",
            "10",
            "--device",
            device,
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((pred / "metrics" / "verify_hml263.json").read_text())
    assert report["skipped_no_pred"] == 0
    for key in ("fid", "matching_score", "diversity", "r_precision", "multimodality"):
        assert key in report
    assert np.isfinite(report["fid"]["mean"])
    assert (pred / "metrics" / "verify_hml263.md").is_file()


def test_benchmark_entry_runs_from_its_spec(tiny_artifact, evaluator_dir, tmp_path, caplog):
    """What a zoo runner does, knowing only the spec, a dataset root, an evaluator folder, the
    model artifact, an output folder and a seed: no other argument."""
    import logging

    from hftrainer_mogents.evaluation.hml263.report import ZOO_KEYS
    from hftrainer_mogents.zoo import list_benchmarks
    from hftrainer_mogents.zoo.specs import BENCHMARK_ENTRY_ARGS, resolve

    ev = HumanML263Evaluator.from_pretrained(evaluator_dir, device="cpu")
    data = make_humanml3d(tmp_path / "HumanML3D", ev.mean, ev.std, n_clips=36)
    spec = {b.name: b for b in list_benchmarks()}["mogents-humanml3d-test"]
    assert "seed" not in spec.generation_kwargs and "batch_size" not in spec.generation_kwargs
    entry = resolve(spec.entry)
    runner_args = {
        "dataset_root": data,
        "evaluator_dir": evaluator_dir,
        "out_dir": tmp_path / "run",
        "model_path": tiny_artifact,
        "seed": 0,
    }
    assert tuple(runner_args) == BENCHMARK_ENTRY_ARGS
    with caplog.at_level(logging.WARNING):
        out = entry(spec, **runner_args)
    # the protocol's sizes adapted to the small split, each with a warning
    assert "multimodality texts instead of 96" in caplog.text
    assert "diversity uses 32 pairs instead of 100" in caplog.text
    summary = out["generation"]
    assert summary["failed"] == [] and summary["written"] > 0
    plan = json.loads((tmp_path / "run" / "generation.json").read_text())
    assert plan["generation_kwargs"] == dict(spec.generation_kwargs)
    assert (plan["seed"], plan["batch_size"], plan["mm_samples"]) == (0, spec.batch_size, 1)
    report = json.loads((tmp_path / "run" / "metrics" / "verify_hml263.json").read_text())
    assert set(report) >= set(ZOO_KEYS)
    assert report["n_repeats"] == 20 and report["skipped_no_pred"] == 0
    assert np.isfinite(report["fid"]["mean"]) and report["multimodality"]["mean"] > 0
    assert report["config"]["diversity_times"] == 32

    # spec.run checks what a runner passes, and resumes the finished run without generating
    with pytest.raises(Exception, match="missing \\['evaluator_dir'\\]"):
        spec.run(dataset_root=data, out_dir=tmp_path / "run")
    again = spec.run(**runner_args)
    assert again["generation"]["written"] == 0
    assert again["metrics"]["repeats"] == out["metrics"]["repeats"]


def test_split_script_raw_weights_root_and_anno_fallback(
    tiny_root, evaluator_dir, tmp_path, monkeypatch
):
    """The zoo's script flags: --model_path a raw official weights root with --length_root,
    --anno_file / --anno_output_fps for ids the dataset lacks."""
    import shutil

    from hftrainer_mogents.cli.split_generation import generation_main

    # the raw mode takes CLIP from its usual cache location, ~/.cache/clip/ViT-B-32.pt
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / ".cache" / "clip").mkdir(parents=True)
    shutil.copy(
        tiny_root / "clip" / "ViT-B-32-tiny.pt",
        tmp_path / "home" / ".cache" / "clip" / "ViT-B-32.pt",
    )
    ev = HumanML263Evaluator.from_pretrained(evaluator_dir, device="cpu")
    data = make_humanml3d(tmp_path / "HumanML3D", ev.mean, ev.std, n_clips=4)
    ids = tmp_path / "ids.txt"
    ids.write_text("000000\n000001\nanno_a\nanno_b\nanno_c\n")
    (tmp_path / "captions").mkdir()
    (tmp_path / "captions" / "a.json").write_text(
        json.dumps({"macro": [], "meso": ["  ", "a person waves"], "micro": ["x"]})
    )
    anno = {
        "data_list": {
            "anno_a": {
                "hierarchical_caption_path": "captions/a.json",
                "fps": 30,
                "num_frames": 150,
            },
            "anno_b": {"hierarchical_caption_path": "captions/none.json", "num_frames": 90},
        }
    }
    (tmp_path / "anno.json").write_text(json.dumps(anno))
    out = tmp_path / "pred"
    argv = [
        "--model_path",
        str(tiny_root / "logs"),
        "--length_root",
        str(tiny_root / "checkpoints"),
    ]
    argv += ["--data_root", str(data), "--id_file", str(ids), "--out_dir", str(out)]
    argv += ["--anno_file", str(tmp_path / "anno.json"), "--anno_output_fps", "20"]
    argv += ["--mm_samples", "0", "--time_steps", "2", "--device", "cpu", "--no_progress"]
    assert generation_main(argv) == 0
    plan = json.loads((out / "generation.json").read_text())
    # anno_a: 150 frames at 30 fps -> 100 at 20 fps; anno_b has no caption file, anno_c no record
    assert plan["items"]["anno_a"] == {"caption_index": 0, "text": "a person waves", "length": 100}
    assert "anno_b" not in plan["items"] and "anno_c" not in plan["items"]
    assert np.load(out / "anno_a.npy").shape == (100, 263)
    assert {"000000", "000001"} <= set(plan["items"])
