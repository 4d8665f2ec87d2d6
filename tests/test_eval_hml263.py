"""HumanML3D-263 evaluator: conversion, networks, word vectors, split reader and the protocol,
against the reference code's outputs in ``fixtures/hml263_eval_tiny``."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
import torch

from hftrainer_mogents.convert.evaluator_hml263 import (
    convert_hml263_evaluator,
    find_evaluator_sources,
    read_evaluator_checkpoint,
)
from hftrainer_mogents.errors import (
    ArtifactFormatError,
    ArtifactNotFoundError,
    ChecksumMismatchError,
    InvalidInputError,
)
from hftrainer_mogents.evaluation.hml263.dataset import legacy_subclip_aliases, read_test_split
from hftrainer_mogents.evaluation.hml263.draws import RepeatDraws, draw_repeat
from hftrainer_mogents.evaluation.hml263.evaluator import (
    CONFIG_FILE,
    MEAN_FILE,
    WEIGHTS_FILE,
    HumanML263Evaluator,
)
from hftrainer_mogents.evaluation.hml263.networks import HML263EvaluatorNetworks

EMB_ATOL = 1e-5
METRIC_TOL = 1e-6


@pytest.fixture(scope="module")
def fx(fixtures_dir):
    from conftest import require_fixture

    return require_fixture(fixtures_dir / "hml263_eval_tiny")


@pytest.fixture(scope="module")
def ref(fx):
    with open(fx / "reference.json") as fh:
        return dict(np.load(fx / "reference.npz")), json.load(fh)


@pytest.fixture(scope="module")
def evaluator_dir(fx, tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluator") / "hml263"
    return convert_hml263_evaluator(fx / "checkpoints", out, glove_dir=fx / "glove")


@pytest.fixture(scope="module")
def evaluator(evaluator_dir):
    return HumanML263Evaluator.from_pretrained(evaluator_dir, device="cpu")


@pytest.fixture(scope="module")
def split(fx):
    return read_test_split(fx / "dataset" / "HumanML3D")


def _new_key(split):
    """The fixture names sub-clips ``<id>__L<line>`` (this package's old naming): its key -> ours
    (the zoo's ``<id>__sub<k>``)."""
    aliases = legacy_subclip_aliases(split.entries)
    return lambda key: aliases.get(key, key)


def _max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


# ------------------------------------------------------------------ conversion


def test_conversion_writes_safe_files_with_checksums(evaluator_dir, ref):
    _, meta = ref
    files = sorted(p.name for p in evaluator_dir.iterdir())
    assert files == [
        "evaluator.safetensors",
        "evaluator_config.json",
        "glove_vectors.npy",
        "glove_vocab.json",
        "mean.npy",
        "std.npy",
    ]
    config = json.loads((evaluator_dir / CONFIG_FILE).read_text())
    dims = meta["config"]["dims"]
    for key in ("dim_movement_enc_hidden", "dim_movement_latent", "dim_text_hidden"):
        assert config["config"][key] == dims[key]
    assert config["config"]["dim_motion_hidden"] == dims["dim_motion_hidden"]
    assert config["config"]["dim_coemb_hidden"] == dims["dim_coemb_hidden"]
    assert config["source"]["epoch"] == 17 and config["source"]["iter"] == 4242
    assert config["source"]["vocab_size"] == meta["config"]["vocab_size"]
    assert set(config["checksums"]) == set(files) - {"evaluator_config.json"}


def test_weights_equal_the_official_checkpoint(fx, evaluator):
    ckpt = read_evaluator_checkpoint(
        fx / "checkpoints" / "t2m" / "text_mot_match" / "model" / "finest.tar"
    )
    ours = evaluator.networks.state_dict()
    for module in ("movement_encoder", "text_encoder", "motion_encoder"):
        for key, value in ckpt[module].items():
            assert torch.equal(ours[f"{module}.{key}"], value), f"{module}.{key}"
    # a fresh module with the official names loads the converted file strictly
    from safetensors.torch import load_file

    fresh = HML263EvaluatorNetworks(evaluator.config)
    fresh.load_state_dict(load_file(evaluator.source + "/" + WEIGHTS_FILE), strict=True)


def test_loading_unpickles_nothing(evaluator_dir, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled at run time")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    ev = HumanML263Evaluator.from_pretrained(evaluator_dir, device="cpu")
    assert ev.encode_text(["a/DET person/NOUN walk/VERB"]).shape == (1, 16)


def test_checksum_mismatch_is_detected(evaluator_dir, tmp_path):
    copy = tmp_path / "ev"
    shutil.copytree(evaluator_dir, copy)
    np.save(copy / MEAN_FILE, np.zeros(263, np.float32))
    with pytest.raises(ChecksumMismatchError, match="mean.npy"):
        HumanML263Evaluator.from_pretrained(copy, device="cpu")


def test_conversion_refuses_code_in_glove_pickles(fx, tmp_path):
    ckpts = tmp_path / "checkpoints"
    shutil.copytree(fx / "checkpoints", ckpts)
    glove = tmp_path / "glove"
    shutil.copytree(fx / "glove", glove)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (glove / "our_vab_words.pkl").write_bytes(pickle.dumps([Evil()]))
    with pytest.raises(ArtifactFormatError, match="not allowed"):
        convert_hml263_evaluator(ckpts, tmp_path / "out")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_missing_sources_list_the_paths_tried(fx, tmp_path):
    with pytest.raises(ArtifactNotFoundError, match="Comp_v6_KLD005/opt.txt"):
        find_evaluator_sources(tmp_path)
    ckpts = tmp_path / "checkpoints"
    shutil.copytree(fx / "checkpoints", ckpts)
    with pytest.raises(ArtifactNotFoundError, match="GloVe vectors") as info:
        find_evaluator_sources(ckpts)
    assert str(ckpts / "glove") in str(info.value)
    (ckpts / "t2m" / "text_mot_match" / "model" / "finest.tar").unlink()
    with pytest.raises(ArtifactNotFoundError, match="finest.tar"):
        find_evaluator_sources(ckpts, glove_dir=fx / "glove")


def test_conversion_does_not_overwrite(fx, evaluator_dir):
    with pytest.raises(FileExistsError, match="overwrite"):
        convert_hml263_evaluator(fx / "checkpoints", evaluator_dir, glove_dir=fx / "glove")


def test_checkpoint_with_foreign_objects_is_read_without_running_them(fx, tmp_path, caplog):
    """A finest.tar that also pickles an object of some class (e.g. an options namespace) is
    refused by weights_only; the restricted unpickler then reads its tensors and runs nothing."""
    import argparse

    src = fx / "checkpoints" / "t2m" / "text_mot_match" / "model" / "finest.tar"
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    ckpt["opt"] = argparse.Namespace(lr=1e-4)
    target = tmp_path / "finest.tar"
    torch.save(ckpt, target)
    read = read_evaluator_checkpoint(target)
    assert "restricted unpickler" in caplog.text
    for key, value in ckpt["text_encoder"].items():
        assert torch.equal(read["text_encoder"][key], value), key
    assert read["epoch"] == 17


def test_pos_rules_without_fixture():
    from hftrainer_mogents.evaluation.hml263.word_vectors import POS_CLASSES, WordVectorizer

    words = ["sos", "eos", "unk", "left", "walk", "person", "john"]
    vec = WordVectorizer(
        np.eye(len(words), 300, dtype=np.float32), {w: i for i, w in enumerate(words)}
    )
    assert vec.lookup("left/VERB") == (3, POS_CLASSES.index("Loc_VIP"))  # VIP wins over the tag
    assert vec.lookup("walk/NOUN") == (4, POS_CLASSES.index("Act_VIP"))
    assert vec.lookup("person/NOUN") == (5, POS_CLASSES.index("NOUN"))
    assert vec.lookup("john/PROPN") == (6, POS_CLASSES.index("OTHER"))
    assert vec.lookup("Person/NOUN") == (2, POS_CLASSES.index("OTHER"))  # case-sensitive: unk
    assert vec.lookup("xyzzy/VERB") == (2, POS_CLASSES.index("OTHER"))
    word_embs, pos, lens = vec.encode([["person/NOUN"] * 25, []])
    assert word_embs.shape == (2, 22, 300) and lens.tolist() == [22, 2]
    assert pos[1, 2:].argmax(-1).tolist() == [POS_CLASSES.index("OTHER")] * 20


# ------------------------------------------------------------------ word vectors and embeddings


def _caption_tokens(split, keys):
    tokens = {f"{e.source_id}#{c.line}": c.tokens for e in split.entries for c in e.captions}
    return [tokens[k] for k in keys]


def test_word_vectors_and_pos_match_reference(evaluator, split, ref):
    arrays, meta = ref
    tokens = _caption_tokens(split, meta["captions"]["keys"])
    word_embs, pos, lens = evaluator.word_vectorizer.encode(tokens)
    assert _max_diff(word_embs, arrays["caption_word_embs"]) == 0
    np.testing.assert_array_equal(pos, arrays["caption_pos_onehot"])
    np.testing.assert_array_equal(lens, arrays["caption_sent_len"])
    padded = ["_".join(evaluator.word_vectorizer.padded_tokens(t)) for t in tokens]
    assert padded == meta["captions"]["padded_token_strings"]


def test_text_embeddings_match_reference(evaluator, split, ref):
    arrays, meta = ref
    tokens = _caption_tokens(split, meta["captions"]["keys"])
    emb = evaluator.encode_text(tokens)
    err = _max_diff(emb, arrays["simple_text_emb"])
    assert err < EMB_ATOL, f"text embeddings: max diff {err:.3g}"
    # batch composition does not matter; strings work like token lists
    single = evaluator.encode_text([" ".join(tokens[5])])
    assert _max_diff(single[0], emb[5]) < 1e-6


def test_motion_embeddings_match_reference(evaluator, split, ref, fx):
    arrays, _ = ref
    preds = np.load(fx / "pred_motions.npz")
    m_len = arrays["simple_m_length"]
    gt = evaluator.encode_motion([split.load_motion(e) for e in split.entries], m_len)
    old_key = {new: old for old, new in legacy_subclip_aliases(split.entries).items()}
    pred = evaluator.encode_motion([preds[old_key.get(e.key, e.key)] for e in split.entries], m_len)
    for ours, name in ((gt, "simple_motion_emb_gt"), (pred, "simple_motion_emb_pred")):
        err = _max_diff(ours, arrays[name])
        assert err < EMB_ATOL, f"{name}: max diff {err:.3g}"
    # a different batch size gives the same embeddings
    again = evaluator.encode_motion(
        [split.load_motion(e) for e in split.entries], m_len, batch_size=7
    )
    assert _max_diff(again, gt) < 1e-6


def test_movement_encoder_matches_reference(evaluator, split, ref):
    arrays, meta = ref
    batch = meta["protocol"]["repeats"][0]["batches"][0]
    by_key = {e.key: e for e in split.entries}
    new_key = _new_key(split)
    samples = [batch["samples"][j] for j in batch["align_idx"]]
    motions = np.zeros((32, 196, 263), np.float32)
    for row, s in enumerate(samples):
        crop = split.load_motion(by_key[new_key(s["key"])])[s["start"] : s["start"] + s["m_length"]]
        motions[row, : s["m_length"]] = evaluator.normalize(crop)
    with torch.inference_mode():
        movements = evaluator.networks.movement_encoder(torch.from_numpy(motions[..., :-4]))
    err = _max_diff(movements.numpy(), arrays["debug_rep00_b0_movements"])
    assert err < EMB_ATOL, f"movements: max diff {err:.3g}"


def test_padding_beyond_two_frames_does_not_change_embeddings(evaluator):
    rng = np.random.default_rng(0)
    crop = evaluator.normalize(rng.normal(size=(48, 263)).astype(np.float32) * evaluator.std)
    lens = torch.tensor([48])
    outs = []
    with torch.inference_mode():
        for t in (50, 52, 196):
            x = torch.zeros(1, t, 263)
            x[0, :48] = torch.from_numpy(crop)
            outs.append(evaluator.networks.encode_motion(x, lens).numpy())
        cropped = evaluator.networks.encode_motion(torch.from_numpy(crop)[None], lens).numpy()
    assert _max_diff(outs[0], outs[2]) < 1e-6 and _max_diff(outs[1], outs[2]) < 1e-6
    assert _max_diff(cropped, outs[2]) > 1e-4  # cropping at the end is not the same


# ------------------------------------------------------------------ split reader


def test_split_index_matches_reference(split, ref):
    _, meta = ref
    ours = [
        (e.key, e.length, list(e.frames) if e.frames else None, [c.line for c in e.captions])
        for e in split.entries
    ]
    new_key = _new_key(split)
    theirs = [
        (new_key(e["key"]), e["length"], e["frames"], e["caption_line_indices"])
        for e in meta["dataset_index"]["entries"]
    ]
    assert ours == theirs
    # the zoo's numbering: k counts the tagged lines of the clip in file order
    subs = [e for e in split.entries if e.frames is not None]
    assert subs and all("__sub" in e.key for e in subs)
    for e in subs:
        tagged = [
            i
            for i, line in enumerate(
                (split.root / "texts" / f"{e.source_id}.txt").read_text().splitlines()
            )
            if {float(x) if x != "nan" else 0.0 for x in line.split("#")[2:4]} != {0.0}
        ]
        assert e.key == f"{e.source_id}__sub{tagged.index(e.captions[0].line)}"
    assert set(meta["dataset_index"]["dropped_clip_kinds"]) <= set(split.skipped)
    assert split.skipped[meta["dataset_index"]["missing_id_in_split"]] == "missing motion file"


def test_split_reader_errors_show_the_layout(fx, tmp_path):
    with pytest.raises(ArtifactNotFoundError, match="new_joint_vecs"):
        read_test_split(tmp_path)
    root = tmp_path / "HumanML3D"
    shutil.copytree(fx / "dataset" / "HumanML3D", root)
    (root / "test.txt").unlink()
    with pytest.raises(ArtifactNotFoundError, match="split/test.txt"):
        read_test_split(root)
    shutil.copy(fx / "dataset" / "HumanML3D" / "test.txt", tmp_path / "ids.txt")
    assert len(read_test_split(root, split_file=tmp_path / "ids.txt")) == 68
    np.save(root / "new_joint_vecs" / "001735.npy", np.zeros((50, 251), np.float32))
    with pytest.raises(ArtifactFormatError, match=r"001735\.npy.*\(50, 251\)"):
        read_test_split(root, split_file=tmp_path / "ids.txt")


# ------------------------------------------------------------------ the protocol


def _recorded_draws(split, meta):
    index = {e.key: i for i, e in enumerate(split.entries)}
    index.update({old: index[new] for old, new in legacy_subclip_aliases(split.entries).items()})
    n = len(split.entries)
    draws, div = [], []
    for rec in meta["protocol"]["repeats"]:
        caption = np.zeros(n, np.int64)
        start = np.zeros(n, np.int64)
        m_length = np.array([(e.length // 4) * 4 for e in split.entries])
        batches = []
        for batch in rec["batches"]:
            samples = [batch["samples"][j] for j in batch["align_idx"]]  # the returned order
            batches.append([index[s["key"]] for s in samples])
            for s in samples:
                i = index[s["key"]]
                caption[i], start[i], m_length[i] = s["caption_index"], s["start"], s["m_length"]
        draws.append(RepeatDraws(np.array(batches), caption, m_length, start))
        div.append({"real": rec["diversity_real_indices"], "pred": rec["diversity_pred_indices"]})
    return draws, div


def test_full_protocol_replay_matches_reference(evaluator, split, ref, fx):
    """The reference protocol's 20 passes, from raw files, replayed with its recorded draws."""
    _, meta = ref
    preds = np.load(fx / "pred_motions.npz")
    draws, div = _recorded_draws(split, meta)
    result = evaluator.evaluate(
        {k: preds[k] for k in preds.files},
        split=split,
        draws=draws,
        diversity_indices=div,
        diversity_times=meta["protocol"]["diversity_times"],
        progress=False,
    )
    for r, rec in enumerate(meta["protocol"]["repeats"]):
        ours = result["repeats"][r]
        assert ours["r_precision"] == rec["R_precision"], r
        assert ours["r_precision_real"] == rec["R_precision_real"], r
        for a, b in [
            ("fid", "fid"),
            ("matching_score", "matching_score_pred"),
            ("matching_score_real", "matching_score_real"),
            ("diversity", "diversity"),
            ("diversity_real", "diversity_real"),
        ]:
            assert abs(ours[a] - rec[b]) < METRIC_TOL, (r, a, ours[a], rec[b])
    summary = meta["protocol"]["summary"]
    assert abs(result["fid"]["mean"] - summary["fid"]["mean"]) < METRIC_TOL
    assert abs(result["matching_score"]["mean"] - summary["matching"]["mean"]) < METRIC_TOL
    assert abs(result["diversity"]["conf"] - summary["diversity"]["conf"]) < METRIC_TOL
    for k, name in enumerate(("top1", "top2", "top3")):
        assert abs(result["r_precision"]["mean"][k] - summary[name]["mean"]) < METRIC_TOL
    assert result["n_samples_used"] == 64 and result["skipped_no_pred"] == 0


def test_draws_follow_the_loader_rules():
    rng = np.random.default_rng(0)
    lengths = np.arange(40, 200)
    n_caps = np.full(len(lengths), 3)
    draws = [draw_repeat(rng, lengths, n_caps) for _ in range(50)]
    for d in draws:
        assert d.batches.shape == (5, 32) and len(set(d.used.tolist())) == 160
        floor4 = (lengths // 4) * 4
        assert np.isin(d.m_length - floor4, [0, -4]).all()
        assert (d.start >= 0).all() and (d.start + d.m_length <= lengths).all()
        assert ((d.caption >= 0) & (d.caption < 3)).all()
    double = np.mean([np.mean(d.m_length < (lengths // 4) * 4) for d in draws])
    assert abs(double - 1 / 3) < 0.03
    fixed = draw_repeat(np.random.default_rng(1), lengths, n_caps, fixed_captions=np.ones(160))
    same = draw_repeat(np.random.default_rng(1), lengths, n_caps)
    assert (fixed.caption == 1).all()
    np.testing.assert_array_equal(fixed.start, same.start)


def test_seeded_evaluation_is_reproducible(evaluator, split, fx):
    preds = dict(np.load(fx / "pred_motions.npz"))
    kwargs = {"split": split, "n_repeats": 3, "diversity_times": 20, "progress": False}
    a = evaluator.evaluate(preds, seed=5, **kwargs)
    b = evaluator.evaluate(preds, seed=5, **kwargs)
    c = evaluator.evaluate(preds, seed=6, **kwargs)
    assert a["repeats"] == b["repeats"]
    assert a["repeats"] != c["repeats"]
    # ground truth as the prediction: FID 0 when the crops coincide is not guaranteed (the real
    # motion is cropped at a random start), but it is far below the noisy predictions'
    gt = {e.key: split.load_motion(e) for e in split.entries}
    perfect = evaluator.evaluate(gt, seed=5, **kwargs)
    assert perfect["fid"]["mean"] < a["fid"]["mean"]


def test_missing_predictions_are_counted_or_fail_strict(evaluator, split, fx):
    preds = dict(np.load(fx / "pred_motions.npz"))
    for key in list(preds)[:3]:
        del preds[key]
    out = evaluator.evaluate(preds, split=split, n_repeats=2, diversity_times=20, progress=False)
    assert out["skipped_no_pred"] == 3
    assert len(out["skipped"]["no_prediction"]) == 3
    assert out["n_evaluated"] == 65 and out["n_entries"] == 68
    assert out["unmatched_predictions"] == 0
    preds["002043__x0"] = preds["002043"]  # another naming scheme: counted, not used
    out = evaluator.evaluate(preds, split=split, n_repeats=1, diversity_times=20, progress=False)
    assert out["unmatched_predictions"] == 1
    with pytest.raises(ArtifactNotFoundError, match="3 of 68 test items have no prediction"):
        evaluator.evaluate(preds, split=split, n_repeats=2, strict=True, progress=False)


def test_wrong_prediction_shape_names_the_file(evaluator, split, tmp_path):
    bad = tmp_path / "001735.npy"
    np.save(bad, np.zeros((60, 251), np.float32))
    with pytest.raises(ArtifactFormatError, match=r"001735\.npy.*\(60, 251\)"):
        evaluator.evaluate({"001735": bad}, split=split, progress=False)
    nan = tmp_path / "000452.npy"
    np.save(nan, np.full((60, 263), np.nan, np.float32))
    preds = {e.key: split.load_motion(e) for e in split.entries}
    preds["000452"] = nan
    with pytest.raises(ArtifactFormatError, match=r"000452\.npy.*NaN"):
        evaluator.evaluate(preds, split=split, n_repeats=1, diversity_times=20, progress=False)


def test_encode_motion_rejects_bad_input(evaluator):
    with pytest.raises(InvalidInputError, match="shape"):
        evaluator.encode_motion([np.zeros((40, 12))])
    with pytest.raises(InvalidInputError, match="length 80 outside"):
        evaluator.encode_motion([np.zeros((40, 263))], [80])
    with pytest.raises(InvalidInputError, match="word/POS"):
        evaluator.encode_text(["a person walks"])


def test_bf16_evaluator_stays_close_to_fp32(evaluator_dir, evaluator, split, ref):
    """The opt-in bf16 path (not the reference) drifts by bf16 rounding only."""
    arrays, meta = ref
    ev16 = HumanML263Evaluator.from_pretrained(evaluator_dir, device="cpu", dtype=torch.bfloat16)
    assert ev16.dtype == torch.bfloat16 and ev16.fingerprint() != evaluator.fingerprint()
    tokens = _caption_tokens(split, meta["captions"]["keys"])
    m_len = arrays["simple_m_length"]
    motions = [split.load_motion(e) for e in split.entries]
    for ours, theirs in (
        (ev16.encode_text(tokens), evaluator.encode_text(tokens)),
        (ev16.encode_motion(motions, m_len), evaluator.encode_motion(motions, m_len)),
    ):
        assert ours.dtype == np.float32
        rel = _max_diff(ours, theirs) / float(np.abs(theirs).max())
        assert 0 < rel < 0.05, rel


def test_zoo_named_and_old_named_folders_score_identically(evaluator, split, fx, tmp_path):
    """A folder in the zoo's naming (<id>__sub<k>) and one in this package's old naming
    (<id>__L<line>) hold the same predictions: same scores; the report has the zoo's keys."""
    from hftrainer_mogents.evaluation.hml263.report import ZOO_KEYS, write_hml263_report

    preds = dict(np.load(fx / "pred_motions.npz"))  # the fixture uses the old names
    aliases = legacy_subclip_aliases(split.entries)
    assert aliases and set(aliases) <= set(preds)
    zoo, old = tmp_path / "zoo", tmp_path / "old"
    for folder in (zoo, old):
        folder.mkdir()
    for key, motion in preds.items():
        np.save(old / f"{key}.npy", motion)
        np.save(zoo / f"{aliases.get(key, key)}.npy", motion)
    assert {p.stem for p in zoo.glob("*__sub*.npy")} == set(aliases.values())
    kw = {"dataset_root": split.root, "n_repeats": 3, "diversity_times": 20, "progress": False}
    a, b = evaluator.evaluate_dir(zoo, **kw), evaluator.evaluate_dir(old, **kw)
    assert a["repeats"] == b["repeats"] and a["skipped_no_pred"] == 0
    assert a["n_samples"] == 68 and a["n_samples_used"] == 64

    json_path, _ = write_hml263_report(a, tmp_path / "metrics")
    report = json.loads(json_path.read_text())
    assert set(report) >= set(ZOO_KEYS) | {"repeats", "skipped", "reference"}
    assert report["mode"] == "pred" and report["n_repeats"] == 3
    for name in ("fid", "matching_score", "diversity", "matching_score_real", "diversity_real"):
        stat = report[name]
        values = [rep[name] for rep in a["repeats"]]
        assert stat["mean"] == pytest.approx(np.mean(values))
        assert stat["std"] == pytest.approx(np.std(values))  # the zoo's: population std
        assert stat["conf"] == pytest.approx(1.96 * np.std(values) / np.sqrt(3))
    for name in ("r_precision", "r_precision_real"):
        assert len(report[name]["mean"]) == 3 and len(report[name]["std"]) == 3
    config = report["config"]
    assert config["evaluator"] == "humanml3d_263" and config["pred_dir"] == str(zoo)
    assert config["ckpt_dir"] == evaluator.source and config["gt_root"] == str(split.root)
    assert config["texts_dir"] == str(split.root / "texts")
    for key in ("split_file", "caption_selection", "caption_protocol_note"):
        assert config[key]

    gt = evaluator.evaluate_dir(None, **kw)
    json_path, _ = write_hml263_report(gt, tmp_path / "gt")
    report = json.loads(json_path.read_text())
    assert report["mode"] == "gt-only" and report["fid"]["mean"] == 0.0
    assert report["r_precision"] == report["r_precision_real"]


def test_texts_dir_replaces_the_captions(evaluator, fx, tmp_path):
    root = fx / "dataset" / "HumanML3D"
    texts = tmp_path / "texts"
    shutil.copytree(root / "texts", texts)
    whole = next(e for e in read_test_split(root).entries if e.frames is None)
    first = texts / f"{whole.source_id}.txt"
    lines = first.read_text().splitlines()
    line = whole.captions[0].line
    lines[line] = "a brand new caption#a/DET brand/ADJ new/ADJ caption/NOUN#0.0#0.0"
    first.write_text("\n".join(lines) + "\n")
    split = read_test_split(root, texts_dir=texts)
    entry = next(e for e in split.entries if e.key == whole.key)
    assert entry.captions[0].text == "a brand new caption" and split.texts_dir == texts
    result = evaluator.evaluate(
        None, dataset_root=root, texts_dir=texts, n_repeats=1, diversity_times=20, progress=False
    )
    assert result["config"]["texts_dir"] == str(texts)
    with pytest.raises(ArtifactNotFoundError, match="texts_dir"):
        read_test_split(root, texts_dir=tmp_path / "nowhere")
