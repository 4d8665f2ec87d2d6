"""A broken model or artifact is refused with a typed error: non-finite outputs (naming the
prompts, nothing written), and artifacts checked at load (tensor dtypes, config types and
ranges, required sections)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from hftrainer_mogents.artifact import sha256_file
from hftrainer_mogents.cli import cli
from hftrainer_mogents.errors import NonFiniteOutputError
from hftrainer_mogents.pipeline import MoGenTSPipeline


def _copy_artifact(src: Path, tmp_path: Path) -> Path:
    out = tmp_path / "artifact"
    shutil.copytree(src, out)
    return out


def _rechecksum(folder: Path, name: str) -> None:
    """Record ``name``'s new sha256 in ``model_index.json`` (the change is deliberate)."""
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    index["checksums"][name] = sha256_file(folder / name)
    index_path.write_text(json.dumps(index, indent=2))


def _change_tensors(
    folder: Path, name: str, change: Callable[[dict[str, torch.Tensor]], None]
) -> None:
    tensors = load_file(folder / name)
    change(tensors)
    save_file(tensors, folder / name)
    _rechecksum(folder, name)


def _nan_decoder(tensors: dict[str, torch.Tensor]) -> None:
    tensors["decoder1d.model.0.weight"] = torch.full_like(
        tensors["decoder1d.model.0.weight"], float("nan")
    )


@pytest.fixture(scope="module")
def nan_artifact(tiny_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny artifact whose VQ decoder outputs NaN."""
    folder = _copy_artifact(tiny_artifact, tmp_path_factory.mktemp("nan"))
    _change_tensors(folder, "vq.safetensors", _nan_decoder)
    return folder


# ---------------------------------------------------------------------- non-finite outputs


def test_nan_model_call_raises_naming_prompts(nan_artifact):
    pipe = MoGenTSPipeline.from_pretrained(nan_artifact, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    texts = ["a person walks forward", "a man jumps"]
    with pytest.raises(NonFiniteOutputError, match=r"0 \('a person walks forward'\)") as info:
        pipe(texts, [40, 40], seed=0, time_steps=2)
    assert "1 ('a man jumps')" in str(info.value)
    assert "prompts 0 (" in str(info.value)
    # the first bad batch stops the call (no compute is spent on the rest)
    with pytest.raises(NonFiniteOutputError, match=r"for prompt 0 \(") as info:
        pipe(texts, [40, 40], seed=0, time_steps=2, batch_size=1)
    assert "a man jumps" not in str(info.value)


def test_nan_model_edit_and_long_raise(nan_artifact, tiny_pipeline):
    pipe = MoGenTSPipeline.from_pretrained(nan_artifact, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    source = tiny_pipeline("a person walks", [48], seed=0, time_steps=2).motions[0]
    with pytest.raises(NonFiniteOutputError, match="'a person waves'"):
        pipe.edit(source, "a person waves", [(0, 24)], seed=0, time_steps=2)
    with pytest.raises(NonFiniteOutputError, match="'a person sits'"):
        pipe.generate_long(["a person sits"], [40], seed=0, time_steps=2)


def test_nan_model_cli_fails_and_writes_nothing(nan_artifact, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        [
            "generate",
            "a person walks forward",
            "--model",
            str(nan_artifact),
            "--device",
            "cpu",
            "--length",
            "40",
            "--steps",
            "2",
            "--seed",
            "0",
            "--out",
            str(out),
            "--format",
            "npy,joints",
        ],
    )
    assert result.exit_code != 0
    assert "NonFiniteOutputError" in result.output
    assert "'a person walks forward'" in result.output
    written = sorted(p.name for p in out.rglob("*.npy")) if out.exists() else []
    assert written == []
    if (out / "run.json").exists():
        run = json.loads((out / "run.json").read_text())
        assert not run.get("items"), run


def test_finite_outputs_unchanged(tiny_pipeline):
    out = tiny_pipeline(["a person walks"], [40], seed=0, time_steps=2)
    assert np.isfinite(out.motions[0]).all()


# ---------------------------------------------------------------------- artifacts at load


def _edit_config(folder: Path, change: Callable[[dict], None]) -> None:
    path = folder / "mogents_config.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc, indent=2))
    _rechecksum(folder, "mogents_config.json")


def _set(section: str, key: str, value):
    def change(doc: dict) -> None:
        doc["config"][section][key] = value

    return change


def _drop(section: str):
    def change(doc: dict) -> None:
        del doc["config"][section]

    return change


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (_set("mask", "n_layers", "two"), r"config\.mask\.n_layers = 'two': expected an integer"),
        (_set("vq", "num_quantizers", -3), r"config\.vq\.num_quantizers = -3: expected .*>= 1"),
        (_set("res", "dropout", 1.5), r"config\.res\.dropout = 1\.5: expected .*<= 1"),
        (_set("vq", "shared_codebook", "no"), r"config\.vq\.shared_codebook = 'no': expected true"),
        (_set("mask", "n_heads", True), r"config\.mask\.n_heads = True: expected an integer"),
        (_drop("res"), r"no 'res' section"),
        (_drop("length"), r"no 'length' section"),
        (_set("vq", "width", 32.5), r"config\.vq\.width = 32\.5: expected an integer"),
    ],
    ids=["str-int", "negative", "fraction", "str-bool", "bool-int", "no-res", "no-length", "float"],
)
def test_bad_config_is_refused_at_load(tiny_artifact, tmp_path, change, match):
    from hftrainer_mogents.bundle import MoGenTSBundle
    from hftrainer_mogents.errors import ArtifactFormatError

    folder = _copy_artifact(tiny_artifact, tmp_path)
    _edit_config(folder, change)
    with pytest.raises(ArtifactFormatError, match=match) as info:
        MoGenTSBundle.from_pretrained(folder)
    assert "mogents_config.json" in str(info.value)


def test_config_section_not_an_object_is_refused():
    from hftrainer_mogents.config import MoGenTSConfig
    from hftrainer_mogents.errors import ArtifactFormatError

    doc = {"config": {"vq": [1, 2], "mask": {}, "res": {}, "length": None}}
    with pytest.raises(ArtifactFormatError, match=r"x\.json: config\.vq must be a JSON object"):
        MoGenTSConfig.from_json_dict(doc, source="x.json")


def _cast(key: str, dtype: torch.dtype):
    def change(tensors: dict[str, torch.Tensor]) -> None:
        tensors[key] = tensors[key].to(dtype)

    return change


def _cast_all(dtype: torch.dtype):
    def change(tensors: dict[str, torch.Tensor]) -> None:
        for key in tensors:
            tensors[key] = tensors[key].to(dtype)

    return change


@pytest.mark.parametrize(
    ("file", "change", "match"),
    [
        (
            "mask_aux.safetensors",
            _cast("cond_emb.weight", torch.int32),
            r"cond_emb\.weight: int32, expected float32",
        ),
        ("vq.safetensors", _cast_all(torch.float16), r"float16, expected float32"),
        ("res_ts.safetensors", _cast_all(torch.bfloat16), r"bfloat16, expected float32"),
        (
            "clip.safetensors",
            _cast("ln_final.weight", torch.int64),
            r"ln_final\.weight: int64, expected float16 or float32",
        ),
    ],
    ids=["int32", "fp16-vq", "bf16-res", "int-clip"],
)
def test_wrong_tensor_dtype_is_refused_at_load(tiny_artifact, tmp_path, file, change, match):
    from hftrainer_mogents.bundle import MoGenTSBundle
    from hftrainer_mogents.errors import ArtifactFormatError

    folder = _copy_artifact(tiny_artifact, tmp_path)
    _change_tensors(folder, file, change)
    with pytest.raises(ArtifactFormatError, match=match) as info:
        MoGenTSBundle.from_pretrained(folder)
    assert file in str(info.value)


def test_cast_bundle_saves_a_loadable_float32_artifact(tiny_artifact, tmp_path):
    from hftrainer_mogents.bundle import MoGenTSBundle

    bundle = MoGenTSBundle.from_pretrained(tiny_artifact, dtype="bf16")
    out = bundle.save_pretrained(tmp_path / "saved")
    again = MoGenTSBundle.from_pretrained(out)
    assert again.dtype == torch.float32
    assert again.vq_model.linear_out.weight.dtype == torch.float32


# ---------------------------------------------------------------------- the Python API


def test_generation_config_as_a_dict(tiny_artifact, tiny_pipeline):
    from hftrainer_mogents.errors import InvalidInputError
    from hftrainer_mogents.generation_config import GenerationConfig

    settings = {"time_steps": 2, "cond_scale": 3.0}
    by_dict = tiny_pipeline("a person walks", [40], seed=0, generation_config=settings)
    by_config = tiny_pipeline(
        "a person walks", [40], seed=0, generation_config=GenerationConfig(**settings)
    )
    assert by_dict.generation_config == GenerationConfig(**settings)
    np.testing.assert_array_equal(by_dict.motions[0], by_config.motions[0])
    pipe = MoGenTSPipeline.from_pretrained(tiny_artifact, device="cpu", generation_config=settings)
    assert pipe.generation_config == GenerationConfig(**settings)
    with pytest.raises(InvalidInputError, match="unknown generation setting"):
        tiny_pipeline("a person walks", [40], seed=0, generation_config={"steps": 2})
    with pytest.raises(InvalidInputError, match="generation_config must be a GenerationConfig"):
        tiny_pipeline("a person walks", [40], seed=0, generation_config=[2])


def test_from_pretrained_none_is_the_default_repo(monkeypatch):
    from hftrainer_mogents import artifact
    from hftrainer_mogents.errors import ArtifactNotFoundError, InvalidInputError

    asked = []

    def fake_snapshot(repo_id, *args):
        asked.append(repo_id)
        raise ArtifactNotFoundError(f"no {repo_id} here")

    monkeypatch.setattr(artifact, "_snapshot", fake_snapshot)
    with pytest.raises(ArtifactNotFoundError):
        MoGenTSPipeline.from_pretrained(None, device="cpu")
    assert asked == [artifact.DEFAULT_REPO_ID]
    with pytest.raises(InvalidInputError, match="path_or_repo_id must be"):
        MoGenTSPipeline.from_pretrained(5, device="cpu")


def test_text_encoder_dtype_takes_the_dtype_spellings(tiny_artifact):
    from hftrainer_mogents.bundle import MoGenTSBundle
    from hftrainer_mogents.errors import InvalidInputError

    bundle = MoGenTSBundle.from_pretrained(tiny_artifact, text_encoder_dtype="fp32", dtype="bf16")
    assert bundle.config.text_encoder.dtype == "float32"
    assert bundle.dtype == torch.bfloat16
    assert MoGenTSBundle.from_pretrained(
        tiny_artifact, text_encoder_dtype="bf16"
    ).config.text_encoder.dtype == ("bfloat16")
    with pytest.raises(InvalidInputError, match="text_encoder_dtype"):
        MoGenTSBundle.from_pretrained(tiny_artifact, text_encoder_dtype="int8")


def test_bad_options_are_refused_before_loading(monkeypatch, tiny_artifact):
    from hftrainer_mogents import artifact
    from hftrainer_mogents.errors import InvalidInputError

    def no_loading(*args, **kwargs):
        raise AssertionError("the artifact was resolved before the options were checked")

    monkeypatch.setattr(artifact, "resolve_artifact", no_loading)
    with pytest.raises(InvalidInputError, match=r"'meta' cannot hold weights.*--device"):
        MoGenTSPipeline.from_pretrained(tiny_artifact, device="meta")
    with pytest.raises(InvalidInputError, match="unknown dtype"):
        MoGenTSPipeline.from_pretrained(tiny_artifact, device="cpu", dtype="fp8")
    with pytest.raises(InvalidInputError, match="text_encoder_dtype"):
        MoGenTSPipeline.from_pretrained(tiny_artifact, device="cpu", text_encoder_dtype="x")


def test_meta_device_refused_when_moving(tiny_artifact):
    from hftrainer_mogents.errors import InvalidInputError

    pipe = MoGenTSPipeline.from_pretrained(tiny_artifact, device="cpu")
    with pytest.raises(InvalidInputError, match="cannot hold weights"):
        pipe.to("meta")
    assert pipe.device.type == "cpu"


# ---------------------------------------------------------------------- edit spans and sequences


@pytest.fixture(scope="module")
def source(tiny_pipeline) -> np.ndarray:
    return tiny_pipeline("a person walks", [48], seed=0, time_steps=2).motions[0]


def test_unaligned_keep_is_snapped_with_a_warning(tiny_pipeline, source, caplog):
    import logging

    aligned = tiny_pipeline.edit(source, "a man jumps", [(0, 36)], seed=3, time_steps=2)
    with caplog.at_level(logging.WARNING):
        out = tiny_pipeline.edit(source, "a man jumps", [(0, 39)], seed=3, time_steps=2)
    assert "keep[0]: kept frames 0:39 -> 0:36" in caplog.text
    assert out.settings["edit"]["keep"] == [[[0, 36]]]
    np.testing.assert_array_equal(out.motions[0], aligned.motions[0])
    # a start inside a step moves to the next step; a mask is snapped the same way
    caplog.clear()
    mask = np.zeros(48, bool)
    mask[2:30] = True
    with caplog.at_level(logging.WARNING):
        snapped = tiny_pipeline.edit(source, "a man jumps", mask, seed=3, time_steps=2)
    assert "kept frames 2:30 -> 4:28" in caplog.text
    assert snapped.settings["edit"]["keep"] == [[[4, 28]]]


def test_keep_covering_no_whole_step_is_refused(tiny_pipeline, source):
    from hftrainer_mogents.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=r"keep\[0\] keeps frames 0:2, which cover no"):
        tiny_pipeline.edit(source, "a man jumps", [(0, 2)], seed=3)
    with pytest.raises(InvalidInputError, match=r"frames 1:3, 5:7, which cover no"):
        tiny_pipeline.edit(source, "a man jumps", [(1, 3), (5, 7)], seed=3)


def test_generate_long_floors_segment_lengths(tiny_pipeline, caplog):
    import logging

    with caplog.at_level(logging.WARNING):
        out = tiny_pipeline.generate_long(["walks", "sits"], [42, 41.5], seed=0, time_steps=1)
    assert "lengths[0] = 42 frames -> 40" in caplog.text
    assert "lengths[1] = 41.5 frames -> 40" in caplog.text
    assert out.lengths == [80]
    assert [s["frames"] for s in out.settings["sequence"]] == [40, 40]


def test_generate_long_transition_checked_up_front(tiny_pipeline, monkeypatch):
    from hftrainer_mogents.errors import InvalidInputError

    def no_compute(*args, **kwargs):
        raise AssertionError("generated before the transition was checked")

    monkeypatch.setattr(type(tiny_pipeline), "_generate", no_compute)
    with pytest.raises(InvalidInputError, match=r"transition = 80 frames.*only 40 frames"):
        tiny_pipeline.generate_long(["walks", "sits"], [40, 40], transition=80, seed=0)
