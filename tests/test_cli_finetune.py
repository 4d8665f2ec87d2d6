"""``mogents finetune`` and ``mogents export`` without the host: the typed error naming the install
line, option checks, the shipped configs, the launch line, and the export of a checkpoint written
here in the host's layout."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_bundle import fake_hub_api  # noqa: F401  (the hub boundary's fake, a fixture)
from test_training_data import CAPTIONS, LENGTHS
from training_helpers import write_folder

from hftrainer_mogents.cli import cli
from hftrainer_mogents.cli.export import export_checkpoint, read_run_config, run_provenance
from hftrainer_mogents.cli.finetune import (
    RUN_RECORD,
    FinetuneSettings,
    finetune_overrides,
    launch_command,
)
from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError, InvalidInputError
from hftrainer_mogents.training.configs import CONFIG_NAMES, config_path
from hftrainer_mogents.training.host.runtime import HOST_INSTALL


@pytest.fixture()
def folder(tmp_path) -> Path:
    root = tmp_path / "HumanML3D"
    write_folder(root, LENGTHS, CAPTIONS)
    return root


@pytest.fixture()
def no_host(monkeypatch):
    """``import hftrainer`` fails, as where the host is not installed."""
    for name in [m for m in sys.modules if m == "hftrainer" or m.startswith("hftrainer.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "hftrainer", None)
    monkeypatch.setitem(sys.modules, "hftrainer.registry", None)


def test_finetune_without_the_host_names_the_install_line(no_host, folder, tmp_path):
    work = tmp_path / "work"
    args = ["finetune", "--data", str(folder), "--from", "x/y", "--stage", "mask"]
    result = CliRunner().invoke(cli, [*args, "--work-dir", str(work)])
    assert result.exit_code == 1
    assert "HostNotInstalledError" in result.output and HOST_INSTALL in result.output
    assert not work.exists()  # nothing was made before the check


def test_finetune_option_errors(folder, tmp_path):
    result = CliRunner().invoke(
        cli,
        ["finetune", "--data", str(folder), "--from", "a", "--stage", "gan", "--work-dir", "w"],
    )
    assert result.exit_code == 2 and "Invalid value for '--stage'" in result.output
    good = dict(stage="mask", data=folder, artifact="x/y", work_dir=tmp_path / "w")
    for option, bad, match in [
        ("max_steps", 0, "--max-steps must be at least 1, got 0"),
        ("batch_size", -2, "--batch-size must be at least 1"),
        ("checkpoint_interval", 0, "--checkpoint-interval must be at least 1"),
        ("lr", 0.0, "--lr must be > 0"),
        ("seed", -1, "--seed must be >= 0"),
        ("num_workers", -1, "--num-workers must be >= 0"),
        ("mode", "official", "--mode 'official'"),
        ("mixed_precision", "fp8", "--mixed-precision 'fp8'"),
        ("data", tmp_path / "missing", "--data .*: not a folder"),
        ("config", tmp_path / "none.py", "--config .*: no such file"),
    ]:
        with pytest.raises(InvalidInputError, match=match):
            FinetuneSettings(**{**good, option: bad})


def test_finetune_overrides_reach_the_shipped_config(folder, tmp_path, monkeypatch):
    from mmengine.config import Config

    settings = FinetuneSettings(
        stage="res",
        data=folder,
        artifact="owner/model",
        work_dir=tmp_path / "w",
        max_steps=12,
        lr=3e-4,
        seed=5,
        num_workers=0,
    )
    cfg = Config.fromfile(str(config_path("res")), import_custom_modules=False)
    cfg.merge_from_dict(finetune_overrides(settings))
    assert cfg.model.pretrained == "owner/model" and cfg.model.stage == "res"
    assert cfg.train_dataloader.dataset.data_root == str(folder.resolve())
    assert cfg.train_dataloader.dataset.artifact == "owner/model"
    assert cfg.train_dataloader.dataset.seed == 5 and cfg.trainer.seed == 5
    assert cfg.train_cfg.max_iters == 12 and cfg.optimizer.lr == 3e-4
    assert cfg.train_dataloader.num_workers == 0
    assert cfg.train_dataloader.batch_size == 64  # not given: the config's (official) batch
    assert cfg.optimizer.betas == (0.9, 0.99) and cfg.optimizer.weight_decay == 1e-5
    assert cfg.work_dir == str((tmp_path / "w").resolve())
    assert settings.record()["base_artifact"] == "owner/model"


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_shipped_configs(name, monkeypatch):
    from mmengine.config import Config

    monkeypatch.setenv("MOGENTS_DATA", "/data/h3d")
    monkeypatch.delenv("MOGENTS_ARTIFACT", raising=False)
    path = config_path(name)
    assert path.is_file() and path.parent.name == "configs"
    cfg = Config.fromfile(str(path), import_custom_modules=False)
    stage = "length" if name == "tiny" else name
    assert cfg.custom_imports.imports == ["hftrainer_mogents.training.host.setup"]
    assert cfg.model.type == "MoGenTSTrainingBundle" and cfg.model.stage == stage
    assert cfg.model.pretrained == "ZeyuLing/hftrainer-mogents-humanml3d"  # the default
    assert cfg.trainer.type == "MoGenTSTrainer"
    dataset = cfg.train_dataloader.dataset
    assert dataset.type == "HumanML3DTrainDataset" and dataset.stage == stage
    assert dataset.data_root == "/data/h3d" and dataset.artifact == cfg.model.pretrained
    # the clip is the stage preset's (0.5 for length, none otherwise), written in one place
    assert cfg.trainer.get("grad_clip", "preset") == "preset"
    # the dataset orders each epoch itself (resumable through the host): no loader shuffle
    assert dataset.shuffle is True and cfg.train_dataloader.shuffle is False
    # the transformers' and the VQ's warm-up is the trainer's (the host's schedulers lack it)
    assert cfg.trainer.get("official_schedule", False) == (stage in ("vq", "mask", "res"))
    assert (cfg.get("lr_scheduler") is None) == (stage in ("vq", "mask", "res"))
    assert cfg.default_hooks.checkpoint.save_last


def test_config_path_unknown():
    with pytest.raises(InvalidInputError, match="no shipped config 'gan'"):
        config_path("gan")


def test_launch_command(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    command, env = launch_command(tmp_path / "c.py", 3, mixed_precision="bf16")
    assert command[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert command[command.index("--num_processes") + 1] == "3"
    assert command[command.index("--mixed_precision") + 1] == "bf16"
    assert "--multi_gpu" in command and "--cpu" not in command  # --cpu would start one process
    assert command[-3:] == ["-m", "hftrainer_mogents.cli.host_train", str(tmp_path / "c.py")]
    assert env == {"ACCELERATE_USE_CPU": "1"}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert launch_command(tmp_path / "c.py", 2)[1] == {}


# ---------------------------------------------------------------- export


def _fake_run(tiny_artifact: Path, work: Path, *, steps: int = 7, record: bool = True):
    """A work dir as the host runner leaves it: checkpoint-iter_N/{model.pt, meta.pt}, with the
    length estimator moved away from the artifact's weights."""
    from hftrainer_mogents.bundle import MoGenTSBundle

    bundle = MoGenTSBundle.from_pretrained(tiny_artifact)
    with torch.no_grad():
        for p in bundle.length_estimator.parameters():
            p.add_(0.25)
    ckpt = work / f"checkpoint-iter_{steps}"
    ckpt.mkdir(parents=True)
    torch.save(bundle.state_dict_to_save(), ckpt / "model.pt")
    torch.save({"global_step": steps, "current_epoch": 0}, ckpt / "meta.pt")
    if record:
        doc = {"stage": "length", "base_artifact": str(tiny_artifact), "data": "/d", "seed": 3}
        (work / RUN_RECORD).write_text(json.dumps(doc))
    return bundle


def test_export_writes_a_checksummed_artifact_with_a_finetuning_card(tiny_artifact, tmp_path):
    from hftrainer_mogents.pipeline import MoGenTSPipeline

    work = tmp_path / "work"
    trained = _fake_run(tiny_artifact, work)
    (work / "checkpoint-iter_3").mkdir()  # an older (and empty) one is not taken
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["export", str(work), "--out", str(out)])
    assert result.exit_code == 0, result.output
    pipe = MoGenTSPipeline.from_pretrained(out, device="cpu")  # verifies the checksums
    got = pipe.bundle.length_estimator.state_dict()
    want = trained.length_estimator.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)
    base = json.loads((tiny_artifact / "model_index.json").read_text())["checksums"]
    new = json.loads((out / "model_index.json").read_text())["checksums"]
    assert sorted(k for k in base if base[k] != new[k]) == ["length_est.safetensors"]
    card = (out / "README.md").read_text()
    for row in (
        f"| base artifact | `{tiny_artifact}` |",
        "| training data | `/d` |",
        "| stage | `length` |",
        "| steps | `7` |",
        "| seed | `3` |",
        "| checkpoint | `checkpoint-iter_7` |",
    ):
        assert row in card
    pipe.set_progress_bar_config(disable=True)
    motion = pipe.infer_t2m(["a person walks"], [40], seed=0, time_steps=2)[0]
    assert motion.shape == (40, 263) and np.isfinite(motion).all()


def test_export_reads_the_runners_saved_config(tiny_artifact, tmp_path):
    work = tmp_path / "work"
    _fake_run(tiny_artifact, work, steps=2, record=False)
    run = work / "20260101_000000"
    run.mkdir()
    # mmengine's dump style, as the host's runner saves it
    (run / "config.py").write_text(
        "custom_imports = dict(imports=['hftrainer_mogents.training.host.setup'])\n"
        f"model = dict(pretrained='{tiny_artifact}', stage='length', "
        "type='MoGenTSTrainingBundle')\n"
        "trainer = dict(grad_clip=0.5, mode='default', seed=4, type='MoGenTSTrainer')\n"
        "train_dataloader = dict(batch_size=4, dataset=dict(data_root='/h3d', "
        "type='HumanML3DTrainDataset'), shuffle=True)\n"
        "optimizer = dict(lr=0.001, type='Adam')\n"
    )
    assert read_run_config(run / "config.py")["optimizer"] == {"lr": 0.001, "type": "Adam"}
    prov = run_provenance(work)
    assert prov["base_artifact"] == str(tiny_artifact) and prov["stage"] == "length"
    assert prov["data"] == "/h3d" and prov["seed"] == 4
    folder = export_checkpoint(work, tmp_path / "out")
    assert "| steps | `2` |" in (folder / "README.md").read_text()


def test_export_errors(tiny_artifact, tmp_path):
    with pytest.raises(ArtifactNotFoundError, match="holds no checkpoint"):
        export_checkpoint(tmp_path, tmp_path / "out")
    work = tmp_path / "work"
    _fake_run(tiny_artifact, work, record=False)
    with pytest.raises(ArtifactNotFoundError, match="give it with --from"):
        export_checkpoint(work, tmp_path / "out")
    with pytest.raises(InvalidInputError, match="is the base artifact"):
        export_checkpoint(work, tiny_artifact, base=tiny_artifact)
    # a checkpoint of other networks
    state = torch.load(work / "checkpoint-iter_7" / "model.pt", weights_only=True)
    state["length_estimator"] = {k: v[:1] for k, v in state["length_estimator"].items()}
    torch.save(state, work / "checkpoint-iter_7" / "model.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ArtifactFormatError, match="does not fit the networks of"):
            export_checkpoint(work, tmp_path / "out", base=tiny_artifact)
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "nowhere"), "--out", "o"])
    assert result.exit_code == 1 and "ArtifactNotFoundError" in result.output


def test_publish_keeps_the_finetuning_section(tiny_artifact, tmp_path, fake_hub_api):  # noqa: F811
    """export writes the provenance into finetune.json; publish renders the same Fine-tuning
    rows on the card it uploads, and uploads the file."""
    work = tmp_path / "work"
    _fake_run(tiny_artifact, work)
    out = tmp_path / "out"
    assert CliRunner().invoke(cli, ["export", str(work), "--out", str(out)]).exit_code == 0
    record = json.loads((out / "finetune.json").read_text())
    assert record == {
        "stage": "length",
        "base_artifact": str(tiny_artifact),
        "data": "/d",
        "seed": 3,
        "steps": 7,
        "checkpoint": "checkpoint-iter_7",
    }
    result = CliRunner().invoke(cli, ["publish", str(out), "--repo-id", "me/tuned"])
    assert result.exit_code == 0, result.output
    card = fake_hub_api["card"]
    rows = [line for line in card.splitlines() if line.startswith("| ")]
    expected = [
        f"| base artifact | `{tiny_artifact}` |",
        "| training data | `/d` |",
        "| stage | `length` |",
        "| steps | `7` |",
        "| seed | `3` |",
        "| draws | `unknown` |",
        "| checkpoint | `checkpoint-iter_7` |",
    ]
    assert rows[-len(expected) :] == expected and "## Fine-tuning" in card
    assert "me/tuned" in card and "finetune.json" in fake_hub_api["files"]
    # the same section as export's own card
    local = (out / "README.md").read_text()
    assert local[local.index("## Fine-tuning") :] == card[card.index("## Fine-tuning") :]
    # an artifact that was not fine-tuned: no section, no file
    plain = CliRunner().invoke(cli, ["publish", str(tiny_artifact), "--repo-id", "me/base"])
    assert plain.exit_code == 0, plain.output
    assert "## Fine-tuning" not in fake_hub_api["card"]
    assert "finetune.json" not in fake_hub_api["files"]
    (out / "finetune.json").write_text("[1]")
    bad = CliRunner().invoke(cli, ["publish", str(out), "--repo-id", "me/tuned"])
    assert bad.exit_code == 1 and "ArtifactFormatError" in bad.output
