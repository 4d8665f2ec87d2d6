"""Training through the hftrainer host: the training bundle's roles, the host dataset, the trainer,
and (with the public host installed; skipped without it) the shipped tiny config through the
host's own runner, the export of its checkpoint and a two-process run.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_training_data import CAPTIONS, LENGTHS
from training_helpers import write_folder

from hftrainer_mogents.bundle import MoGenTSBundle
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.host_compat import HostEvaluatorMixin, load_host_checkpoint
from hftrainer_mogents.training.data import Text2MotionDataset
from hftrainer_mogents.training.host.bundle import MoGenTSTrainingBundle
from hftrainer_mogents.training.host.datasets import HumanML3DTrainDataset
from hftrainer_mogents.training.host.runtime import HOST_INSTALL
from hftrainer_mogents.training.host.trainer import MoGenTSTrainer
from hftrainer_mogents.training.loop import forward_step

REPO = Path(__file__).resolve().parent.parent
NETWORKS = [
    "vq_model",
    "mask_transformer_aux",
    "mask_transformer_ts",
    "res_transformer_aux",
    "res_transformer_ts",
    "length_estimator",
    "text_encoder",
]

try:
    import hftrainer  # noqa: F401

    HOST = True
except ImportError:
    HOST = False
needs_host = pytest.mark.skipif(
    not HOST, reason=f"the hftrainer host is not installed ({HOST_INSTALL})"
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("h3d") / "HumanML3D"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_folder(root, LENGTHS, CAPTIONS)
    return root


def _dataset(**kwargs) -> HumanML3DTrainDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the folder's malformed lines, on purpose
        return HumanML3DTrainDataset(**kwargs)


def _tensors(bundle) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in bundle.state_dict().items()}


# ---------------------------------------------------------------- the training bundle


def test_training_bundle_takes_the_stage_preset_and_per_module_dicts(tiny_artifact, tiny_pipeline):
    bundle = MoGenTSTrainingBundle(
        pretrained=tiny_artifact,
        stage="mask",
        text_encoder=dict(save_ckpt=False),
        length_estimator=dict(trainable=True, save_ckpt=True),
    )
    assert bundle.stage == "mask" and bundle.pretrained == str(tiny_artifact)
    assert bundle._trainable_modules == [
        "mask_transformer_aux",
        "mask_transformer_ts",
        "length_estimator",
    ]
    assert "text_encoder" not in bundle._save_ckpt_modules
    assert set(bundle._save_ckpt_modules) == set(NETWORKS) - {"text_encoder"}
    assert set(bundle._frozen_modules) == set(NETWORKS) - set(bundle._trainable_modules)
    for name in NETWORKS:
        grads = {p.requires_grad for p in getattr(bundle, name).parameters()}
        assert grads == {name in bundle._trainable_modules}, name
    # the artifact's weights, bit for bit
    base = tiny_pipeline.bundle.state_dict()
    got = bundle.state_dict()
    assert got.keys() == base.keys()
    assert all(torch.equal(got[k], base[k]) for k in base)
    # frozen networks stay in eval mode under train(); trained ones follow it
    bundle.train()
    assert not bundle.vq_model.training and bundle.mask_transformer_ts.training
    # what the host's optimizer gets: exactly the trained modules' parameters
    expected = [
        p
        for n in ("mask_transformer_aux", "mask_transformer_ts", "length_estimator")
        for p in getattr(bundle, n).parameters()
    ]
    assert [id(p) for p in bundle.trainable_parameters()] == [id(p) for p in expected]
    # loading through the subclass keeps the inference default roles
    plain = MoGenTSTrainingBundle.from_pretrained(tiny_artifact)
    assert (
        plain.stage is None
        and plain._trainable_modules == MoGenTSBundle(plain.config)._trainable_modules
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stage": "lora"}, "unknown training stage 'lora'"),
        ({"unet": {"trainable": True}}, "unknown bundle argument or module 'unet'"),
        ({"vq_model": {"trainable": True, "lr": 1}}, r"vq_model: unknown keys \['lr'\]"),
        ({"vq_model": True}, "vq_model must be a dict"),
    ],
)
def test_training_bundle_bad_settings_are_named(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        MoGenTSTrainingBundle(**kwargs)


# ---------------------------------------------------------------- the host dataset


def test_host_dataset_normalises_with_the_artifacts_statistics(folder, tiny_artifact):
    mean = np.load(tiny_artifact / "Mean.npy")
    std = np.load(tiny_artifact / "Std.npy")
    ds = _dataset(data_root=folder, artifact=tiny_artifact, stage="mask", seed=3)
    np.testing.assert_array_equal(ds.mean, mean)
    np.testing.assert_array_equal(ds.std, std)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = Text2MotionDataset(folder, "train", mean, std, seed=3)
    assert len(ds) == len(direct) == 4
    for i in range(len(ds)):
        caption, motion, m = ds[i]
        expected = direct[i]
        assert caption == expected[0] and m == expected[2]
        np.testing.assert_array_equal(motion, expected[1])
    # the crop itself, by hand: (raw - artifact mean) / artifact std
    clip = direct.clips[0]
    raw = np.asarray(clip.motion, dtype=np.float64)
    normalised = ds.inner.normalise(clip.motion)
    np.testing.assert_allclose(normalised, (raw - mean) / std, rtol=1e-6, atol=1e-6)
    batch = ds.collate_fn([ds[0], ds[1]])
    assert set(batch) == {"captions", "motions", "lengths"}
    assert batch["motions"].shape == (2, 196, 263)


def test_host_dataset_orders_each_epoch_itself(folder, tiny_artifact):
    """shuffle=True: position i of epoch e is item perm(seed, e)[i], read with the key (e, item);
    new crops and order every epoch, the same ones in a pickled (worker) copy."""
    import pickle

    ds = _dataset(data_root=folder, artifact=tiny_artifact, stage="mask", seed=3, shuffle=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = Text2MotionDataset(folder, "train", ds.mean, ds.std, seed=3)
    n = len(ds)

    def items(dataset):
        return [(c, m.tobytes(), k) for c, m, k in (dataset[i] for i in range(n))]

    def by_hand(epoch):  # independent: numpy's generator of (seed, epoch, 0, order stream 1)
        order = np.random.default_rng((3, epoch, 0, 1)).permutation(n)
        return [(c, m.tobytes(), k) for c, m, k in (direct[(epoch, int(i))] for i in order)]

    epochs = []
    for epoch in range(3):
        ds.set_epoch(epoch)
        epochs.append(items(ds))
        assert epochs[-1] == by_hand(epoch)
        assert items(pickle.loads(pickle.dumps(ds))) == epochs[-1]  # a worker's copy
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2]
    # the same item, another epoch: another crop (some item of the tiny folder differs)
    first = {ds.key(i)[1]: epochs[0][i] for i in range(n)}
    ds.set_epoch(1)
    second = {ds.key(i)[1]: epochs[1][i] for i in range(n)}
    assert any(first[k] != second[k] for k in first)
    plain = _dataset(data_root=folder, artifact=tiny_artifact, stage="mask", seed=3)
    plain.set_epoch(2)
    assert [plain.key(i) for i in range(n)] == [(2, i) for i in range(n)]


def test_host_dataset_vq_stage_gives_windows(folder, tiny_artifact):
    ds = _dataset(data_root=folder, artifact=tiny_artifact, stage="vq")
    assert ds[0].shape == (64, 263)
    batch = ds.collate_fn([ds[0], ds[5]])
    assert set(batch) == {"motions", "lengths"} and batch["lengths"].tolist() == [64, 64]


def test_host_dataset_errors(folder, tiny_artifact, tmp_path):
    with pytest.raises(InvalidInputError, match="unknown split 'dev'"):
        _dataset(data_root=folder, artifact=tiny_artifact, split="dev")
    with pytest.raises(InvalidInputError, match="unknown training stage 'gan'"):
        _dataset(data_root=folder, artifact=tiny_artifact, stage="gan")
    from hftrainer_mogents.errors import ArtifactNotFoundError

    with pytest.raises(ArtifactNotFoundError, match="not a MoGenTS artifact folder"):
        _dataset(data_root=folder, artifact=tmp_path)


# ---------------------------------------------------------------- the trainer


@pytest.fixture()
def length_bundle(tiny_artifact) -> MoGenTSTrainingBundle:
    return MoGenTSTrainingBundle(pretrained=tiny_artifact, stage="length")


def _batch(folder, tiny_artifact, n=4):
    ds = _dataset(data_root=folder, artifact=tiny_artifact, stage="length", seed=1)
    return ds.collate_fn([ds[i] for i in range(n)])


def test_trainer_loss_is_the_length_estimators_cross_entropy(length_bundle, folder, tiny_artifact):
    trainer = MoGenTSTrainer(length_bundle, grad_clip=None)
    assert trainer.stage == "length" and not trainer.trainer_controls_optimization
    batch = _batch(folder, tiny_artifact)
    length_bundle.eval()  # the estimator's dropout off: the same function twice
    out = trainer.train_step(batch)
    # by hand: CLIP features -> estimator logits -> CE against frames // 4
    with torch.no_grad():
        feats = length_bundle.text_encoder.encode(batch["captions"]).float()
        logits = length_bundle.length_estimator(feats)
        target = batch["lengths"] // 4
        expected = F.cross_entropy(logits, target)
        acc = (logits.argmax(-1) == target).float().mean()
    torch.testing.assert_close(out["loss"].detach(), expected)
    torch.testing.assert_close(out["acc"], acc)
    assert out["loss"].requires_grad and not out["acc"].requires_grad
    out["loss"].backward()
    assert all(p.grad is not None for p in length_bundle.length_estimator.parameters())
    assert all(p.grad is None for p in length_bundle.vq_model.parameters())


def test_trainer_settings(length_bundle):
    # the length stage's official clip makes the trainer run the optimisation
    clipped = MoGenTSTrainer(length_bundle)
    assert clipped.grad_clip == 0.5 and clipped.trainer_controls_optimization
    assert MoGenTSTrainer.trainer_controls_optimization is False
    with pytest.raises(InvalidInputError, match="needs the host's accelerator"):
        clipped.train_step({"captions": ["a person walks"], "lengths": torch.tensor([40])})
    with pytest.raises(InvalidInputError, match="grad_clip must be > 0"):
        MoGenTSTrainer(length_bundle, grad_clip=0)
    with pytest.raises(InvalidInputError, match="training mode must be one of"):
        MoGenTSTrainer(length_bundle, mode="official")
    plain = MoGenTSBundle(length_bundle.config)  # no stage
    with pytest.raises(InvalidInputError, match="the trainer needs a stage"):
        MoGenTSTrainer(plain)


def test_official_schedule_sets_the_rates(tiny_artifact):
    """The official factor, spelled out: (it + 1) / (warmup + 1) during the warm-up, then
    warmup / (warmup + 1), x0.1 per VQ milestone counted after the warm-up."""
    bundle = MoGenTSTrainingBundle(pretrained=tiny_artifact, stage="vq")
    trainer = MoGenTSTrainer(bundle, official_schedule=True)
    assert trainer.trainer_controls_optimization and trainer.grad_clip is None
    adam = torch.optim.AdamW(bundle.trainable_parameters(), lr=2e-4)
    trainer.set_optimizers({"default": adam})
    for it, factor in [
        (1, 2 / 2001),
        (1999, 2000 / 2001),
        (2000, 2000 / 2001),
        (152_000, 2000 / 2001 * 0.1),
        (252_000, 2000 / 2001 * 0.01),
    ]:
        assert trainer.set_learning_rates(it) == pytest.approx(factor)
        assert adam.param_groups[0]["lr"] == pytest.approx(2e-4 * factor)
    assert adam.param_groups[0]["initial_lr"] == 2e-4  # the configured rate stays the base


def test_the_trainer_steps_through_the_core(length_bundle, folder, tiny_artifact):
    """The trainer's draws and loss are the core's: step_draws / forward_step of
    (seed, 1-based step, rank), dropout included (the estimator stays in training mode)."""
    import types

    trainer = MoGenTSTrainer(length_bundle, seed=7, grad_clip=None)
    assert trainer.get_current_step() == 1 and trainer.draws().mode == "default"
    # independent: numpy's SeedSequence of (seed, step, rank, stream 2), 63 bits
    words = np.random.SeedSequence([7, 3, 0, 2]).generate_state(2, np.uint32)
    seed = (int(words[0]) << 32 | int(words[1])) % 2**63
    expected = torch.rand(5, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(trainer.draws(3).rand(5), expected)
    assert not torch.equal(trainer.draws(3).rand(5), trainer.draws(4).rand(5))

    batch = _batch(folder, tiny_artifact)
    trainer.runner = types.SimpleNamespace(global_step=2)  # the third step
    length_bundle.train()
    out = trainer.train_step(batch)
    again = trainer.train_step(batch)  # the same step twice: the same dropout masks
    torch.testing.assert_close(out["loss"], again["loss"])
    core = forward_step(length_bundle, trainer.objective, batch, seed=7, step=3)
    torch.testing.assert_close(out["loss"], core["loss"])
    trainer.runner = types.SimpleNamespace(global_step=3)
    assert not torch.equal(trainer.train_step(batch)["loss"], out["loss"])


def test_val_step_feeds_the_evaluator_mixin(length_bundle, folder, tiny_artifact):
    trainer = MoGenTSTrainer(length_bundle, grad_clip=None, val_generation={"time_steps": 2})
    batch = _batch(folder, tiny_artifact, n=2)
    out = trainer.val_step(batch)
    assert out["keys"] == ["val0_0", "val0_1"]
    lengths = batch["lengths"].tolist()
    assert [m.shape for m in out["motions"]] == [(n, 263) for n in lengths]

    class Gatherer(HostEvaluatorMixin):
        pass

    ev = Gatherer()
    ev.reset()
    ev.process(out)
    motions, extras = ev._gathered()
    assert list(motions) == out["keys"] and extras["captions"]["val0_1"] == batch["captions"][1]
    again = trainer.val_step(batch)
    assert all(np.array_equal(a, b) for a, b in zip(out["motions"], again["motions"]))
    # a crop below the generator's 40-frame minimum comes back at its own length
    short = trainer.val_step({"captions": ["a person jumps"], "lengths": torch.tensor([36])})
    assert short["motions"][0].shape == (36, 263)
    with pytest.raises(InvalidInputError, match="needs 'captions' and 'lengths'"):
        trainer.val_step({"motions": batch["motions"]})


def test_registration_needs_a_host_that_can_train():
    from mmengine.registry import Registry

    from hftrainer_mogents.zoo import host, plugin

    inference = {n: Registry(n.lower()) for n in host.REGISTRY_NAMES}
    host.register_specs(inference, training=plugin.TRAINING)
    assert "MoGenTSTrainingBundle" not in inference["MODEL_BUNDLES"].module_dict
    full = {n: Registry(n.lower()) for n in (*host.REGISTRY_NAMES, *host.TRAINING_REGISTRY_NAMES)}
    done = host.register_specs(full, training=plugin.TRAINING)
    assert sorted(done) == [
        "DATASETS:HumanML3DEvalDataset",
        "DATASETS:HumanML3DTrainDataset",
        "HOOKS:BestCheckpointHook",
        "HOOKS:DataEpochHook",
        "MODEL_BUNDLES:MoGenTSTrainingBundle",
        "TRAINERS:MoGenTSTrainer",
    ]
    assert full["TRAINERS"].get("MoGenTSTrainer") is MoGenTSTrainer


# ---------------------------------------------------------------- through the host


@pytest.fixture(scope="module")
def host_run(tiny_artifact, folder, tmp_path_factory):
    """The shipped tiny config through the host's runner, as tools/train.py runs it."""
    if not HOST:
        pytest.skip(f"the hftrainer host is not installed ({HOST_INSTALL})")
    from hftrainer_mogents.training.configs import config_path
    from hftrainer_mogents.training.host import runtime as host_runtime

    work = tmp_path_factory.mktemp("host") / "work"
    env = {"MOGENTS_ARTIFACT": str(tiny_artifact), "MOGENTS_DATA": str(folder)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            host_runtime.train_config_file(config_path("tiny"), work_dir=work)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return work


@needs_host
def test_host_registries_hold_the_training_classes():
    from hftrainer.registry import DATASETS, MODEL_BUNDLES, TRAINERS
    from hftrainer.trainers.base_trainer import BaseTrainer

    from hftrainer_mogents.training.host.runtime import ensure_host

    ensure_host()
    assert TRAINERS.get("MoGenTSTrainer") is MoGenTSTrainer
    assert DATASETS.get("HumanML3DTrainDataset") is HumanML3DTrainDataset
    assert MODEL_BUNDLES.get("MoGenTSTrainingBundle") is MoGenTSTrainingBundle
    assert issubclass(MoGenTSTrainer, BaseTrainer)


@needs_host
def test_the_tiny_config_runs_through_the_hosts_runner(host_run, tiny_artifact, tiny_pipeline):
    ckpt = host_run / "checkpoint-iter_4"
    assert (ckpt / "model.pt").is_file() and (ckpt / "optimizer.bin").is_file()
    assert torch.load(ckpt / "meta.pt", weights_only=True)["global_step"] == 4
    state = load_host_checkpoint(ckpt)
    assert state["__hftrainer_meta__"]["modules"]["length_estimator"]["trainable"] is True
    base = {n: getattr(tiny_pipeline.bundle, n).state_dict() for n in NETWORKS}
    for name in NETWORKS:
        same = all(torch.equal(state[name][k], base[name][k]) for k in base[name])
        assert same == (name != "length_estimator"), name  # frozen ones bit-identical
    # the run's log: four steps, each with the loss and the accuracy
    log = next(host_run.glob("*/train.log")).read_text()
    steps = [line for line in log.splitlines() if "step [" in line and "loss=" in line]
    assert len(steps) == 4 and all("acc=" in line for line in steps)


@needs_host
def test_a_seeded_host_run_repeats(host_run, tiny_artifact, folder, tmp_path):
    from mmengine.config import Config

    from hftrainer_mogents.training.configs import config_path
    from hftrainer_mogents.training.host.runtime import ensure_host, run_config

    ensure_host()
    cfg = Config.fromfile(str(config_path("tiny")))
    cfg.merge_from_dict(
        {
            "work_dir": str(tmp_path / "again"),
            "model.pretrained": str(tiny_artifact),
            "train_dataloader.dataset.artifact": str(tiny_artifact),
            "train_dataloader.dataset.data_root": str(folder),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner = run_config(cfg)
    assert runner.global_step == 4
    first = load_host_checkpoint(host_run / "checkpoint-iter_4")["length_estimator"]
    again = load_host_checkpoint(tmp_path / "again" / "checkpoint-iter_4")["length_estimator"]
    assert all(torch.equal(first[k], again[k]) for k in first)


@needs_host
def test_export_of_the_host_checkpoint_loads_and_generates(host_run, tiny_artifact, tmp_path):
    from click.testing import CliRunner

    from hftrainer_mogents.cli import cli
    from hftrainer_mogents.pipeline import MoGenTSPipeline

    out = tmp_path / "finetuned"
    result = CliRunner().invoke(
        cli, ["export", str(host_run), "--out", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    pipe = MoGenTSPipeline.from_pretrained(out, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    motions = pipe.infer_t2m(["a person walks forward"], [40], seed=0, time_steps=2)
    assert motions[0].shape == (40, 263) and np.isfinite(motions[0]).all()
    base = json.loads((tiny_artifact / "model_index.json").read_text())["checksums"]
    new = json.loads((out / "model_index.json").read_text())["checksums"]
    changed = sorted(k for k in base if base[k] != new[k])
    assert changed == ["length_est.safetensors"]
    card = (out / "README.md").read_text()
    # the runner's saved config names the base artifact, data and stage; meta.pt the steps
    assert f"| base artifact | `{tiny_artifact}` |" in card
    assert "| stage | `length` |" in card and "| steps | `4` |" in card
    expected = load_host_checkpoint(host_run / "checkpoint-iter_4")["length_estimator"]
    got = pipe.bundle.length_estimator.state_dict()
    assert all(torch.equal(got[k], expected[k]) for k in expected)


@needs_host
def test_the_trainer_clips_as_the_official_length_trainer(length_bundle, folder, tiny_artifact):
    """One trainer-run step (host accelerator, Adam) equals backward, clip_grad_norm_(0.5) and
    an Adam step done by hand on a copy."""
    from accelerate import Accelerator

    length_bundle.eval()  # the estimator's dropout off: the same function twice
    reference = copy.deepcopy(length_bundle.length_estimator)
    batch = _batch(folder, tiny_artifact)
    trainer = MoGenTSTrainer(length_bundle)
    trainer.accelerator = Accelerator(cpu=True)
    optimizer = torch.optim.Adam(length_bundle.trainable_parameters(), lr=1e-2)
    trainer.set_optimizers({"default": optimizer})
    out = trainer.train_step(batch)
    assert not out["loss"].requires_grad

    feats = length_bundle.text_encoder.encode(batch["captions"]).float()
    loss = F.cross_entropy(reference(feats), batch["lengths"] // 4)
    torch.testing.assert_close(loss.detach(), out["loss"])
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
    assert norm > 0.5  # the clip acts on this batch
    by_hand = torch.optim.Adam(reference.parameters(), lr=1e-2)
    by_hand.step()
    for a, b in zip(length_bundle.length_estimator.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b)


@needs_host
def test_auto_resume_continues_from_the_last_checkpoint(tiny_artifact, folder, tmp_path):
    from mmengine.config import Config

    from hftrainer_mogents.training.configs import config_path
    from hftrainer_mogents.training.host.runtime import ensure_host, run_config

    ensure_host()

    def run(steps: int, resume: bool):
        cfg = Config.fromfile(str(config_path("tiny")))
        cfg.merge_from_dict(
            {
                "work_dir": str(tmp_path / "work"),
                "auto_resume": resume,
                "train_cfg.max_iters": steps,
                "model.pretrained": str(tiny_artifact),
                "train_dataloader.dataset.artifact": str(tiny_artifact),
                "train_dataloader.dataset.data_root": str(folder),
            }
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return run_config(cfg)

    run(2, resume=False)
    runner = run(3, resume=True)
    assert runner.global_step == 3
    log = sorted((tmp_path / "work").glob("*/train.log"))[-1].read_text()
    assert "Resumed: global_step=2" in log
    assert "step [3/3]" in log and "step [1/3]" not in log


@needs_host
@pytest.mark.slow
def test_finetune_with_two_processes(tiny_artifact, folder, tmp_path):
    """``mogents finetune --num-processes 2``: two gloo processes on the CPU (about a minute)."""
    work = tmp_path / "two"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hftrainer_mogents.cli",
            "finetune",
            "--data",
            str(folder),
            "--from",
            str(tiny_artifact),
            "--stage",
            "length",
            "--work-dir",
            str(work),
            "--max-steps",
            "2",
            "--batch-size",
            "2",
            "--num-workers",
            "0",
            "--num-processes",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (work / "checkpoint-iter_2" / "model.pt").is_file()
    log = next(work.glob("*/train.log")).read_text()
    assert "trainer_controls_optimization=True" in log
    assert json.loads((work / "mogents_finetune.json").read_text())["num_processes"] == 2


@needs_host
def test_a_stateful_objective_travels_in_the_accelerators_checkpoints(length_bundle, tmp_path):
    """The VQ's EMA statistics live in its objective's buffers: the trainer registers such an
    objective with the accelerator, so save_state / load_state carry it."""
    from accelerate import Accelerator

    from hftrainer_mogents.training.objectives import StageObjective

    class Stateful(StageObjective):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("code_count", torch.arange(4.0))

    trainer = MoGenTSTrainer(length_bundle, grad_clip=None)
    trainer.objective = Stateful()
    accelerator = Accelerator(cpu=True)
    trainer.accelerator = accelerator
    trainer.accelerator = accelerator  # injected twice: registered once
    assert accelerator._custom_objects == [trainer.objective]
    accelerator.save_state(str(tmp_path / "ckpt"))
    trainer.objective.code_count.fill_(-1.0)
    accelerator.load_state(str(tmp_path / "ckpt"))
    torch.testing.assert_close(trainer.objective.code_count, torch.arange(4.0))
    # a stateless objective (the length estimator's) adds nothing to the checkpoint
    other = Accelerator(cpu=True)
    MoGenTSTrainer(length_bundle, grad_clip=None).accelerator = other
    assert other._custom_objects == []


@needs_host
def test_the_best_checkpoint_hook_keeps_the_best_validation(tiny_artifact, folder, tmp_path):
    from hftrainer.registry import EVALUATORS
    from mmengine.config import Config

    from hftrainer_mogents.training.configs import config_path
    from hftrainer_mogents.training.host.runtime import ensure_host, run_config

    ensure_host()
    fids = iter([3.0, 1.0, 2.0])
    seen = []

    class FakeFID:
        def reset(self):
            seen.append([])

        def process(self, output):
            seen[-1].extend(output["keys"])
            assert all(m.shape[1] == 263 for m in output["motions"])

        def compute(self):
            return {"fid": next(fids)}

    EVALUATORS.register_module(name="FakeFID", module=FakeFID, force=True)
    dataset = dict(
        type="HumanML3DTrainDataset",
        data_root=str(folder),
        artifact=str(tiny_artifact),
        stage="length",
    )
    cfg = Config.fromfile(str(config_path("tiny")))
    cfg.merge_from_dict(
        {
            "work_dir": str(tmp_path / "work"),
            "model.pretrained": str(tiny_artifact),
            "train_dataloader.dataset": {**dataset, "split": "train"},
            "train_cfg.max_iters": 3,
            "trainer.val_generation": {"time_steps": 2},
            "default_hooks.checkpoint.interval": 1,
            "default_hooks.best": {"type": "BestCheckpointHook", "interval": 1, "metric": "fid"},
        }
    )
    cfg.val_dataloader = dict(dataset={**dataset, "split": "val"}, batch_size=4, shuffle=False)
    cfg.val_evaluator = dict(type="FakeFID")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner = run_config(cfg)
    assert len(seen) == 3 and all(len(keys) == 4 for keys in seen)  # the val split, each step
    best = tmp_path / "work" / "best_fid"
    meta = torch.load(best / "meta.pt", weights_only=True)
    assert meta["global_step"] == 2 and meta["value"] == 1.0 and meta["metric"] == "fid"
    kept = load_host_checkpoint(best)["length_estimator"]
    at_two = load_host_checkpoint(tmp_path / "work" / "checkpoint-iter_2")["length_estimator"]
    at_three = load_host_checkpoint(tmp_path / "work" / "checkpoint-iter_3")["length_estimator"]
    assert all(torch.equal(kept[k], at_two[k]) for k in kept)
    assert not all(torch.equal(kept[k], at_three[k]) for k in kept)
    assert runner.bundle.length_estimator.training  # back in train mode after validation


@needs_host
@pytest.mark.slow
def test_best_fid_through_the_hml263_evaluator(tiny_artifact, folder, fixtures_dir, tmp_path):
    """Validation with the protocol's items and the real HumanML3D evaluator: the runner logs an
    FID and the hook keeps that checkpoint."""
    from conftest import require_fixture
    from mmengine.config import Config

    from hftrainer_mogents.convert.evaluator_hml263 import convert_hml263_evaluator
    from hftrainer_mogents.training.configs import config_path
    from hftrainer_mogents.training.host.datasets import HumanML3DEvalDataset
    from hftrainer_mogents.training.host.runtime import ensure_host, run_config

    fx = require_fixture(fixtures_dir / "hml263_eval_tiny")
    root = fx / "dataset" / "HumanML3D"
    evaluator = convert_hml263_evaluator(
        fx / "checkpoints", tmp_path / "ev", glove_dir=fx / "glove"
    )
    ensure_host()
    items = HumanML3DEvalDataset(root, max_samples=6)
    batch = items.collate_fn([items[0], items[1]])
    assert batch["lengths"].tolist() == [items[0].length, items[1].length]
    assert all(n % 4 == 0 and 40 <= n <= 196 for n in (i.length for i in items.items))
    cfg = Config.fromfile(str(config_path("tiny")))
    cfg.merge_from_dict(
        {
            "work_dir": str(tmp_path / "work"),
            "model.pretrained": str(tiny_artifact),
            "train_dataloader.dataset.artifact": str(tiny_artifact),
            "train_dataloader.dataset.data_root": str(folder),
            "train_cfg.max_iters": 1,
            "trainer.val_generation": {"time_steps": 2},
            "default_hooks.best": {"type": "BestCheckpointHook", "interval": 1},
        }
    )
    cfg.val_dataloader = dict(
        dataset=dict(type="HumanML3DEvalDataset", data_root=str(root)),
        batch_size=64,
        shuffle=False,
    )
    cfg.val_evaluator = dict(
        type="HumanML263Evaluator",
        ckpt_dir=str(evaluator),
        dataset_root=str(root),
        device="cpu",
        evaluate_kwargs={"n_repeats": 1, "diversity_times": 10},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_config(cfg)
    meta = torch.load(tmp_path / "work" / "best_fid" / "meta.pt", weights_only=True)
    assert meta["global_step"] == 1 and np.isfinite(meta["value"]) and meta["value"] > 0
    log = next((tmp_path / "work").glob("*/train.log")).read_text()
    assert f"fid={meta['value']:.4f}" in log


def _stage_config(stage: str, tiny_artifact, folder, work: Path, steps: int, **extra):
    from mmengine.config import Config

    from hftrainer_mogents.training.configs import config_path

    cfg = Config.fromfile(str(config_path("tiny")))
    cfg.merge_from_dict(
        {
            "work_dir": str(work),
            "train_cfg.max_iters": steps,
            "model.pretrained": str(tiny_artifact),
            "model.stage": stage,
            "train_dataloader.dataset.artifact": str(tiny_artifact),
            "train_dataloader.dataset.data_root": str(folder),
            "train_dataloader.dataset.stage": stage,
            "train_dataloader.batch_size": 2,  # two steps per epoch of the tiny folder's 4 crops
            **extra,
        }
    )
    return cfg


def _recorded_run(cfg, monkeypatch) -> tuple[dict[int, float], list[int]]:
    """Run ``cfg`` through the host's runner; the loss of each step and the epochs the
    accelerate loader gave the dataset."""
    from hftrainer_mogents.training.host.runtime import run_config

    losses: dict[int, float] = {}
    epochs: list[int] = []
    step, set_epoch = MoGenTSTrainer.train_step, HumanML3DTrainDataset.set_epoch

    def recording_step(self, batch):
        out = step(self, batch)
        losses[self.get_current_step()] = float(out["loss"])
        return out

    def recording_epoch(self, epoch):
        epochs.append(int(epoch))
        set_epoch(self, epoch)

    monkeypatch.setattr(MoGenTSTrainer, "train_step", recording_step)
    monkeypatch.setattr(HumanML3DTrainDataset, "set_epoch", recording_epoch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_config(cfg)
    monkeypatch.undo()
    return losses, epochs


@needs_host
@pytest.mark.parametrize("stage", ["length", "res", "vq", "mask"])
def test_a_stage_through_the_host_resumes_to_the_same_losses_and_exports(
    stage, tiny_artifact, tiny_pipeline, folder, tmp_path, monkeypatch
):
    """A few steps of each stage through the host's runner: a run stopped after 3 steps and
    resumed (auto_resume) gives the per-step losses of an uninterrupted 5-step run; the loader
    passes new epochs to the dataset; the export loads, generates, and only the stage's
    networks changed."""
    from click.testing import CliRunner
    from training_helpers import skip_unwritten

    from hftrainer_mogents.cli import cli
    from hftrainer_mogents.pipeline import MoGenTSPipeline
    from hftrainer_mogents.training.host.runtime import ensure_host
    from hftrainer_mogents.training.stages import STAGE_PRESETS

    probe = MoGenTSTrainingBundle.from_pretrained(tiny_artifact) if stage == "mask" else None
    if probe is not None:
        skip_unwritten(stage, probe, _batch(folder, tiny_artifact))
    ensure_host()
    torch.set_num_threads(1)
    whole, epochs = _recorded_run(
        _stage_config(stage, tiny_artifact, folder, tmp_path / "whole", 5), monkeypatch
    )
    assert sorted(whole) == [1, 2, 3, 4, 5] and all(np.isfinite(list(whole.values())))
    if stage != "vq":  # 4 crops, 2 per step: epochs 0, 1, 2 (the last one started)
        assert epochs == [0, 1, 2]
    first, _ = _recorded_run(
        _stage_config(stage, tiny_artifact, folder, tmp_path / "cut", 3), monkeypatch
    )
    rest, _ = _recorded_run(
        _stage_config(stage, tiny_artifact, folder, tmp_path / "cut", 5, auto_resume=True),
        monkeypatch,
    )
    assert sorted(first) == [1, 2, 3] and sorted(rest) == [4, 5]
    assert {**first, **rest} == whole  # bit-equal losses, step by step

    out = tmp_path / "exported"
    result = CliRunner().invoke(
        cli, ["export", str(tmp_path / "whole"), "--out", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    pipe = MoGenTSPipeline.from_pretrained(out, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    motions = pipe.infer_t2m(["a person walks forward"], [40], seed=0, time_steps=2)
    assert motions[0].shape == (40, 263) and np.isfinite(motions[0]).all()
    trained = STAGE_PRESETS[stage].trainable
    checkpoint = load_host_checkpoint(tmp_path / "whole" / "checkpoint-iter_5")
    for name in NETWORKS:
        base = getattr(tiny_pipeline.bundle, name).state_dict()
        got = getattr(pipe.bundle, name).state_dict()
        same = all(torch.equal(got[k], base[k]) for k in base)
        assert same == (name not in trained), name  # frozen ones bit-identical
        if name in trained:
            assert all(torch.equal(got[k], checkpoint[name][k]) for k in got), name


@needs_host
def test_an_epoch_based_host_run_resumes_to_the_same_losses(
    tiny_artifact, folder, tmp_path, monkeypatch
):
    """by_epoch training: with DataEpochHook, a run stopped after epoch 1 and resumed gives the
    losses of an uninterrupted 3-epoch run (the loader is told the runner's epoch)."""
    from hftrainer_mogents.training.host.runtime import ensure_host

    ensure_host()
    torch.set_num_threads(1)

    def cfg(work: Path, epochs: int, **extra):
        return _stage_config(
            "length",
            tiny_artifact,
            folder,
            work,
            0,
            **{
                "train_cfg": {"by_epoch": True, "max_epochs": epochs},
                "default_hooks.data_epoch": {"type": "DataEpochHook"},
                **extra,
            },
        )

    whole, epochs = _recorded_run(cfg(tmp_path / "whole", 3), monkeypatch)
    assert sorted(whole) == [1, 2, 3, 4, 5, 6] and epochs == [0, 0, 1, 1, 2, 2]
    first, _ = _recorded_run(cfg(tmp_path / "cut", 1), monkeypatch)
    rest, resumed = _recorded_run(cfg(tmp_path / "cut", 3, auto_resume=True), monkeypatch)
    assert sorted(first) == [1, 2] and sorted(rest) == [3, 4, 5, 6]
    assert resumed == [1, 1, 2, 2]  # the hook's epoch, then the loader's own call
    assert {**first, **rest} == whole


@needs_host
@pytest.mark.parametrize("stage", ["length", "res", "vq"])
def test_a_host_run_takes_the_core_loops_steps(stage, tiny_artifact, folder, tmp_path, monkeypatch):
    """The host layer adds no computation of its own: 4 steps through the host's runner give
    the per-step losses of the host-free loop (loop.fit) with the same seed, data and optimizer
    (its draws, dropout seeds, data order, crops, lr factor and clip)."""
    from hftrainer_mogents.training.data import MotionWindowDataset
    from hftrainer_mogents.training.host.runtime import ensure_host
    from hftrainer_mogents.training.loop import fit

    ensure_host()
    torch.set_num_threads(1)
    schedule = (
        {} if stage == "length" else {"trainer.official_schedule": True, "lr_scheduler": None}
    )
    host, _ = _recorded_run(
        _stage_config(stage, tiny_artifact, folder, tmp_path / "host", 4, **schedule), monkeypatch
    )
    bundle = MoGenTSTrainingBundle(pretrained=str(tiny_artifact), stage=stage)
    mean, std = bundle.mean.numpy(), bundle.std.numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if stage == "vq":
            data = MotionWindowDataset(folder, "train", mean, std)
        else:
            data = Text2MotionDataset(folder, "train", mean, std, seed=0)
    # the tiny config's optimizer: Adam(lr=1e-3) with torch's defaults
    adam = {"type": "Adam", "lr": 1e-3, "betas": (0.9, 0.999), "weight_decay": 0.0}
    result = fit(
        bundle,
        stage,
        data,
        steps=4,
        batch_size=2,
        work_dir=tmp_path / "core",
        seed=0,
        optimizer_overrides=adam,
        progress=False,
    )
    core = {int(log["step"]): log["loss"] for log in result.logs}
    assert sorted(host) == sorted(core) == [1, 2, 3, 4]
    for step in core:
        assert host[step] == pytest.approx(core[step], rel=1e-6, abs=1e-6), step
