"""With the public hftrainer host installed: its registries build our four classes from config
dicts, its own base-class code runs on them, its calling conventions work, and registration needs
no hand call. Skipped where the host is not installed (CI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

hftrainer = pytest.importorskip("hftrainer")

from hftrainer.evaluation.base_evaluator import BaseEvaluator  # noqa: E402
from hftrainer.models.base_model_bundle import ModelBundle  # noqa: E402
from hftrainer.pipelines.base_pipeline import BasePipeline  # noqa: E402
from hftrainer.registry import EVALUATORS, MODEL_BUNDLES, PIPELINES  # noqa: E402
from hftrainer.utils.checkpoint_utils import load_checkpoint  # noqa: E402

import hftrainer_mogents.zoo as zoo  # noqa: E402
from hftrainer_mogents.bundle import MoGenTSBundle  # noqa: E402
from hftrainer_mogents.evaluation.hml263 import HumanML263Evaluator  # noqa: E402
from hftrainer_mogents.evaluation.ms272 import MotionStreamer272Evaluator  # noqa: E402
from hftrainer_mogents.pipeline import MoGenTSPipeline  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TEXTS = ["a person walks forward", "someone jumps twice"]
LENGTHS = [48, 64]


@pytest.fixture(scope="module", autouse=True)
def registered():
    zoo.load_plugins()  # what a host runs once (idempotent: may have happened already)


@pytest.fixture(scope="module")
def config_doc(tiny_artifact: Path) -> dict:
    return json.loads((tiny_artifact / "mogents_config.json").read_text())


@pytest.fixture(scope="module")
def pretrained(tiny_artifact: Path) -> MoGenTSBundle:
    return MoGenTSBundle.from_pretrained(tiny_artifact)


def _motions(pipe: MoGenTSPipeline) -> list[np.ndarray]:
    pipe.set_progress_bar_config(disable=True)
    return pipe.infer_t2m(TEXTS, LENGTHS, seed=3)


def test_the_host_registries_hold_our_classes():
    assert MODEL_BUNDLES.get("MoGenTSBundle") is MoGenTSBundle
    assert PIPELINES.get("MoGenTSPipeline") is MoGenTSPipeline
    assert EVALUATORS.get("HumanML263Evaluator") is HumanML263Evaluator
    assert EVALUATORS.get("MotionStreamer272Evaluator") is MotionStreamer272Evaluator
    assert zoo.load_plugins() == []  # idempotent


def test_registries_build_bundle_and_pipeline_from_config_dicts(config_doc, pretrained):
    bundle = MODEL_BUNDLES.build(dict(type="MoGenTSBundle", config=config_doc))
    assert type(bundle) is MoGenTSBundle and bundle.config == pretrained.config
    pipe = PIPELINES.build({"type": "MoGenTSPipeline", "bundle": bundle})
    assert type(pipe) is MoGenTSPipeline and pipe.bundle is bundle
    # tools/infer.py's way: the class from the registry, then from_config(model_cfg)
    again = MODEL_BUNDLES.get("MoGenTSBundle").from_config(
        dict(type="MoGenTSBundle", config=config_doc)
    )
    assert again.config == pretrained.config
    # the seed's builder: PIPELINES.build({**cfg.pipeline, "bundle": MODEL_BUNDLES.build(cfg.model)})
    built = PIPELINES.build(
        {
            "type": "MoGenTSPipeline",
            "cuda_graphs": False,
            "bundle": MODEL_BUNDLES.build(dict(type="MoGenTSBundle", config=config_doc)),
        }
    )
    assert not built.cuda_graphs.enabled


def test_isinstance_against_the_host_bases(pretrained, tiny_pipeline):
    assert isinstance(tiny_pipeline, BasePipeline)
    assert issubclass(HumanML263Evaluator, BaseEvaluator)
    assert issubclass(MotionStreamer272Evaluator, BaseEvaluator)
    # ModelBundle is not an ABC: only inheriting it would make this true, which would import
    # the host in every process that imports our bundle (README "Inside the host")
    assert not isinstance(pretrained, ModelBundle)


def test_the_hosts_own_bundle_code_agrees_with_ours(pretrained, config_doc):
    """ModelBundle's functions, run on our bundle, give what our methods give."""
    fresh = MoGenTSBundle.from_config(config_doc)
    assert ModelBundle.checkpoint_metadata(fresh) == fresh.checkpoint_metadata()
    assert [id(p) for p in ModelBundle.trainable_parameters(fresh)] == [
        id(p) for p in fresh.trainable_parameters()
    ]
    assert [n for n, _ in ModelBundle.trainable_named_parameters(fresh)] == [
        n for n, _ in fresh.trainable_named_parameters()
    ]
    theirs, ours = ModelBundle.state_dict_to_save(pretrained), pretrained.state_dict_to_save()
    assert list(theirs) == list(ours)
    for key in ours:
        if key == "__hftrainer_meta__":
            assert theirs[key] == ours[key]
            continue
        assert theirs[key].keys() == ours[key].keys()
        assert all(torch.equal(theirs[key][k], ours[key][k]) for k in ours[key])
    # the host's loader on our checkpoint, and ours on the host's
    by_host = MoGenTSBundle.from_config(config_doc)
    ModelBundle.load_state_dict_selective(by_host, pretrained.state_dict_to_save())
    by_us = MoGenTSBundle.from_config(config_doc)
    by_us.load_state_dict_selective(ModelBundle.state_dict_to_save(pretrained))
    expected = pretrained.state_dict()
    for loaded in (by_host, by_us):
        got = loaded.state_dict()
        assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_the_hosts_pipeline_conventions(
    tiny_artifact, tiny_pipeline, pretrained, config_doc, tmp_path
):
    reference = _motions(tiny_pipeline)
    pipe = MoGenTSPipeline.from_pretrained(
        MoGenTSBundle, str(tiny_artifact), bundle_kwargs={"device": "cpu"}
    )
    assert all(np.array_equal(a, b) for a, b in zip(_motions(pipe), reference))
    # the host runner's checkpoint folder: model.pt of state_dict_to_save()
    folder = tmp_path / "checkpoint-iter_1"
    folder.mkdir()
    torch.save(pretrained.state_dict_to_save(), folder / "model.pt")
    assert set(load_checkpoint(str(folder))) == set(pretrained.state_dict_to_save())
    restored = MoGenTSPipeline.from_checkpoint(
        MoGenTSBundle, dict(type="MoGenTSBundle", config=config_doc), str(folder)
    )
    assert all(np.array_equal(a, b) for a, b in zip(_motions(restored), reference))
    # the host's own BasePipeline.from_checkpoint / from_config, bound to our class
    hosts = BasePipeline.from_checkpoint.__func__(
        MoGenTSPipeline, MoGenTSBundle, dict(type="MoGenTSBundle", config=config_doc), str(folder)
    )
    assert all(np.array_equal(a, b) for a, b in zip(_motions(hosts), reference))
    untrained = BasePipeline.from_config.__func__(MoGenTSPipeline, MoGenTSBundle, config_doc)
    assert untrained.bundle.config == pretrained.config
    # ours and the zoo's one-argument form still works beside them
    one = MoGenTSPipeline.from_pretrained(tiny_artifact, device="cpu")
    assert all(np.array_equal(a, b) for a, b in zip(_motions(one), reference))


@pytest.fixture(scope="module")
def hml_fx(fixtures_dir: Path) -> Path:
    from conftest import require_fixture

    return require_fixture(fixtures_dir / "hml263_eval_tiny")


@pytest.fixture(scope="module")
def hml_dir(hml_fx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hftrainer_mogents.convert.evaluator_hml263 import convert_hml263_evaluator

    out = tmp_path_factory.mktemp("evaluator") / "hml263"
    return convert_hml263_evaluator(hml_fx / "checkpoints", out, glove_dir=hml_fx / "glove")


def test_evaluators_built_by_the_registry_serve_the_runner_loop(
    hml_fx, hml_dir, fixtures_dir, tmp_path
):
    settings = {"n_repeats": 2, "diversity_times": 20, "seed": 5}
    ev = EVALUATORS.build(
        dict(
            type="HumanML263Evaluator",
            ckpt_dir=str(hml_dir),
            dataset_root=str(hml_fx / "dataset" / "HumanML3D"),
            device="cpu",
            evaluate_kwargs=settings,
        )
    )
    assert type(ev) is HumanML263Evaluator and isinstance(ev, BaseEvaluator)
    preds = dict(np.load(hml_fx / "pred_motions.npz"))
    keys = sorted(preds)
    outputs = [
        {"keys": keys[i : i + 8], "motions": [preds[k] for k in keys[i : i + 8]]}
        for i in range(0, len(keys), 8)
    ]
    # AccelerateRunner.val(): reset, process each gathered output, metrics.update(compute())
    ev.reset()
    for output in outputs:
        ev.process(output)
    metrics = {}
    metrics.update(ev.compute())
    direct = ev.evaluate(preds, progress=False, **settings)
    assert metrics["fid"] == direct["fid"]["mean"]
    assert all(isinstance(v, float) for v in metrics.values())
    # the host's own compute_from_outputs on our evaluator
    assert BaseEvaluator.compute_from_outputs(ev, outputs) == metrics

    from conftest import require_fixture

    fx = require_fixture(fixtures_dir / "ms272_tiny")
    from hftrainer_mogents.convert.evaluator_ms272 import convert_ms272_evaluator

    folder = convert_ms272_evaluator(
        fx / "evaluator" / "epoch=99.ckpt",
        tmp_path / "ms272",
        text_model=fx / "evaluator" / "distilbert_tiny",
        mean_std=fx / "mean_std",
    )
    ms = EVALUATORS.build(
        dict(type="MotionStreamer272Evaluator", evaluator_ckpt=str(folder), device="cpu")
    )
    assert type(ms) is MotionStreamer272Evaluator and isinstance(ms, BaseEvaluator)


def _run(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_no_hand_call_needed_inside_the_host():
    """A fresh process: the host, then our zoo package; or the zoo first and a call through it
    after the host started."""
    first = _run(
        """
        import json
        import hftrainer
        from hftrainer.registry import MODEL_BUNDLES, PIPELINES, EVALUATORS
        import hftrainer_mogents.zoo
        print(json.dumps([MODEL_BUNDLES.get("MoGenTSBundle").__name__,
                          PIPELINES.get("MoGenTSPipeline").__name__,
                          EVALUATORS.get("HumanML263Evaluator").__name__]))
        """
    )
    assert first == ["MoGenTSBundle", "MoGenTSPipeline", "HumanML263Evaluator"]
    later = _run(
        """
        import json, sys
        import hftrainer_mogents
        hftrainer_mogents.list_models()
        before = "hftrainer" in sys.modules
        import hftrainer
        from hftrainer.registry import MODEL_BUNDLES
        hftrainer_mogents.list_models()
        print(json.dumps({"before": before, "bundle": MODEL_BUNDLES.get("MoGenTSBundle") is not None}))
        """
    )
    assert later == {"before": False, "bundle": True}
