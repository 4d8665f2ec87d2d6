"""The host's base-class contract on our classes, without the host: the bundle's checkpoint and
parameter methods, the pipeline's calling conventions, the evaluators' reset/process/compute loop
and the flat metrics."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hftrainer_mogents.bundle import MoGenTSBundle
from hftrainer_mogents.errors import (
    ArtifactFormatError,
    ArtifactNotFoundError,
    HostNotInstalledError,
    InvalidInputError,
)
from hftrainer_mogents.host_compat import (
    BUNDLE_PARAMS_KEY,
    META_KEY,
    flatten_metrics,
    load_host_checkpoint,
)
from hftrainer_mogents.pipeline import MoGenTSPipeline

NETWORKS = [
    "vq_model",
    "mask_transformer_aux",
    "mask_transformer_ts",
    "res_transformer_aux",
    "res_transformer_ts",
    "length_estimator",
]
TEXTS = ["a person walks forward", "someone jumps twice"]
LENGTHS = [48, 64]


@pytest.fixture(scope="module")
def pretrained(tiny_artifact: Path) -> MoGenTSBundle:
    return MoGenTSBundle.from_pretrained(tiny_artifact)


def _same_tensors(a: MoGenTSBundle, b: MoGenTSBundle) -> list[str]:
    """Names of the tensors that differ between two bundles (empty: identical)."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return [k for k in sa if not torch.equal(sa[k], sb[k])]


def _motions(pipe: MoGenTSPipeline) -> list[np.ndarray]:
    pipe.set_progress_bar_config(disable=True)
    return pipe.infer_t2m(TEXTS, LENGTHS, seed=3)


# ---------------------------------------------------------------- bundle


def test_module_roles_and_checkpoint_metadata(pretrained):
    assert pretrained._trainable_modules == NETWORKS
    assert pretrained._frozen_modules == ["text_encoder"]
    assert pretrained._save_ckpt_modules == [*NETWORKS, "text_encoder"]
    meta = pretrained.checkpoint_metadata()
    assert meta["format_version"] == 2
    assert list(meta["modules"]) == [*NETWORKS, "text_encoder"]
    assert meta["modules"]["vq_model"] == {
        "checkpoint_format": "full",
        "is_lora": False,
        "trainable": True,
    }
    assert meta["modules"]["text_encoder"]["trainable"] is False
    assert pretrained.get_module_checkpoint_format("vq_model") == "full"
    assert not pretrained.is_lora_module("vq_model")
    assert pretrained.get_module_build_cfg("vq_model") == {}
    assert pretrained.get_module_pretrained_path("vq_model") is None


def test_trainable_parameters(pretrained):
    # a loaded artifact is frozen for inference: nothing for an optimizer
    assert pretrained.trainable_parameters() == []
    fresh = MoGenTSBundle.from_config(pretrained.config)
    params = fresh.trainable_parameters()
    expected = [p for n in NETWORKS for p in getattr(fresh, n).parameters() if p.requires_grad]
    assert [id(p) for p in params] == [id(p) for p in expected] and params
    text_ids = {id(p) for p in fresh.text_encoder.parameters()}
    assert not text_ids & {id(p) for p in params}
    names = [n for n, _ in fresh.trainable_named_parameters()]
    assert names[0].startswith("vq_model.") and len(names) == len(params)
    group = fresh.get_module_parameters("mask_transformer_aux")
    assert len(group) == len(list(fresh.mask_transformer_aux.parameters()))
    with pytest.raises(InvalidInputError, match="'nope' is not a module"):
        fresh.get_module_parameters("nope")
    torch.optim.AdamW(params, lr=1e-4)  # what the host's runner builds


def test_train_keeps_the_text_tower_frozen(pretrained):
    bundle = MoGenTSBundle.from_config(pretrained.config)
    bundle.train()
    assert bundle.vq_model.training and bundle.mask_transformer_ts.training
    assert not bundle.text_encoder.training
    bundle.eval()
    assert not bundle.vq_model.training


def test_state_dict_to_save_round_trip(pretrained):
    saved = pretrained.state_dict_to_save()
    assert list(saved) == [META_KEY, *NETWORKS, "text_encoder", BUNDLE_PARAMS_KEY]
    assert saved[META_KEY] == pretrained.checkpoint_metadata()
    assert set(saved[BUNDLE_PARAMS_KEY]) == {"mean", "std"}
    keys_before = list(saved)
    fresh = MoGenTSBundle.from_config(pretrained.config)
    assert _same_tensors(fresh, pretrained)  # random networks, zero mean, unit std
    fresh.load_state_dict_selective(saved)
    assert _same_tensors(fresh, pretrained) == []
    assert list(saved) == keys_before  # the caller's dict is left as it was


def test_load_selective_excludes_bundle_keys_and_reads_flat_dicts(pretrained):
    fresh = MoGenTSBundle.from_config(pretrained.config)
    fresh.load_state_dict_selective(
        pretrained.state_dict_to_save(), exclude_bundle_keys=["mean", "std"]
    )
    assert _same_tensors(fresh, pretrained) == ["mean", "std"]
    assert torch.equal(fresh.std, torch.ones_like(fresh.std))
    flat = MoGenTSBundle.from_config(pretrained.config)
    flat.load_state_dict_selective(pretrained.state_dict())  # "<module>.<key>" plus mean/std
    assert _same_tensors(flat, pretrained) == []
    only_vq = MoGenTSBundle.from_config(pretrained.config)
    only_vq.load_state_dict_selective({"vq_model": pretrained.vq_model.state_dict()})
    differing = _same_tensors(only_vq, pretrained)
    assert differing and not any(k.startswith("vq_model.") for k in differing)


def test_load_selective_mismatches(pretrained, caplog):
    sd = pretrained.state_dict_to_save()
    key = next(iter(sd["vq_model"]))
    bad = {"vq_model": {**sd["vq_model"], key: torch.zeros(3, 1, 2)}}
    fresh = MoGenTSBundle.from_config(pretrained.config)
    before = fresh.vq_model.state_dict()[key].clone()
    with caplog.at_level(logging.WARNING):
        fresh.load_state_dict_selective(bad)
    assert f"vq_model.{key}: checkpoint (3, 1, 2)" in caplog.text
    assert torch.equal(fresh.vq_model.state_dict()[key], before)  # skipped, others loaded
    other = next(k for k in sd["vq_model"] if k != key)
    assert torch.equal(fresh.vq_model.state_dict()[other], sd["vq_model"][other])
    with pytest.raises(ArtifactFormatError, match=r"checkpoint \(3, 1, 2\).*strict=True"):
        fresh.load_state_dict_selective(bad, strict=True)
    partial = {"vq_model": {other: sd["vq_model"][other]}}
    with pytest.raises(ArtifactFormatError, match="missing"):
        fresh.load_state_dict_selective(partial, strict=True)
    with pytest.raises(ArtifactFormatError, match="'decoder' is not a module"):
        fresh.load_state_dict_selective({"decoder": {"w": torch.zeros(1)}}, strict=True)
    lora = {META_KEY: {"modules": {"vq_model": {"checkpoint_format": "lora"}}}, "vq_model": {}}
    with pytest.raises(InvalidInputError, match="LoRA adapters for \\['vq_model'\\]"):
        fresh.load_state_dict_selective(lora)


def test_bundle_from_config_takes_the_hosts_dicts(pretrained, monkeypatch):
    doc = pretrained.config.to_json_dict()
    for built in (
        MoGenTSBundle.from_config({"type": "MoGenTSBundle", "config": doc}),
        MoGenTSBundle.from_cfg({"type": "hftrainer_mogents.bundle.MoGenTSBundle"}, config=doc),
        MoGenTSBundle.from_config(doc),  # a mogents_config.json document, as before
        MoGenTSBundle.from_config(config=pretrained.config),
        MoGenTSBundle(doc["config"]),  # the document's config block alone
    ):
        assert type(built) is MoGenTSBundle and built.config == pretrained.config
    assert MoGenTSBundle.from_config({"type": "MoGenTSBundle"}).config == MoGenTSBundle().config
    with pytest.raises(InvalidInputError, match="config must be a MoGenTSConfig"):
        MoGenTSBundle(config=3)
    for name in ("hftrainer", "hftrainer.registry"):  # the import fails, even where it ran
        monkeypatch.setitem(__import__("sys").modules, name, None)
    with pytest.raises(HostNotInstalledError, match="not installed"):
        MoGenTSBundle.from_config({"type": "SomeOtherBundle"})


# ---------------------------------------------------------------- pipeline conventions


def test_pipeline_from_pretrained_both_conventions(tiny_artifact, tiny_pipeline):
    reference = _motions(tiny_pipeline)
    host_form = MoGenTSPipeline.from_pretrained(
        MoGenTSBundle, tiny_artifact, bundle_kwargs={"device": "cpu"}, cuda_graphs=False
    )
    assert type(host_form.bundle) is MoGenTSBundle and not host_form.cuda_graphs.enabled
    assert all(np.array_equal(a, b) for a, b in zip(_motions(host_form), reference))
    keyword = MoGenTSPipeline.from_pretrained(
        MoGenTSBundle, pretrained_model_name_or_path=tiny_artifact
    )
    assert all(np.array_equal(a, b) for a, b in zip(_motions(keyword), reference))
    by_name = MoGenTSPipeline.from_pretrained(
        bundle_cls=MoGenTSBundle, pretrained_model_name_or_path=tiny_artifact
    )
    assert all(np.array_equal(a, b) for a, b in zip(_motions(by_name), reference))
    with pytest.raises(InvalidInputError, match="given twice"):
        MoGenTSPipeline.from_pretrained(MoGenTSBundle, tiny_artifact, bundle_cls=MoGenTSBundle)
    no_len = MoGenTSPipeline.from_pretrained(
        tiny_artifact, device="cpu", bundle_kwargs={"load_length_estimator": False}
    )
    assert no_len.bundle.length_estimator is None
    with pytest.raises(InvalidInputError, match=r"\['dtype'\] given both"):
        MoGenTSPipeline.from_pretrained(
            tiny_artifact, dtype="bf16", bundle_kwargs={"dtype": "fp32"}
        )
    with pytest.raises(InvalidInputError, match="only when the first is a bundle class"):
        MoGenTSPipeline.from_pretrained(tiny_artifact, tiny_artifact)
    with pytest.raises(InvalidInputError, match="artifact path is missing"):
        MoGenTSPipeline.from_pretrained(MoGenTSBundle)


def test_pipeline_from_checkpoint_and_from_config(pretrained, tiny_pipeline, tmp_path):
    reference = _motions(tiny_pipeline)
    folder = tmp_path / "checkpoint-iter_10"
    folder.mkdir()
    torch.save(pretrained.state_dict_to_save(), folder / "model.pt")  # the host's layout
    doc = pretrained.config.to_json_dict()
    for path in (folder, folder / "model.pt"):
        pipe = MoGenTSPipeline.from_checkpoint(
            MoGenTSBundle, {"type": "MoGenTSBundle", "config": doc}, path
        )
        assert all(np.array_equal(a, b) for a, b in zip(_motions(pipe), reference))
    kept = MoGenTSPipeline.from_checkpoint(None, doc, folder, exclude_bundle_keys=["mean", "std"])
    assert torch.equal(kept.bundle.mean, torch.zeros_like(kept.bundle.mean))
    with pytest.raises(ArtifactNotFoundError, match="holds no model.pt"):
        MoGenTSPipeline.from_checkpoint(MoGenTSBundle, doc, tmp_path)
    assert set(load_host_checkpoint(folder)) == set(pretrained.state_dict_to_save())
    built = MoGenTSPipeline.from_config(MoGenTSBundle, doc, cuda_graphs=False)
    assert built.bundle.config == pretrained.config and not built.bundle.training
    assert MoGenTSPipeline.from_config(doc).bundle.config == pretrained.config
    assert MoGenTSPipeline.from_config(bundle_cfg=doc).bundle.config == pretrained.config


# ---------------------------------------------------------------- flat metrics


def test_flatten_metrics():
    report = {
        "fid": {"mean": 1.5, "std": 0.25, "conf": 0.1},
        "r_precision": {"mean": [0.1, 0.2, 0.3], "std": [0.01, 0.02, 0.03]},
        "n_samples": 7,
        "diversity_pred": 4,
        "r_precision_real": [0.4, 0.5, 0.6],
        "mode": "pred",
        "config": {"pred_dir": "x", "n": 3},
        "skipped": None,
        "ok": True,
    }
    assert flatten_metrics(report) == {
        "fid": 1.5,
        "fid_std": 0.25,
        "fid_conf": 0.1,
        "r_precision_top1": 0.1,
        "r_precision_top2": 0.2,
        "r_precision_top3": 0.3,
        "r_precision_std_top1": 0.01,
        "r_precision_std_top2": 0.02,
        "r_precision_std_top3": 0.03,
        "n_samples": 7.0,
        "diversity_pred": 4.0,
        "r_precision_real_top1": 0.4,
        "r_precision_real_top2": 0.5,
        "r_precision_real_top3": 0.6,
    }


# ---------------------------------------------------------------- evaluators: the runner's loop


@pytest.fixture(scope="module")
def hml_fx(fixtures_dir: Path) -> Path:
    from conftest import require_fixture

    return require_fixture(fixtures_dir / "hml263_eval_tiny")


@pytest.fixture(scope="module")
def hml_dir(hml_fx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hftrainer_mogents.convert.evaluator_hml263 import convert_hml263_evaluator

    out = tmp_path_factory.mktemp("evaluator") / "hml263"
    return convert_hml263_evaluator(hml_fx / "checkpoints", out, glove_dir=hml_fx / "glove")


def test_hml263_evaluator_serves_the_runner_loop(hml_fx, hml_dir):
    from hftrainer_mogents.evaluation.hml263 import HumanML263Evaluator

    settings = {"n_repeats": 2, "diversity_times": 20, "seed": 5}
    root = hml_fx / "dataset" / "HumanML3D"
    ev = HumanML263Evaluator(
        ckpt_dir=hml_dir, device="cpu", dataset_root=root, evaluate_kwargs=settings
    )
    preds = dict(np.load(hml_fx / "pred_motions.npz"))
    keys = sorted(preds)
    direct = ev.evaluate(preds, progress=False, **settings)

    ev.reset()
    half = len(keys) // 2
    ev.process({"keys": keys[:half], "motions": [preds[k] for k in keys[:half]]})
    # a padded (B, T, D) tensor with lengths, as a val_step returns it
    rest = keys[half:]
    longest = max(len(preds[k]) for k in rest)
    padded = torch.zeros(len(rest), longest, 263)
    for i, k in enumerate(rest):
        padded[i, : len(preds[k])] = torch.from_numpy(preds[k])
    ev.process(
        {"keys": rest, "motions": padded, "lengths": torch.tensor([len(preds[k]) for k in rest])}
    )
    flat = ev.compute()
    assert flat == flatten_metrics(direct)
    assert (
        flat["fid"] == direct["fid"]["mean"]
        and flat["r_precision_top3"] == direct["r_precision"]["mean"][2]
    )
    assert all(isinstance(v, float) for v in flat.values())
    assert ev.last_report["n_evaluated"] == direct["n_evaluated"]
    outputs = [{"keys": [k], "motions": [preds[k]]} for k in keys]
    assert ev.compute_from_outputs(outputs) == flat

    ev.reset()
    with pytest.raises(InvalidInputError, match="nothing to score"):
        ev.compute()
    with pytest.raises(InvalidInputError, match="lacks \\['motions'\\]"):
        ev.process({"keys": keys[:1]})
    with pytest.raises(InvalidInputError, match="2 keys and 1 motions"):
        ev.process({"keys": keys[:2], "motions": [preds[keys[0]]]})
    ev.process({"keys": keys[:1], "motions": [preds[keys[0]]]})
    ev.process({"keys": keys[:1], "motions": [preds[keys[0]]]})
    with pytest.raises(InvalidInputError, match="processed twice"):
        ev.compute()
    with pytest.raises(InvalidInputError, match="ckpt_dir="):
        HumanML263Evaluator()


def test_ms272_evaluator_serves_the_runner_loop(fixtures_dir, tmp_path):
    from conftest import require_fixture
    from test_eval_ms272 import make_data_root

    from hftrainer_mogents.convert.evaluator_ms272 import convert_ms272_evaluator
    from hftrainer_mogents.evaluation.ms272 import MotionStreamer272Evaluator
    from hftrainer_mogents.evaluation.ms272.dataset import read_ms272_split

    fx = require_fixture(fixtures_dir / "ms272_tiny")
    folder = convert_ms272_evaluator(
        fx / "evaluator" / "epoch=99.ckpt",
        tmp_path / "ev",
        text_model=fx / "evaluator" / "distilbert_tiny",
        mean_std=fx / "mean_std",
    )
    make_data_root(fx, tmp_path / "data")
    settings = {"batch_size": 4, "diversity_times": 4, "n_repeats": 3}
    ev = MotionStreamer272Evaluator(
        evaluator_ckpt=folder, data_root=tmp_path / "data", device="cpu", evaluate_kwargs=settings
    )
    split = read_ms272_split(tmp_path / "data")
    pred = tmp_path / "pred"
    pred.mkdir()
    motions = {}
    for i, entry in enumerate(split.entries):
        motions[entry.key] = split.motion(entry)[: 40 + 4 * i]
        np.save(pred / f"{entry.key}.npy", motions[entry.key])
    direct = ev.evaluate_dir(pred, data_root=tmp_path / "data", **settings)
    keys = list(motions)
    ev.reset()
    for start in range(0, len(keys), 3):
        chunk = keys[start : start + 3]
        ev.process({"keys": chunk, "motions": [torch.from_numpy(motions[k]) for k in chunk]})
    flat = ev.compute()
    assert flat == flatten_metrics(direct)
    assert (
        flat["fid"] == direct["fid"]
        and flat["r_precision_pred_top1"] == direct["r_precision_pred"][0]
    )
    assert ev.last_report["config"]["pred_dir"] is None
    with pytest.raises(InvalidInputError, match="evaluator_ckpt="):
        MotionStreamer272Evaluator()
    no_root = MotionStreamer272Evaluator(evaluator_ckpt=folder, device="cpu")
    no_root.process({"keys": keys[:1], "motions": [motions[keys[0]]]})
    with pytest.raises(InvalidInputError, match="data_root="):
        no_root.compute()
    shutil.rmtree(pred)
