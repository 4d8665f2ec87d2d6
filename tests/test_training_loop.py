"""The host-free training core (hftrainer_mogents.training.loop): the step's update against a
hand-written one, frozen modules, data order, resume to the same losses and weights, two gloo
processes against one, an overfit, atomic checkpoints and typed errors."""

from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.utils.data import DataLoader
from training_helpers import (
    distributed_fit_worker,
    free_port,
    skip_unwritten,
    stage_dataset,
    trainable_bundle,
    trained_weights,
    write_overfit_folder,
    zero_dropout,
)

from hftrainer_mogents.errors import (
    ArtifactFormatError,
    InvalidInputError,
    NonFiniteOutputError,
    OutputWriteError,
)
from hftrainer_mogents.training import loop
from hftrainer_mogents.training.data import (
    EpochSampler,
    Text2MotionDataset,
    collate_motion_windows,
    collate_text_motion,
)
from hftrainer_mogents.training.loop import (
    CHECKPOINT_NAME,
    TrainState,
    batch_indices,
    build_optimizer,
    fit,
    frozen_fingerprint,
    load_checkpoint,
    save_checkpoint,
    step_draws,
    step_seed,
    train_step,
)
from hftrainer_mogents.training.objectives import StageObjective, build_objective
from hftrainer_mogents.training.stages import STAGE_PRESETS, apply_stage

# every stage; those whose objective is still a stub skip (one line per stage added)
STAGES = ["length", "vq", "mask", "res"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # the tiny networks gain nothing from intra-op threads, and on a busy 2-core machine
    # spinning OpenMP threads make these tests ~10x slower (measured: 24 s -> 2.7 s)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_overfit_folder(tmp_path_factory.mktemp("h3d") / "h3d")


@pytest.fixture()
def bundle(tiny_artifact):
    return trainable_bundle(tiny_artifact)


def _first_batch(stage, root, bundle, size=4):
    dataset = stage_dataset(stage, root, bundle)
    collate = collate_motion_windows if stage == "vq" else collate_text_motion
    return collate([dataset[i] for i in range(size)])


def _states(bundle):
    return {
        name: {k: v.clone() for k, v in module.state_dict().items()}
        for name, module in bundle.components()
    }


# ---------------------------------------------------------------------------- random sources


def test_step_seeds_depend_on_seed_step_and_rank_only():
    assert step_seed(3, 5, 0, 2) == step_seed(3, 5, 0, 2)
    keys = [(3, 5, 0, 2), (3, 6, 0, 2), (3, 5, 1, 2), (4, 5, 0, 2), (3, 5, 0, 3), (3, 5, 0, 0)]
    seeds = {step_seed(*key) for key in keys}
    assert len(seeds) == len(keys) and all(0 <= s < 2**63 for s in seeds)
    a, b = step_draws(3, 5, 1, world_size=2), step_draws(3, 5, 1, world_size=2)
    assert torch.equal(a.rand(10), b.rand(10))
    assert not torch.equal(step_draws(3, 6).rand(10), step_draws(3, 5).rand(10))
    assert not torch.equal(step_draws(4, 5).rand(10), step_draws(3, 5).rand(10))
    assert step_draws(3, 5, mode="reference").reference
    with pytest.raises(InvalidInputError, match="non-negative"):
        step_seed(-1, 2, 0, 0)


def test_data_order_depends_on_seed_and_epoch_only():
    n, batch = 10, 4  # 2 global batches per epoch, 2 items left out
    steps = {s: batch_indices(n, batch, seed=7, step=s) for s in range(1, 7)}
    assert [steps[s][0] for s in range(1, 7)] == [0, 0, 1, 1, 2, 2]
    for epoch in range(3):
        first, second = steps[2 * epoch + 1][1], steps[2 * epoch + 2][1]
        # an epoch's batches are disjoint slices of one permutation
        assert len(set(first + second)) == 8 and set(first + second) <= set(range(n))
        # the permutation is numpy's from (seed, epoch), the order of an EpochSampler
        rng = np.random.default_rng((7, epoch, 0, 1))
        assert first + second == rng.permutation(n)[:8].tolist()
        sampler = EpochSampler(n, seed=7)
        sampler.set_epoch(epoch)
        assert [key[1] for key in sampler][:8] == first + second
        assert {key[0] for key in sampler} == {epoch}
    assert steps[1][1] != steps[3][1]  # epochs are shuffled anew
    assert batch_indices(n, batch, seed=8, step=1)[1] != steps[1][1]
    # two processes split each global batch into contiguous halves
    for s in range(1, 7):
        halves = [batch_indices(n, batch, seed=7, step=s, rank=r, world_size=2)[1] for r in (0, 1)]
        assert halves[0] + halves[1] == steps[s][1]
    with pytest.raises(InvalidInputError, match="multiple of the 3 processes"):
        batch_indices(n, batch, seed=7, step=1, world_size=3)
    with pytest.raises(InvalidInputError, match="between 1 and the dataset's 10 items"):
        batch_indices(n, 11, seed=7, step=1)


def test_dataset_items_are_keyed_by_seed_epoch_and_index(root, bundle):
    ds = stage_dataset("length", root, bundle, seed=5)
    forward = [ds[i] for i in range(len(ds))]
    backward = [ds[i] for i in reversed(range(len(ds)))][::-1]
    for (c1, m1, n1), (c2, m2, n2) in zip(forward, backward):
        assert (c1, n1) == (c2, n2) and (m1 == m2).all()
    fresh = stage_dataset("length", root, bundle, seed=5)
    epochs = []
    for epoch in range(4):
        fresh.set_epoch(epoch)
        epochs.append([(fresh[i][2], float(fresh[i][1].sum())) for i in range(len(fresh))])
    assert [(m, float(x.sum())) for _, x, m in forward] == epochs[0]
    assert len({tuple(e) for e in epochs}) == 4  # every epoch crops anew
    # a key carries its epoch: (2, i) reads what index i reads in epoch 2
    assert [(ds[(2, i)][2], float(ds[(2, i)][1].sum())) for i in range(len(ds))] == epochs[2]
    windows = stage_dataset("vq", root, bundle)
    assert (windows[(5, 3)] == windows[3]).all()  # nothing drawn: the epoch changes nothing


def test_an_epoch_sampler_feeds_persistent_workers_each_epoch(root, bundle):
    """Persistent workers never see set_epoch on the dataset; the sampler's keys carry it."""
    dataset = stage_dataset("length", root, bundle, seed=6)
    sampler = EpochSampler(dataset, seed=1)
    loader = DataLoader(
        dataset,
        sampler=sampler,
        batch_size=4,
        num_workers=2,
        persistent_workers=True,
        collate_fn=collate_text_motion,
    )
    reader = stage_dataset("length", root, bundle, seed=6)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        reader.set_epoch(epoch)
        order = np.random.default_rng((1, epoch, 0, 1)).permutation(8).tolist()
        batches = list(loader)
        for batch, indices in zip(batches, (order[:4], order[4:]), strict=True):
            expected = collate_text_motion([reader[i] for i in indices])
            assert batch["captions"] == expected["captions"]
            assert torch.equal(batch["motions"], expected["motions"])


# ---------------------------------------------------------------------------- one step


def test_train_step_is_the_official_update(root, bundle):
    """One step of the length stage against a hand-written one: CE of length // 4 from the
    CLIP features, backward, the norm clipped at 0.5, Adam with the warm-up rate of the step."""
    zero_dropout(bundle)
    preset = dataclasses.replace(STAGE_PRESETS["length"], warmup_iters=10)
    apply_stage(bundle, "length")
    batch = _first_batch("length", root, bundle)
    twin = copy.deepcopy(bundle.length_estimator)
    optimizer = build_optimizer(bundle, preset)
    objective = build_objective("length", bundle)
    logs = train_step(bundle, objective, optimizer, batch, step=3, preset=preset, seed=0)

    feats = bundle.encode_text(batch["captions"]).detach()
    loss = F.cross_entropy(twin(feats), batch["lengths"] // 4)
    loss.backward()
    params = list(twin.parameters())
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
    scale = min(1.0, 0.5 / (float(norm) + 1e-6))
    for p in params:
        p.grad.mul_(scale)
    lr = 1e-4 * (3 + 1) / (10 + 1)  # official warm-up at iteration 3
    torch.optim.Adam(params, lr=lr).step()

    assert logs["loss"] == pytest.approx(loss.item(), abs=1e-6)
    assert logs["grad_norm"] == pytest.approx(float(norm), rel=1e-5)
    assert logs["lr"] == pytest.approx(lr, rel=1e-12)
    for (name, ours), theirs in zip(bundle.length_estimator.named_parameters(), params):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-7, msg=name)


def test_optimizer_follows_the_preset(bundle):
    apply_stage(bundle, "length")
    opt = build_optimizer(bundle, "length")
    assert type(opt) is torch.optim.Adam and opt.param_groups[0]["lr"] == 1e-4
    assert {id(p) for p in opt.param_groups[0]["params"]} == {
        id(p) for p in bundle.length_estimator.parameters()
    }
    opt = build_optimizer(bundle, "length", type="AdamW", lr=2e-3, weight_decay=0.1)
    assert type(opt) is torch.optim.AdamW and opt.param_groups[0]["initial_lr"] == 2e-3
    with pytest.raises(InvalidInputError, match="not a torch.optim optimizer"):
        build_optimizer(bundle, "length", type="Lion")
    with pytest.raises(InvalidInputError, match="bad arguments for Adam"):
        build_optimizer(bundle, "length", momentum=0.9)


@pytest.mark.parametrize("stage", STAGES)
def test_frozen_modules_stay_bit_identical(stage, root, bundle, tmp_path):
    skip_unwritten(stage, bundle, _first_batch(stage, root, bundle))
    before = _states(bundle)
    mean, std = bundle.mean.clone(), bundle.std.clone()
    fit(
        bundle,
        stage,
        stage_dataset(stage, root, bundle),
        steps=4,
        batch_size=4,
        work_dir=tmp_path,
        optimizer_overrides={"lr": 1e-3},
        progress=False,
    )
    after = _states(bundle)
    trained = STAGE_PRESETS[stage].trainable
    for name, module in bundle.components():
        changed = [k for k in before[name] if not torch.equal(before[name][k], after[name][k])]
        if any(getattr(bundle, t) is module for t in trained):
            assert changed, f"{name} was trained but did not change"
        else:
            assert not changed, f"frozen {name} changed: {changed[:3]}"
    assert torch.equal(bundle.mean, mean) and torch.equal(bundle.std, std)
    assert not bundle.text_encoder.training


# ---------------------------------------------------------------------------- resume


class _Killed(Exception):
    pass


@pytest.mark.parametrize("stage", STAGES)
def test_a_killed_run_resumes_to_the_same_losses_and_weights(stage, root, tiny_artifact, tmp_path):
    """12 steps of batch 4 over 8 items (6 epochs of new crops, dropout on): killed at step 7
    after the checkpoint of step 4, resumed, it retakes steps 5..12 of the uninterrupted run."""
    probe = trainable_bundle(tiny_artifact)
    skip_unwritten(stage, probe, _first_batch(stage, root, probe))
    args = dict(steps=12, batch_size=4, seed=11, optimizer_overrides={"lr": 1e-3}, progress=False)

    whole = trainable_bundle(tiny_artifact)
    reference = fit(
        whole, stage, stage_dataset(stage, root, whole), work_dir=tmp_path / "a", **args
    )
    assert [log["step"] for log in reference.logs] == list(range(1, 13))

    def kill_at_7(step, logs):
        if step == 7:
            raise _Killed

    first = trainable_bundle(tiny_artifact)
    seen = []
    with pytest.raises(_Killed):
        fit(
            first,
            stage,
            stage_dataset(stage, root, first),
            work_dir=tmp_path / "b",
            checkpoint_interval=4,
            callback=lambda step, logs: (seen.append(logs["loss"]), kill_at_7(step, logs)),
            **args,
        )
    assert seen == reference.losses[:7]

    again = trainable_bundle(tiny_artifact)  # a new process: nothing kept but the checkpoint
    resumed = fit(
        again,
        stage,
        stage_dataset(stage, root, again),
        work_dir=tmp_path / "b",
        checkpoint_interval=4,
        **args,
    )
    assert resumed.resumed_from == 4 and resumed.step == 12
    assert resumed.losses == reference.losses[4:]
    for name in STAGE_PRESETS[stage].trainable:
        for key, value in getattr(whole, name).state_dict().items():
            assert torch.equal(value, getattr(again, name).state_dict()[key]), f"{name}.{key}"
    # stopped after 5 steps on purpose, then asked for 12: the same run too
    short = trainable_bundle(tiny_artifact)
    head = fit(
        short,
        stage,
        stage_dataset(stage, root, short),
        work_dir=tmp_path / "c",
        **args | {"steps": 5},
    )
    tail = fit(short, stage, stage_dataset(stage, root, short), work_dir=tmp_path / "c", **args)
    assert head.losses + tail.losses == reference.losses
    # a finished run has nothing left to do
    done = fit(again, stage, stage_dataset(stage, root, again), work_dir=tmp_path / "b", **args)
    assert done.logs == [] and done.step == 12


# ---------------------------------------------------------------------------- processes


@pytest.mark.parametrize("workers", [0, 2])
def test_each_step_gets_the_items_of_its_epoch(workers, root, bundle, tmp_path, monkeypatch):
    """The batch of step s is the collate of batch_indices(s)'s items, cropped as in s's epoch
    (4 steps of 4 over 8 items = 2 epochs), also when loader workers read them."""
    seen = {}
    original = loop.train_step

    def recording_step(bundle, objective, optimizer, batch, *, step, **kwargs):
        seen[step] = batch
        return original(bundle, objective, optimizer, batch, step=step, **kwargs)

    monkeypatch.setattr(loop, "train_step", recording_step)
    fit(
        bundle,
        "length",
        stage_dataset("length", root, bundle, seed=4),
        steps=4,
        batch_size=4,
        seed=9,
        work_dir=tmp_path,
        num_workers=workers,
        progress=False,
    )
    reader = stage_dataset("length", root, bundle, seed=4)
    for step in range(1, 5):
        epoch, indices = batch_indices(8, 4, seed=9, step=step)
        reader.set_epoch(epoch)
        expected = collate_text_motion([reader[i] for i in indices])
        assert seen[step]["captions"] == expected["captions"]
        assert torch.equal(seen[step]["lengths"], expected["lengths"])
        assert torch.equal(seen[step]["motions"], expected["motions"])


def test_an_unseeded_dataset_takes_the_run_seed(root, tiny_artifact, tmp_path):
    def run(seed, name):
        bundle = trainable_bundle(tiny_artifact)
        dataset = Text2MotionDataset(root, "train", bundle.mean.numpy(), bundle.std.numpy())
        assert not dataset.seeded
        kwargs = dict(steps=2, batch_size=4, seed=seed, progress=False)
        return fit(bundle, "length", dataset, work_dir=tmp_path / name, **kwargs).losses

    assert run(1, "a") == run(1, "b") != run(2, "c")


@pytest.mark.parametrize("stage", STAGES)
def test_two_gloo_processes_give_the_one_process_losses(stage, root, tiny_artifact, tmp_path):
    """2 processes x 4 items = one process x 8 items, per step and in the final weights, in
    every stage (dropout off, since its masks depend on the split): the per-sample draws are
    the global batch's, the VQ's statistics and reset rows the global batch's, the token means
    over the global batch's tokens."""
    probe = trainable_bundle(tiny_artifact)
    skip_unwritten(stage, probe, _first_batch(stage, root, probe))
    job = dict(
        artifact=tiny_artifact,
        root=root,
        stage=stage,
        steps=4,
        batch_size=8,
        seed=2,
        lr=1e-3,
        work_dir=tmp_path / "two",
        out=tmp_path / "two.pt",
    )
    start = time.perf_counter()
    # fork (as DataLoader workers do; the worker sets one thread first): spawn would import
    # torch again in each child, seconds on a busy machine
    mp.start_processes(
        distributed_fit_worker, args=(2, free_port(), job), nprocs=2, start_method="fork"
    )
    elapsed = time.perf_counter() - start
    two = torch.load(job["out"], weights_only=True)

    one_bundle = zero_dropout(trainable_bundle(tiny_artifact))
    before = trained_weights(one_bundle, stage)
    one = fit(
        one_bundle,
        stage,
        stage_dataset(stage, root, one_bundle),
        steps=4,
        batch_size=8,
        seed=2,
        work_dir=tmp_path / "one",
        optimizer_overrides={"lr": 1e-3},
        progress=False,
    )
    assert len(two["losses"]) == 4
    # rtol: a float32 loss of ~70 (the VQ's) is exact to ~8e-6 (measured gap: 7.6e-6)
    torch.testing.assert_close(
        torch.tensor(two["losses"]), torch.tensor(one.losses), rtol=1e-6, atol=1e-5
    )
    after = trained_weights(one_bundle, stage)
    assert any(not torch.equal(before[k], after[k]) for k in after)  # it did train
    assert set(two["weights"]) == set(after)
    for key, value in after.items():
        torch.testing.assert_close(two["weights"][key], value, rtol=0, atol=1e-5, msg=key)
    assert load_checkpoint(job["work_dir"] / CHECKPOINT_NAME, one_bundle).step == 4
    assert elapsed < 60


def test_default_draws_are_shared_between_processes_and_reference_draws_are_not():
    """Default mode: the same generator and Python source in every process (a per-sample draw
    then takes the process's rows of the global draw); reference mode: the Python source is
    shared (the VQ's quantizer dropout), the generator per process."""
    one = step_draws(3, 5)
    halves = [step_draws(3, 5, rank, world_size=2) for rank in (0, 1)]
    whole = one.rand(8, 3)
    parts = [d.rand(4, 3, per_sample=True) for d in halves]
    assert torch.equal(torch.cat(parts), whole)
    shared = one.rand(5)
    assert all(torch.equal(d.rand(5), shared) for d in halves)  # shared after that too
    assert {d.python.random() for d in halves} == {one.python.random()}
    ref = [step_draws(3, 5, rank, world_size=2, mode="reference") for rank in (0, 1)]
    assert torch.equal(ref[0].rand(4), step_draws(3, 5, mode="reference").rand(4))
    assert not torch.equal(ref[0].rand(4, per_sample=True), ref[1].rand(4, per_sample=True))
    assert ref[0].python.random() == ref[1].python.random()


# ---------------------------------------------------------------------------- overfit


def test_the_length_stage_overfits_8_motions(root, bundle, tmp_path):
    dataset = stage_dataset("length", root, bundle)
    items = [dataset[i] for i in range(len(dataset))]  # 8 fixed crops: a learnable target
    result = fit(
        bundle,
        "length",
        items,
        steps=20,
        batch_size=8,
        work_dir=tmp_path,
        collate_fn=collate_text_motion,
        optimizer_overrides={"lr": 1e-3},
        progress=False,
    )
    first, last = result.losses[0], sum(result.losses[-3:]) / 3
    assert first > 5 * last, (first, last)
    assert result.logs[-1]["acc"] == 1.0


# ---------------------------------------------------------------------------- checkpoints


def _saved_run(root, bundle, work_dir, steps=2):
    return fit(
        bundle,
        "length",
        stage_dataset("length", root, bundle),
        steps=steps,
        batch_size=4,
        work_dir=work_dir,
        progress=False,
    )


class _StatefulObjective(StageObjective):
    """An objective with training-only buffers, as the VQ's EMA codebook statistics are."""

    def __init__(self):
        super().__init__()
        self.register_buffer("usage", torch.zeros(5))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))


def test_a_checkpoint_round_trips_weights_objective_state_and_optimizer(
    root, bundle, tiny_artifact, tmp_path
):
    fit(
        bundle,
        "length",
        stage_dataset("length", root, bundle),
        steps=2,
        batch_size=4,
        work_dir=tmp_path / "run",
        progress=False,
    )
    optimizer = build_optimizer(bundle, "length")
    load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME, bundle, optimizer=optimizer)
    objective = _StatefulObjective()
    objective.usage.copy_(torch.arange(5.0))
    objective.steps.fill_(7)
    state = TrainState("length", 2, 3, 4, "reference", "abc", {"note": "kept"})
    path = save_checkpoint(tmp_path / "ckpt.pt", bundle, objective, optimizer, state)

    other = trainable_bundle(tiny_artifact)
    apply_stage(other, "length")
    other_opt = build_optimizer(other, "length")
    other_obj = _StatefulObjective()
    loaded = load_checkpoint(path, other, other_obj, other_opt, stage="length", fingerprint="abc")
    assert loaded == state
    assert torch.equal(other_obj.usage, torch.arange(5.0)) and int(other_obj.steps) == 7
    for key, value in bundle.length_estimator.state_dict().items():
        assert torch.equal(other.length_estimator.state_dict()[key], value)
    ours, theirs = optimizer.state_dict(), other_opt.state_dict()
    assert ours["param_groups"] == theirs["param_groups"]
    for index, slots in ours["state"].items():
        for name, value in slots.items():
            assert torch.equal(theirs["state"][index][name], value), (index, name)
    assert ours["state"] and int(ours["state"][0]["step"]) == 2


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_a_checkpoint_is_never_half_written(failure, root, bundle, tmp_path, monkeypatch):
    _saved_run(root, bundle, tmp_path)
    path = tmp_path / CHECKPOINT_NAME
    good = path.read_bytes()
    objective = build_objective("length", bundle)
    optimizer = build_optimizer(bundle, "length")

    def broken_save(obj, handle, *args, **kwargs):
        handle.write(good[: len(good) // 2])  # half a file, then the failure
        raise failure

    monkeypatch.setattr(loop.torch, "save", broken_save)
    state = TrainState("length", 3, 0, 4, "default", frozen_fingerprint(bundle, "length"))
    expected = OutputWriteError if isinstance(failure, OSError) else KeyboardInterrupt
    with pytest.raises(expected, match="disk full" if expected is OutputWriteError else None):
        save_checkpoint(path, bundle, objective, optimizer, state)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]  # no leftovers
    assert load_checkpoint(path, bundle, objective, optimizer, stage="length").step == 2


def test_typed_errors(root, bundle, tiny_artifact, tmp_path):
    dataset = stage_dataset("length", root, bundle)
    with pytest.raises(InvalidInputError, match="unknown training stage 'lora'"):
        fit(bundle, "lora", dataset, steps=1, batch_size=4, work_dir=tmp_path, progress=False)
    with pytest.raises(InvalidInputError, match="default, reference"):
        fit(bundle, "length", dataset, steps=1, batch_size=4, work_dir=tmp_path, mode="fast")
    with pytest.raises(InvalidInputError, match="steps must be at least 1"):
        fit(bundle, "length", dataset, steps=0, batch_size=4, work_dir=tmp_path)
    with pytest.raises(InvalidInputError, match="between 1 and the dataset's 8 items"):
        fit(bundle, "length", dataset, steps=1, batch_size=9, work_dir=tmp_path)

    _saved_run(root, bundle, tmp_path)
    # another stage from the same work_dir: refused before any step
    other = trainable_bundle(tiny_artifact)
    with pytest.raises(InvalidInputError, match="checkpoint of the 'length' stage, not 'mask'"):
        fit(other, "mask", dataset, steps=3, batch_size=4, work_dir=tmp_path, progress=False)
    # another artifact: a frozen network (the VQ) differs
    other = trainable_bundle(tiny_artifact)
    with torch.no_grad():
        next(other.vq_model.parameters()).add_(1e-3)
    with pytest.raises(InvalidInputError, match="trained from another artifact"):
        fit(other, "length", dataset, steps=3, batch_size=4, work_dir=tmp_path, progress=False)
    # resume=False starts afresh over it
    fresh = fit(
        other,
        "length",
        dataset,
        steps=1,
        batch_size=4,
        work_dir=tmp_path,
        resume=False,
        progress=False,
    )
    assert fresh.resumed_from == 0 and fresh.step == 1
    # a file that is not a training checkpoint
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(ArtifactFormatError, match="not a readable training checkpoint"):
        fit(other, "length", dataset, steps=3, batch_size=4, work_dir=tmp_path, progress=False)
    torch.save({"step": 3}, tmp_path / CHECKPOINT_NAME)
    with pytest.raises(ArtifactFormatError, match="not a training checkpoint"):
        fit(other, "length", dataset, steps=3, batch_size=4, work_dir=tmp_path, progress=False)


def test_a_non_finite_loss_stops_before_the_update(root, bundle):
    apply_stage(bundle, "length")
    before = _states(bundle)["length_estimator"]
    with torch.no_grad():
        bundle.length_estimator.output[0].weight[0, 0] = float("nan")
    nan_weight = bundle.length_estimator.output[0].weight.clone()
    optimizer = build_optimizer(bundle, "length")
    batch = _first_batch("length", root, bundle)
    with pytest.raises(NonFiniteOutputError, match="at step 1"):
        train_step(
            bundle, build_objective("length", bundle), optimizer, batch, step=1, preset="length"
        )
    assert torch.equal(
        bundle.length_estimator.output[0].weight.nan_to_num(), nan_weight.nan_to_num()
    )
    assert torch.equal(before["output.4.weight"], bundle.length_estimator.output[4].weight)
