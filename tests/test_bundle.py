"""MoGenTSBundle: loading the converted artifact, parity with the official outputs, round trip,
strictness, and the released layout."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import require_fixture

from hftrainer_mogents import artifact
from hftrainer_mogents.bundle import MoGenTSBundle, resolve_dtype
from hftrainer_mogents.config import MoGenTSConfig
from hftrainer_mogents.errors import (
    ArtifactFormatError,
    ArtifactNotFoundError,
    ChecksumMismatchError,
    InvalidInputError,
)
from hftrainer_mogents.model_card import render_model_card

MANIFEST_KEYS = {
    "vq_model": "vq_model",
    "mask_transformer_aux": "t2m_transformer_aux",
    "mask_transformer_ts": "t2m_transformer_ts",
    "res_transformer_aux": "res_transformer_aux",
    "res_transformer_ts": "res_transformer_ts",
    "length_estimator": "estimator",
}


@pytest.fixture(scope="module")
def bundle(tiny_artifact):
    return MoGenTSBundle.from_pretrained(tiny_artifact)


@pytest.fixture(scope="module")
def modules_npz(tiny_root):
    return dict(np.load(tiny_root / "modules.npz"))


def _close(ours, ref, name, atol=1e-5):
    ours = ours.detach().float().numpy()
    assert ours.shape == ref.shape, f"{name}: {ours.shape} != {ref.shape}"
    err = float(np.abs(ours - ref).max())
    bound = atol * max(1.0, float(np.abs(ref).max()))
    assert err <= bound, f"{name}: max abs diff {err:.3g} > {bound:.3g}"


def _t(a):
    return torch.from_numpy(a)


@torch.no_grad()
def test_every_module_output_matches_the_official_code(bundle, modules_npz):
    ref = modules_npz
    cond = _t(ref["cond"])
    b = bundle
    # 1D / 2D mask transformers (upstream logits are (B, K, N))
    logits = b.mask_transformer_aux.forward_with_cond_scale(
        _t(ref["mask_aux_ids"]), cond, _t(ref["mask_aux_padding_mask"]), 4.0
    )
    _close(logits.transpose(1, 2), ref["mask_aux_logits_cfg4"], "mask_aux cfg4")
    _close(
        b.mask_transformer_aux(
            _t(ref["mask_aux_ids"]), cond, _t(ref["mask_aux_padding_mask"])
        ).transpose(1, 2),
        ref["mask_aux_logits_cond"],
        "mask_aux cond",
    )
    ts_pad = _t(ref["mask_ts_padding_mask"])
    _close(
        b.mask_transformer_ts.forward_with_cond_scale(
            _t(ref["mask_ts_ids"]), cond, ts_pad, 4.0
        ).transpose(1, 2),
        ref["mask_ts_logits_cfg4"],
        "mask_ts cfg4",
    )
    _close(
        b.mask_transformer_ts(_t(ref["mask_ts_ids"]), torch.zeros_like(cond), ts_pad).transpose(
            1, 2
        ),
        ref["mask_ts_logits_uncond"],
        "mask_ts uncond",
    )
    # residual transformers, from the recorded histories
    for i in range(ref["res_aux_history"].shape[0]):
        layer = i + 1
        out = b.res_transformer_aux.forward_with_cond_scale(
            _t(ref["res_aux_history"][i]), layer, cond, _t(ref["res_aux_padding_mask"]), 5.0
        )
        _close(out.transpose(1, 2), ref["res_aux_logits_cfg5"][i], f"res_aux layer {layer}")
        out = b.res_transformer_ts.forward_with_cond_scale(
            _t(ref["res_ts_history"][i]),
            layer,
            cond,
            _t(ref["res_ts_padding_mask"]).flatten(1),
            5.0,
        )
        _close(out.transpose(1, 2), ref["res_ts_logits_cfg5"][i], f"res_ts layer {layer}")
    # VQ decoder and encoder
    y_aux, y = b.vq_model.forward_decoder(_t(ref["vq_dec_ids_aux"]), _t(ref["vq_dec_ids_ts"]))
    _close(y_aux, ref["vq_dec_full_out_aux"], "vq aux")
    _close(y, ref["vq_dec_full_out"], "vq fused")
    _, y_base = b.vq_model.forward_decoder(
        _t(ref["vq_dec_ids_aux"][..., :1]), _t(ref["vq_dec_ids_ts"][..., :1])
    )
    _close(y_base, ref["vq_dec_base_out"], "vq base")
    ids_aux, ids_ts = b.vq_model.encode(_t(ref["vq_enc_in_motion"]), _t(ref["vq_enc_in_grid"]))
    assert np.array_equal(ids_aux.numpy(), ref["vq_enc_ids_aux"])
    assert np.array_equal(ids_ts.numpy(), ref["vq_enc_ids_ts"])
    # length estimator
    _close(
        b.length_estimator(_t(ref["clip_feat_fp16path"])), ref["len_est_logits"], "length estimator"
    )


@torch.no_grad()
def test_text_encoder_paths(tiny_artifact, modules_npz):
    captions = [
        "a person walks forward and then turns around.",
        "a man jumps up and down twice.",
        "someone waves with the right hand while standing still.",
        "the person crouches and jumps forward.",
    ]
    fp32 = MoGenTSBundle.from_pretrained(tiny_artifact, text_encoder_dtype="float32")
    _close(fp32.encode_text(captions), modules_npz["clip_feat_fp32path"], "clip fp32")
    fp16 = MoGenTSBundle.from_pretrained(tiny_artifact)
    assert fp16.config.text_encoder.dtype == "float16"
    feats = fp16.encode_text(captions).numpy()
    # the fixture's fp16 features were computed on another CPU: one fp16 step at their scale
    err = float(np.abs(feats - modules_npz["clip_feat_fp16path"]).max())
    assert err <= 2.0**-9 + 1e-6, err
    assert float(np.abs(feats - modules_npz["clip_feat_fp32path"]).max()) > 1e-4  # really fp16


def test_save_load_round_trip_is_bit_exact(bundle, tmp_path):
    folder = bundle.save_pretrained(tmp_path / "copy")
    index = json.loads((folder / artifact.INDEX_NAME).read_text())
    assert set(index["checksums"]) == {p.name for p in folder.iterdir()} - {artifact.INDEX_NAME}
    assert index["checksums"]["vq.safetensors"] == artifact.sha256_file(folder / "vq.safetensors")
    again = MoGenTSBundle.from_pretrained(folder)
    assert again.config == bundle.config
    for (name, a), (_, b) in zip(bundle.components(), again.components()):
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb), name
        for key in sa:
            assert sa[key].shape == sb[key].shape, (
                f"{name}.{key}: {sa[key].shape} vs {sb[key].shape}"
            )
            assert sa[key].dtype == sb[key].dtype, f"{name}.{key}"
            assert torch.equal(sa[key], sb[key]), f"{name}.{key} differs"
    assert torch.equal(again.mean, bundle.mean) and torch.equal(again.std, bundle.std)
    # the visual tower of the original CLIP file is carried over
    original = artifact.safetensors_shapes(bundle._clip_extra_source)
    copied = artifact.safetensors_shapes(folder / "clip.safetensors")
    assert set(original) == set(copied)
    visual = [k for k in original if k.startswith("visual.")]
    assert visual
    a = artifact.load_safetensors(bundle._clip_extra_source, keys=visual)
    b = artifact.load_safetensors(folder / "clip.safetensors", keys=visual)
    assert all(torch.equal(a[k], b[k]) for k in visual)


def test_save_refuses_a_file_and_removes_stale_length_estimator(bundle, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(InvalidInputError, match="is a file"):
        bundle.save_pretrained(target)
    folder = bundle.save_pretrained(tmp_path / "a")
    assert (folder / "length_est.safetensors").is_file()
    no_len = MoGenTSBundle.from_pretrained(folder, load_length_estimator=False)
    no_len.save_pretrained(folder)
    assert not (folder / "length_est.safetensors").exists()
    reloaded = MoGenTSBundle.from_pretrained(folder)
    assert reloaded.length_estimator is None
    assert not any(
        artifact_tmp for artifact_tmp in folder.iterdir() if artifact_tmp.name.startswith(".")
    )


@pytest.fixture
def copy(tiny_artifact, tmp_path):
    dst = tmp_path / "artifact"
    shutil.copytree(tiny_artifact, dst)
    return dst


def test_missing_file(copy):
    (copy / "res_ts.safetensors").unlink()
    with pytest.raises(ArtifactNotFoundError, match="res_ts.safetensors"):
        MoGenTSBundle.from_pretrained(copy)


def test_checksum_mismatch(copy):
    data = bytearray((copy / "mask_aux.safetensors").read_bytes())
    data[-3] ^= 0xFF  # one byte of a weight
    (copy / "mask_aux.safetensors").write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match="mask_aux.safetensors"):
        MoGenTSBundle.from_pretrained(copy)


def _rewrite(path, change):
    from safetensors.torch import save_file

    state = artifact.load_safetensors(path)
    change(state)
    save_file(state, str(path))


def test_missing_unexpected_key_and_wrong_shape(copy):
    path = copy / "res_aux.safetensors"

    _rewrite(path, lambda s: s.pop("quant_emb.bias"))
    with pytest.raises(ArtifactFormatError, match="missing keys.*quant_emb.bias"):
        MoGenTSBundle.from_pretrained(copy, verify_checksums=False)

    def grow(s):
        s["quant_emb.bias"] = torch.zeros(32)
        s["surprise"] = torch.zeros(1)

    _rewrite(path, grow)
    with pytest.raises(ArtifactFormatError, match="unexpected keys.*surprise"):
        MoGenTSBundle.from_pretrained(copy, verify_checksums=False)

    def wrong(s):
        s.pop("surprise")
        s["cond_emb.weight"] = torch.zeros(32, 256)

    _rewrite(path, wrong)
    with pytest.raises(ArtifactFormatError) as info:
        MoGenTSBundle.from_pretrained(copy, verify_checksums=False)
    assert "cond_emb.weight" in str(info.value) and "(32, 256)" in str(info.value)
    assert "(32, 512)" in str(info.value)


def test_truncated_file(copy):
    path = copy / "vq.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactFormatError, match="truncated"):
        MoGenTSBundle.from_pretrained(copy, verify_checksums=False)
    with pytest.raises(ChecksumMismatchError):
        MoGenTSBundle.from_pretrained(copy)


def test_bad_statistics_and_config(copy):
    np.save(copy / "Std.npy", np.zeros(263, dtype=np.float32))
    with pytest.raises(ArtifactFormatError, match="> 0"):
        MoGenTSBundle.from_pretrained(copy, verify_checksums=False)
    doc = json.loads((copy / "mogents_config.json").read_text())
    doc["format"] = "something-else"
    (copy / "mogents_config.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactFormatError, match="not supported"):
        MoGenTSBundle.from_pretrained(copy, verify_checksums=False)


def test_loads_a_zoo_artifact_without_checksums_or_text_config(copy, caplog):
    """The zoo's published artifacts have no checksums and no text_encoder block: they load, with
    a warning that the files are unverified."""
    zoo_index = {  # the fields the zoo's save_pretrained writes (research/hftrainer_seed_system.md)
        "_class_name": "MoGenTSPipeline",
        "_library_name": "hftrainer",
        "model_type": "mogents",
        "format": "hftrainer-mogents-v1",
    }
    (copy / "model_index.json").write_text(json.dumps(zoo_index))
    doc = json.loads((copy / "mogents_config.json").read_text())
    del doc["config"]["text_encoder"]
    del doc["library_version"]
    (copy / "mogents_config.json").write_text(json.dumps(doc))
    with caplog.at_level("WARNING"):
        bundle = MoGenTSBundle.from_pretrained(copy)
    assert "records no checksums" in caplog.text and "unverified" in caplog.text
    assert bundle.config.text_encoder.width == 64  # read from clip.safetensors' shapes
    assert bundle.config.text_encoder.layers == 2 and bundle.config.text_encoder.heads == 1


def test_default_config_has_the_released_layout(fixtures_dir):
    path = require_fixture(fixtures_dir.parent / "research" / "mogents_state_dict_manifest.json")
    manifest = json.loads(path.read_text())
    with torch.device("meta"):
        bundle = MoGenTSBundle.from_config()
    for attr, key in MANIFEST_KEYS.items():
        ours = getattr(bundle, attr).state_dict()
        theirs = {k: v for k, v in manifest[key].items()}
        assert list(ours) == list(theirs), f"{attr}: key order/names differ"
        for k, v in ours.items():
            assert list(v.shape) == theirs[k]["shape"], (
                f"{attr}.{k}: {list(v.shape)} vs {theirs[k]['shape']}"
            )
            assert str(v.dtype).removeprefix("torch.") == theirs[k]["dtype"], f"{attr}.{k}"
    text = bundle.text_encoder.state_dict()
    assert text["token_embedding.weight"].shape == (49408, 512)
    assert len({k.split(".")[2] for k in text if k.startswith("transformer.resblocks.")}) == 12


def test_from_config_accepts_a_document():
    config = MoGenTSConfig()
    with torch.device("meta"):
        bundle = MoGenTSBundle.from_config(config.to_json_dict())
    assert bundle.config == config
    with pytest.raises(NotImplementedError, match="MoGenTSPipeline"):
        bundle()


def test_bf16_runtime_cast_once(tiny_artifact):
    bundle = MoGenTSBundle.from_pretrained(tiny_artifact, dtype="bf16")
    assert bundle.dtype == torch.bfloat16
    assert bundle.mask_transformer_ts.cond_emb.weight.dtype == torch.bfloat16
    assert bundle.length_estimator.output[0].weight.dtype == torch.float32
    assert bundle.mean.dtype == torch.float32
    with pytest.raises(InvalidInputError, match="unknown dtype"):
        resolve_dtype("float8")
    with pytest.raises(InvalidInputError, match="not available"):
        MoGenTSBundle.from_pretrained(tiny_artifact, device="cuda:7")


def test_model_card_renders(bundle):
    card = render_model_card(bundle, repo_id="someone/mogents-tiny")
    assert card.startswith("---\nlibrary_name: hftrainer-mogents")
    assert "someone/mogents-tiny" in card and "`vq.safetensors`" in card
    assert "{" not in card.split("```")[0]  # every field filled in the front matter and prose


@pytest.fixture
def fake_hub_api(monkeypatch):
    """Replaces huggingface_hub.HfApi (the network boundary); records what would be uploaded."""
    import huggingface_hub

    calls = {}

    class FakeApi:
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, private=None, exist_ok=False):
            calls["create"] = (repo_id, private, exist_ok)

        def upload_folder(self, repo_id, folder_path, revision, commit_message, create_pr):
            from pathlib import Path

            calls["files"] = sorted(p.name for p in Path(folder_path).iterdir())
            calls["card"] = (Path(folder_path) / "README.md").read_text()
            calls["upload"] = (repo_id, revision, commit_message, create_pr)
            return type("Info", (), {"commit_url": f"https://hub/{repo_id}/commit/1"})()

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    return calls


def test_push_to_hub_uploads_artifact_and_card(bundle, fake_hub_api):
    url = bundle.push_to_hub("someone/mogents-tiny", token="t", private=True)
    assert url == "https://hub/someone/mogents-tiny/commit/1"
    assert fake_hub_api["create"] == ("someone/mogents-tiny", True, True)
    assert fake_hub_api["token"] == "t"
    assert set(artifact.ARTIFACT_PATTERNS) <= set(fake_hub_api["files"])
    assert "README.md" in fake_hub_api["files"]
    assert "someone/mogents-tiny" in fake_hub_api["card"]


def test_cli_publish(tiny_artifact, fake_hub_api):
    from click.testing import CliRunner

    from hftrainer_mogents.cli import cli

    result = CliRunner().invoke(
        cli, ["publish", str(tiny_artifact), "--repo-id", "me/tiny", "--private", "--create-pr"]
    )
    assert result.exit_code == 0, result.output
    assert fake_hub_api["create"] == ("me/tiny", True, True)
    assert fake_hub_api["upload"] == ("me/tiny", None, "Upload MoGenTS artifact", True)
    assert "https://hub/me/tiny/commit/1" in result.output


def test_checksums_cannot_be_switched_off_by_damage(copy):
    """A deleted model_index.json, or an index whose map leaves out a file, is refused; only
    verify_checksums=False loads such files, and then a tampered file loads unverified."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(copy / "res_aux.safetensors"))
    first = next(iter(state))
    state[first] = state[first] + 1.0
    save_file(state, str(copy / "res_aux.safetensors"))
    index = json.loads((copy / "model_index.json").read_text())
    with pytest.raises(ChecksumMismatchError, match="res_aux.safetensors"):
        MoGenTSBundle.from_pretrained(copy)
    del index["checksums"]["res_aux.safetensors"]
    (copy / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ArtifactFormatError, match=r"records no checksum for \['res_aux"):
        MoGenTSBundle.from_pretrained(copy)
    (copy / "model_index.json").unlink()
    with pytest.raises(ArtifactFormatError, match="verify_checksums=False") as err:
        MoGenTSBundle.from_pretrained(copy)
    assert "has no model_index.json" in str(err.value)
    bundle = MoGenTSBundle.from_pretrained(copy, verify_checksums=False)
    assert torch.equal(bundle.res_transformer_aux.state_dict()[first], state[first])


def test_bf16_on_a_cpu_without_bf16_instructions_warns(tiny_artifact, monkeypatch, caplog):
    from hftrainer_mogents import bundle as bundle_module
    from hftrainer_mogents.utils import precision

    native = precision.cpu_bf16_instructions()
    assert native in (None, "AMX", "AVX512-BF16")
    monkeypatch.setattr(bundle_module, "cpu_bf16_instructions", lambda: None)
    with caplog.at_level("WARNING", logger="hftrainer_mogents.bundle"):
        MoGenTSBundle.from_pretrained(tiny_artifact, dtype=torch.bfloat16)
    assert "bf16 is emulated there, about 5x slower than float32" in caplog.text
    assert "dtype=None" in caplog.text
    caplog.clear()
    monkeypatch.setattr(bundle_module, "cpu_bf16_instructions", lambda: "AMX")
    with caplog.at_level("WARNING", logger="hftrainer_mogents.bundle"):
        MoGenTSBundle.from_pretrained(tiny_artifact, dtype=torch.bfloat16)
        MoGenTSBundle.from_pretrained(tiny_artifact)  # float32: nothing to say either way
    assert "emulated" not in caplog.text


def test_artifact_layout_functions(tmp_path):
    """The layout lives in artifact.py: which files, the missing-file message, model_index.json."""
    assert artifact.component_files() == artifact.COMPONENT_FILES
    without = artifact.component_files(has_length_estimator=False)
    assert "length_estimator" not in without and list(without) == [
        n for n in artifact.COMPONENT_FILES if n != "length_estimator"
    ]

    (tmp_path / "vq.safetensors").write_bytes(b"vq")
    (tmp_path / "Mean.npy").write_bytes(b"mean")
    artifact.require_artifact_files(tmp_path, ["vq.safetensors", "Mean.npy"])
    with pytest.raises(ArtifactNotFoundError) as err:
        artifact.require_artifact_files(tmp_path, ["vq.safetensors", "clip.safetensors"])
    message = str(err.value)
    assert "lacks ['clip.safetensors']" in message and "--no_clip" in message
    assert "load_length_estimator" not in message
    with pytest.raises(ArtifactNotFoundError, match="load_length_estimator=False"):
        artifact.require_artifact_files(tmp_path, ["length_est.safetensors"])

    index = artifact.build_model_index(
        tmp_path, ["vq.safetensors", "Mean.npy"], has_length_estimator=False
    )
    assert index["checksums"] == {
        "Mean.npy": artifact.sha256_file(tmp_path / "Mean.npy"),
        "vq.safetensors": artifact.sha256_file(tmp_path / "vq.safetensors"),
    }
    assert index["artifacts"]["length_estimator"] is None
    assert index["artifacts"]["clip"] == "clip.safetensors" and index["format"] == artifact.FORMAT
    with_length = artifact.build_model_index(tmp_path, [], has_length_estimator=True)
    assert with_length["artifacts"]["length_estimator"] == "length_est.safetensors"


def test_saved_index_is_built_by_the_artifact_module(bundle, tmp_path):
    folder = bundle.save_pretrained(tmp_path / "saved")
    index = json.loads((folder / artifact.INDEX_NAME).read_text())
    expected = artifact.build_model_index(
        folder, list(index["checksums"]), has_length_estimator=True
    )
    assert index == expected


def test_check_checksums_is_the_old_name_of_verify_checksums():
    from hftrainer_mogents.utils import io

    assert artifact.check_checksums is artifact.verify_checksums is io.verify_checksums
    assert io.check_checksums is io.verify_checksums
