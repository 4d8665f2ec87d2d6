"""Official checkpoints -> artifact: conversion, verification, and what goes wrong."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile

import pytest
import torch
from click.testing import CliRunner

from hftrainer_mogents.cli import cli
from hftrainer_mogents.convert.official import (
    OfficialLayout,
    convert_official,
    format_verify_table,
    verify_artifact,
)
from hftrainer_mogents.convert.official_opts import opt_value, parse_opt_txt
from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture
def release(tiny_root, tmp_path):
    """A writable copy of the official-format tiny release (cwd-style layout)."""
    root = tmp_path / "release"
    shutil.copytree(tiny_root / "logs", root / "logs")
    shutil.copytree(tiny_root / "checkpoints", root / "checkpoints")
    shutil.copy(tiny_root / "clip" / "ViT-B-32-tiny.pt", root / "ViT-B-32.pt")
    return root


def _layout(root):
    return OfficialLayout(weights_root=root / "logs", length_root=root / "checkpoints")


def test_convert_and_verify(release, tmp_path):
    result = convert_official(
        _layout(release), tmp_path / "out", clip=release / "ViT-B-32.pt", verify=True
    )
    assert result.verified
    names = {row.component for row in result.verify}
    assert names == {"vq", "mask_aux", "mask_ts", "res_aux", "res_ts", "length_estimator", "clip"}
    assert all(row.max_tensor_diff == 0 and row.max_output_diff == 0 for row in result.verify)
    table = format_verify_table(result.verify)
    assert "MISMATCH" not in table and table.count("OK") == 7
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left
    with pytest.raises(FileExistsError):
        convert_official(_layout(release), tmp_path / "out", clip=release / "ViT-B-32.pt")


def test_cli_convert_and_script(release, tmp_path):
    out = tmp_path / "cli_out"
    args = [
        "convert",
        "--weights_root",
        str(release / "logs"),
        "--length_root",
        str(release / "checkpoints"),
        "--out_dir",
        str(out),
        "--clip",
        str(release / "ViT-B-32.pt"),
        "--verify",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "verified" in result.output and "MISMATCH" not in result.output
    again = CliRunner().invoke(cli, args)
    assert again.exit_code != 0 and "--overwrite" in again.output
    script = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts/convert_mogents_checkpoint.py"),
            *args[1:5],
            "--out_dir",
            str(tmp_path / "script_out"),
            "--clip",
            str(release / "ViT-B-32.pt"),
            "--no_length_estimator",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert script.returncode == 0, script.stderr
    assert not (tmp_path / "script_out" / "length_est.safetensors").exists()


def test_verify_detects_a_changed_tensor(release, tmp_path):
    from safetensors.torch import load_file, save_file

    from hftrainer_mogents.convert.official import load_official_bundle
    from hftrainer_mogents.utils.io import sha256_file

    out = tmp_path / "out"
    convert_official(_layout(release), out, clip=release / "ViT-B-32.pt")
    _, raw = load_official_bundle(_layout(release), clip=release / "ViT-B-32.pt")
    state = load_file(str(out / "mask_ts.safetensors"))
    state["cond_emb.bias"][0] += 1e-3
    save_file(state, str(out / "mask_ts.safetensors"))
    # a consistent-looking but wrong artifact: its index records the changed file's digest
    index = json.loads((out / "model_index.json").read_text())
    index["checksums"]["mask_ts.safetensors"] = sha256_file(out / "mask_ts.safetensors")
    (out / "model_index.json").write_text(json.dumps(index))
    rows = {row.component: row for row in verify_artifact(out, raw)}
    assert not rows["mask_ts"].ok and rows["mask_ts"].max_tensor_diff == pytest.approx(
        1e-3, rel=1e-3
    )
    assert rows["mask_ts"].max_output_diff > 0 and rows["vq"].ok
    assert "MISMATCH" in format_verify_table(list(rows.values()))


def _drop_key(path, key, subkey):
    ckpt = torch.load(path, weights_only=False)  # test data we wrote ourselves
    del ckpt[key][subkey]
    torch.save(ckpt, path)


def test_dropped_key_in_official_checkpoint(release, tmp_path):
    path = release / "logs/humanml3d/pretrain_rtrans/model/net_best_fid.tar"
    _drop_key(path, "res_transformer_ts", "quant_emb.weight")
    with pytest.raises(ArtifactFormatError, match="quant_emb.weight"):
        convert_official(_layout(release), tmp_path / "out", clip=release / "ViT-B-32.pt")
    assert not (tmp_path / "out").exists()


def test_truncated_official_checkpoint(release, tmp_path):
    path = release / "logs/humanml3d/pretrain_vq/model/net_best_fid.tar"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ArtifactFormatError, match="net_best_fid.tar"):
        convert_official(_layout(release), tmp_path / "out", clip=release / "ViT-B-32.pt")


def test_opt_txt_disagreeing_with_weights(release, tmp_path):
    opt = release / "logs/humanml3d/pretrain_mtrans/opt.txt"
    opt.write_text(opt.read_text().replace("n_layers: 2", "n_layers: 3"))
    with pytest.raises(ArtifactFormatError, match=r"n_layers: 3 disagrees with the weights"):
        convert_official(_layout(release), tmp_path / "out", clip=release / "ViT-B-32.pt")


def test_missing_files_name_the_layout(release, tmp_path, monkeypatch):
    shutil.rmtree(release / "checkpoints")
    with pytest.raises(ArtifactNotFoundError, match="--no_length_estimator"):
        convert_official(_layout(release), tmp_path / "out", clip=release / "ViT-B-32.pt")
    (release / "logs/humanml3d/pretrain_vq/meta/std.npy").unlink()
    with pytest.raises(ArtifactNotFoundError, match="std.npy"):
        convert_official(
            _layout(release),
            tmp_path / "out",
            clip=release / "ViT-B-32.pt",
            load_length_estimator=False,
        )
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(ArtifactNotFoundError, match="--clip"):
        convert_official(_layout(release), tmp_path / "out", load_length_estimator=False)


def test_pickled_code_in_a_checkpoint_is_refused(release, tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    path = release / "logs/humanml3d/pretrain_mtrans/model/net_best_fid.tar"
    ckpt = torch.load(path, weights_only=False)
    ckpt["extra"] = Payload()
    torch.save(ckpt, path)
    assert zipfile.is_zipfile(path)
    with pytest.raises(ArtifactFormatError, match="refused"):
        convert_official(_layout(release), tmp_path / "out", clip=release / "ViT-B-32.pt")


def test_artifacts_are_byte_reproducible(release, tmp_path):
    """Same checkpoints -> same bytes and checksums; save_pretrained after loading rewrites the
    same bytes (safetensors' metadata order would otherwise vary from run to run)."""
    from hftrainer_mogents.bundle import MoGenTSBundle

    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        convert_official(_layout(release), out, clip=release / "ViT-B-32.pt")
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        if name.endswith(".safetensors"):
            assert (first / name).read_bytes() == (second / name).read_bytes(), name
    checksums = json.loads((first / "model_index.json").read_text())["checksums"]
    assert checksums == json.loads((second / "model_index.json").read_text())["checksums"]
    resaved = tmp_path / "resaved"
    MoGenTSBundle.from_pretrained(first).save_pretrained(resaved)
    for name in names:
        if name.endswith((".safetensors", ".npy")):
            assert (resaved / name).read_bytes() == (first / name).read_bytes(), name
    assert json.loads((resaved / "model_index.json").read_text())["checksums"] == checksums


def test_no_clip_writes_an_artifact_without_clip_that_refuses_to_load(release, tmp_path):
    """The zoo's --no_clip: no clip.safetensors (nor its checksum); loading names the cause."""
    import json

    from hftrainer_mogents.bundle import MoGenTSBundle

    out = tmp_path / "no_clip"
    args = ["convert", "--weights_root", str(release / "logs"), "--length_root"]
    args += [str(release / "checkpoints"), "--out_dir", str(out), "--clip"]
    args += [str(release / "ViT-B-32.pt"), "--no_clip", "--verify"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "verified" in result.output  # checked with CLIP before it was dropped
    assert not (out / "clip.safetensors").exists() and (out / "vq.safetensors").is_file()
    index = json.loads((out / "model_index.json").read_text())
    assert "clip.safetensors" not in index["checksums"] and "--no_clip" in index["clip_omitted"]
    with pytest.raises(ArtifactNotFoundError, match="without CLIP \\(--no_clip\\).*again without"):
        MoGenTSBundle.from_pretrained(out)


# ----------------------------------------------------------------------------- opt.txt


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("True", True),
        ("False", False),
        ("0.2", 0.2),
        ("512", 512),
        ("None", "None"),
        ("2e-4", "2e-4"),
        ("[150000, 250000]", "[150000, 250000]"),
        ("-1", "-1"),
    ],
)
def test_opt_value_follows_upstream_rules(text, value):
    assert opt_value(text) == value and type(opt_value(text)) is type(value)


def test_parse_fixture_opt_files(fixtures_dir):
    root = fixtures_dir / "mogents_tiny/logs/humanml3d"
    vq = parse_opt_txt(root / "pretrain_vq/opt.txt")
    assert vq["width"] == 32 and vq["vq_norm"] == "None" and vq["shared_codebook"] is False
    mtrans = parse_opt_txt(root / "pretrain_mtrans/opt.txt")
    assert mtrans["vq_name"] == "pretrain_vq" and mtrans["attnj"] is True


def test_parse_opt_errors(tmp_path):
    with pytest.raises(ArtifactNotFoundError):
        parse_opt_txt(tmp_path / "opt.txt")
    (tmp_path / "opt.txt").write_text("garbage\n")
    with pytest.raises(ArtifactFormatError, match="no 'key: value'"):
        parse_opt_txt(tmp_path / "opt.txt")
