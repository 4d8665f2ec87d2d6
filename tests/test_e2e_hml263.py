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
