"""MotionStreamer-272 evaluator: safe conversion, embeddings and metrics against the fixtures,
the test-split protocol, reports, verify_evaluators.py --which ms272 and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import require_fixture

from hftrainer_mogents.cli import cli
from hftrainer_mogents.cli.evaluate import verify_main
from hftrainer_mogents.convert.evaluator_ms272 import convert_ms272_evaluator
from hftrainer_mogents.errors import (
    ArtifactNotFoundError,
    ChecksumMismatchError,
    InvalidInputError,
)
from hftrainer_mogents.evaluation import metrics
from hftrainer_mogents.evaluation.ms272.dataset import read_ms272_split
from hftrainer_mogents.evaluation.ms272.evaluator import MotionStreamer272Evaluator
from hftrainer_mogents.evaluation.ms272.report import ZOO_KEYS


@pytest.fixture(scope="module")
def fixture(fixtures_dir: Path) -> Path:
    return require_fixture(fixtures_dir / "ms272_tiny")


@pytest.fixture(scope="module")
def converted(fixture: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ms272") / "evaluator"
    return convert_ms272_evaluator(
        fixture / "evaluator" / "epoch=99.ckpt",
        out,
        text_model=fixture / "evaluator" / "distilbert_tiny",
        mean_std=fixture / "mean_std",
    )


@pytest.fixture(scope="module")
def evaluator(converted: Path) -> MotionStreamer272Evaluator:
    return MotionStreamer272Evaluator.from_pretrained(converted, device="cpu")


def test_conversion_keeps_the_encoders_only(converted: Path) -> None:
    from safetensors import safe_open

    meta = json.loads((converted / "evaluator_config.json").read_text())
    assert meta["source"]["ignored_components"] == ["motiondecoder"]
    assert meta["source"]["read_with"].startswith("torch.load(weights_only=True)")
    assert meta["config"]["latent_dim"] == 32 and meta["config"]["num_layers"] == 2
    assert {"evaluator.safetensors", "text_model/vocab.txt", "mean.npy"} <= set(meta["checksums"])
    with safe_open(converted / "evaluator.safetensors", "pt") as fh:
        heads = {k.split(".")[0] for k in fh.keys()}  # noqa: SIM118
    assert heads == {"textencoder", "motionencoder"}


class Hyper:
    """A non-tensor object in a checkpoint: it must never be rebuilt by the converter."""

    marker: Path | None = None

    def __setstate__(self, state: dict) -> None:  # pragma: no cover - must not run
        if Hyper.marker is not None:
            Hyper.marker.write_text("unpickled")


def test_conversion_of_a_checkpoint_holding_objects(fixture: Path, tmp_path: Path) -> None:
    ckpt = torch.load(fixture / "evaluator" / "epoch=99.ckpt", weights_only=True)
    ckpt["hyper_parameters"] = Hyper()
    ckpt["hyper_parameters"].lr = 1e-4
    torch.save(ckpt, tmp_path / "lightning.ckpt")
    Hyper.marker = tmp_path / "marker"
    out = convert_ms272_evaluator(
        tmp_path / "lightning.ckpt",
        tmp_path / "converted",
        text_model=fixture / "evaluator" / "distilbert_tiny",
    )
    assert not Hyper.marker.exists()
    meta = json.loads((out / "evaluator_config.json").read_text())
    assert meta["source"]["read_with"].startswith("restricted unpickler")
    assert not meta["has_mean_std"]


def test_embeddings_equal_the_fixture(fixture: Path, evaluator: MotionStreamer272Evaluator) -> None:
    ref = np.load(fixture / "evaluator" / "reference_embeddings.npz")
    captions = [str(c) for c in ref["captions"]]
    np.testing.assert_allclose(evaluator.encode_text(captions), ref["text_mu"], atol=1e-4)
    one_by_one = np.concatenate([evaluator.encode_text([c]) for c in captions])
    np.testing.assert_allclose(one_by_one, ref["text_mu_one_at_a_time"], atol=1e-4)
    lengths = ref["motion_lengths"]
    normalized = ref["motion_inputs_normalized_padded"]
    emb = evaluator.encode_motion(list(normalized), lengths, normalized=True)
    np.testing.assert_allclose(emb, ref["motion_mu"], atol=1e-4)
    raw = []
    for name in ref["motion_names"]:
        with np.load(fixture / "motions" / f"{name}.npz") as data:
            raw.append(data["ms272"])
    np.testing.assert_allclose(evaluator.encode_motion(raw, lengths), ref["motion_mu"], atol=1e-4)


def test_metric_protocol_equals_the_fixture(
    fixture: Path, evaluator: MotionStreamer272Evaluator
) -> None:
    inp = np.load(fixture / "evaluator" / "metric_inputs.npz")
    ref = json.loads((fixture / "evaluator" / "metrics_reference.json").read_text())
    text = evaluator.encode_text([str(c) for c in inp["captions"]])
    np.testing.assert_allclose(text, inp["text_emb"], atol=1e-4)
    for kind in ("gt", "pred"):
        lengths = inp[f"stored_{kind}_raw272_lengths"]
        cuts = np.cumsum([0, *lengths])
        raw = [inp[f"stored_{kind}_raw272"][a:b] for a, b in zip(cuts[:-1], cuts[1:])]
        emb = evaluator.encode_motion(raw, inp[f"{kind}_lengths"][: len(raw)])
        key = "motion_emb_real" if kind == "gt" else "motion_emb_pred"
        np.testing.assert_allclose(emb, inp[key][: len(raw)], atol=1e-4)
    got = metrics.embedding_metrics(
        inp["text_emb"],
        inp["motion_emb_real"],
        inp["motion_emb_pred"],
        diversity_times=ref["diversity_times"],
        diversity_indices={
            "real": (inp["div_idx_real_first"], inp["div_idx_real_second"]),
            "pred": (inp["div_idx_pred_first"], inp["div_idx_pred_second"]),
        },
    )
    assert got["r_precision_real"] == ref["r_precision_real"]
    assert got["r_precision"] == ref["r_precision_pred"]
    for ours, theirs in [
        ("fid", "fid"),
        ("matching_score_real", "matching_score_real"),
        ("matching_score", "matching_score_pred"),
        ("diversity_real", "diversity_real"),
        ("diversity", "diversity_pred"),
    ]:
        assert got[ours] == pytest.approx(ref[theirs], rel=1e-4), ours


def make_data_root(fixture: Path, root: Path) -> dict[str, np.ndarray]:
    """A tiny humanml3d_272 folder: 9 clips, whole-clip captions, a good and a short sub-clip,
    an id without files, and a clip too long for the protocol."""
    inp = np.load(fixture / "evaluator" / "metric_inputs.npz")
    cuts = np.cumsum([0, *inp["stored_gt_raw272_lengths"]])
    clips = {
        f"{i:06d}": inp["stored_gt_raw272"][a:b]
        for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:]))
    }
    for k, name in enumerate(["walk_turn", "sway_arms", "short_spin"]):
        with np.load(fixture / "motions" / f"{name}.npz") as data:
            clips[f"{6 + k:06d}"] = data["ms272"].astype(np.float32)
    clips["toolong"] = np.zeros((300, 272), np.float32)
    for sub in ("motion_data", "texts", "split"):
        (root / sub).mkdir(parents=True)
    words = ["walks", "turns", "jumps", "waves", "runs", "sits", "kicks", "spins", "bows", "stops"]
    for k, (sid, motion) in enumerate(clips.items()):
        np.save(root / "motion_data" / f"{sid}.npy", motion)
        lines = [f"a person {words[k]} forward#a/DET#0.0#0.0", f"someone {words[k]}#x#nan#nan"]
        if sid == "000001":
            lines += ["a person walks then stops#x#1.0#4.0", "too short a piece#x#0.0#1.0"]
        (root / "texts" / f"{sid}.txt").write_text("\n".join(lines) + "\n")
    (root / "split" / "test.txt").write_text("\n".join([*clips, "missing_id"]) + "\n")
    shutil.copytree(fixture / "mean_std", root / "mean_std")
    return clips


def test_evaluate_dir_protocol(
    fixture: Path, evaluator: MotionStreamer272Evaluator, tmp_path: Path
) -> None:
    clips = make_data_root(fixture, tmp_path / "data")
    split = read_ms272_split(tmp_path / "data")
    keys = [e.key for e in split.entries]
    assert "000001__sub0" in keys and "000001__sub1" not in keys and "toolong" not in keys
    assert split.skipped.keys() == {"toolong", "missing_id"}
    assert len(keys) == 10
    pred = tmp_path / "pred"
    pred.mkdir()
    for entry in split.entries:
        if entry.key != "000003":  # one missing prediction
            np.save(pred / f"{entry.key}.npy", split.motion(entry))
    np.save(pred / "000008.npy", clips["000008"][:50])  # too short: left out
    kwargs = {"data_root": tmp_path / "data", "batch_size": 4, "diversity_times": 4, "n_repeats": 3}
    result = evaluator.evaluate_dir(pred, **kwargs)
    assert result["skipped_no_pred"] == 1 and result["skipped_short_pred"] == 1
    assert result["n_evaluated"] == 8 and result["n_samples_used"] == 8
    assert result["fid"] == pytest.approx(0.0, abs=1e-3)  # predictions are the real motions
    assert result["r_precision_pred"] == result["r_precision_real"]
    assert result["matching_score_pred"] == pytest.approx(result["matching_score_real"], rel=1e-5)
    assert len(result["repeats"]) == 3 and set(result["summary"]["fid"]) == {"mean", "conf"}
    per_caption = evaluator.evaluate_dir(pred, pairs="caption", **kwargs)
    assert per_caption["n_evaluated"] == 2 * 7 + 1  # two lines per whole clip, one sub-clip
    gt_only = evaluator.evaluate_dir(gt_only=True, **kwargs)
    assert "fid" not in gt_only and gt_only["n_evaluated"] == 10
    assert gt_only["config"]["caption_selection"] == "random"

    # the same through verify_evaluators.py and the CLI
    args = ["--which", "ms272", "--out-dir", str(tmp_path / "metrics"), "--n-repeats", "3",
            "--ms272-pred", str(pred), "--ms272-data-root", str(tmp_path / "data"),
            "--ms272-evaluator", str(evaluator.source), "--ms272-batch-size", "4",
            "--ms272-diversity-times", "4", "--device", "cpu"]  # fmt: skip
    assert verify_main(args) == 2  # a missing prediction fails unless allowed
    assert not (tmp_path / "metrics").exists()
    assert verify_main([*args, "--allow-missing"]) == 0
    report = json.loads((tmp_path / "metrics" / "verify_ms272.json").read_text())
    assert report["fid"] == pytest.approx(result["fid"])
    # the zoo's keys, with ours beside them
    assert set(report) >= set(ZOO_KEYS) | {"summary", "repeats", "reference"}
    assert report["config"]["evaluator"] == "motionstreamer_272"
    assert report["config"]["evaluator_ckpt"].endswith("evaluator.safetensors")
    assert {"data_root", "pred_dir", "gt_only", "batch_size"} <= set(report["config"])
    assert len(report["r_precision_pred_std"]) == 3 and report["skipped_no_pred"] == 1
    gt_args = ["--which", "ms272", "--gt-only", "--out-dir", str(tmp_path / "gt"), "--n-repeats",
               "2", "--ms272-data-root", str(tmp_path / "data"), "--ms272-evaluator",
               str(evaluator.source), "--ms272-batch-size", "4", "--ms272-diversity-times", "4",
               "--device", "cpu"]  # fmt: skip
    assert verify_main(gt_args) == 0
    gt_report = json.loads((tmp_path / "gt" / "verify_ms272.json").read_text())
    assert set(gt_report) >= set(ZOO_KEYS) and gt_report["fid"] == 0.0
    assert gt_report["r_precision_pred"] == gt_report["r_precision_real"]
    assert gt_report["config"]["gt_only"] is True
    md = (tmp_path / "metrics" / "verify_ms272.md").read_text()
    assert "| FID (lower) |" in md and "SUBSET: only 9 of 10 test items" in md
    assert report["comparable_to_published"] is False and "NOT comparable" in report["subset_note"]
    assert "SUBSET" not in (tmp_path / "gt" / "verify_ms272.md").read_text()
    cli_args = ["evaluate", "ms272", "--pred-dir", str(pred), "--data-root", str(tmp_path / "data"),
                "--evaluator", str(evaluator.source), "--batch-size", "4", "--diversity-times",
                "4", "--n-repeats", "2", "--device", "cpu"]  # fmt: skip
    run = CliRunner().invoke(cli, cli_args)
    assert run.exit_code == 1 and not (pred / "metrics").exists()
    assert "1 of 10 test items have no prediction" in run.output and "000003" in run.output
    assert "--allow-missing" in run.output
    np.save(pred / "stray_take.npy", clips["000002"])  # names no test item
    run = CliRunner().invoke(cli, [*cli_args, "--allow-missing"])
    assert run.exit_code == 0, run.output
    assert "stray_take.npy" in run.stderr and "match no test item" in run.stderr
    assert "SUBSET: only 9 of 10" in run.stdout and "NOT comparable" in run.stdout
    assert (pred / "metrics" / "verify_ms272.md").is_file()
    for flag in ("--n-repeats", "--diversity-times"):
        for bad in ("0", "-3"):
            run = CliRunner().invoke(cli, [*cli_args, "--allow-missing", flag, bad])
            assert run.exit_code == 2 and flag in run.output, run.output


def test_loading_errors(fixture: Path, converted: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFoundError, match="convert-evaluator-ms272"):
        MotionStreamer272Evaluator.from_pretrained(fixture / "evaluator")
    broken = tmp_path / "broken"
    shutil.copytree(converted, broken)
    np.save(broken / "mean.npy", np.zeros(272))
    with pytest.raises(ChecksumMismatchError, match="mean.npy"):
        MotionStreamer272Evaluator.from_pretrained(broken)


def test_save_pretrained_round_trip(
    converted: Path, evaluator: MotionStreamer272Evaluator, tmp_path: Path
) -> None:
    """A loaded evaluator saves the folder the converter wrote (same files, keys and checksums)
    and reloads to the same embeddings; saving into its own folder works too."""
    before = json.loads((converted / "evaluator_config.json").read_text())
    out = evaluator.save_pretrained(tmp_path / "copy", provenance=before["source"])
    assert json.loads((out / "evaluator_config.json").read_text()) == before
    again = MotionStreamer272Evaluator.from_pretrained(out, device="cpu")
    captions = ["a person walks forward", "someone waves"]
    np.testing.assert_array_equal(again.encode_text(captions), evaluator.encode_text(captions))
    motion = np.random.default_rng(0).normal(size=(64, 272)).astype(np.float32)
    np.testing.assert_array_equal(again.encode_motion([motion]), evaluator.encode_motion([motion]))
    np.testing.assert_array_equal(again.mean, evaluator.mean)

    again.save_pretrained(out, provenance=before["source"])
    assert json.loads((out / "evaluator_config.json").read_text()) == before
    with pytest.raises(InvalidInputError, match="is a file"):
        evaluator.save_pretrained(out / "evaluator.safetensors")


def test_evaluate_takes_predictions_by_key_and_the_aligned_lists(
    fixture: Path, evaluator: MotionStreamer272Evaluator, tmp_path: Path
) -> None:
    """evaluate(key -> motion) is what evaluate_dir scores; the aligned-list form of earlier
    releases still works and equals evaluate_pairs."""
    make_data_root(fixture, tmp_path / "data")
    split = read_ms272_split(tmp_path / "data")
    preds = {e.key: split.motion(e)[: 60 + 4 * i] for i, e in enumerate(split.entries) if i != 2}
    pred = tmp_path / "pred"
    pred.mkdir()
    for key, motion in preds.items():
        np.save(pred / f"{key}.npy", motion)
    kw = {"batch_size": 4, "diversity_times": 4, "n_repeats": 2}
    by_dir = evaluator.evaluate_dir(pred, data_root=tmp_path / "data", **kw)
    by_key = evaluator.evaluate(preds, data_root=tmp_path / "data", **kw)
    assert (
        by_dir["config"].pop("pred_dir") == str(pred) and by_key["config"].pop("pred_dir") is None
    )
    assert by_key == by_dir and by_key["skipped_no_pred"] == 1
    assert (
        evaluator.evaluate(preds, split, data_root=tmp_path / "data", **kw)["fid"] == by_dir["fid"]
    )
    captions = [list(e.captions) for e in split.entries]
    reals = [split.motion(e) for e in split.entries]
    old = evaluator.evaluate(captions, reals, [m[:60] for m in reals], **kw)
    assert old == evaluator.evaluate_pairs(captions, reals, [m[:60] for m in reals], **kw)
    assert "config" not in old and old["fid"] >= 0
    with pytest.raises(TypeError, match="unexpected"):
        evaluator.evaluate(preds, data_root=tmp_path / "data", real_lengths=[1])
