"""The host-free training core: one optimisation step, checkpoints, resume, several processes.

Both the tests and the host trainer build on these pieces; :func:`fit` strings them into a
small loop (the fallback when the host is not installed).

| piece | what it does |
|---|---|
| :func:`step_draws`, :func:`step_seed` | the random sources of a step, from ``(seed, step)`` and the process's shard only |
| :func:`build_optimizer` | the stage's official optimizer over ``bundle.trainable_parameters()`` |
| :func:`forward_step` | the objective's forward with the step's draws (and dropout seed) |
| :func:`train_step` | official lr factor (:func:`set_learning_rate`), forward, backward, gradient mean over processes, clip, step |
| :func:`batch_indices` | the items of a step: an order that depends on ``(seed, epoch)`` only |
| :func:`save_checkpoint`, :func:`load_checkpoint` | atomic training checkpoints (weights, objective state, optimizer, step) |
| :func:`fit` | the loop: resume, data, steps, checkpoints, a tqdm bar |

**Determinism.** Everything random in a step is derived from ``(seed, step, rank)``: the
objective's :class:`~hftrainer_mogents.training.objectives.Draws`, the global torch generator
that dropout uses (seeded inside a forked RNG state, so the caller's stream is left alone), the
data order (``(seed, epoch)``) and a :class:`~hftrainer_mogents.training.data.Text2MotionDataset`'s
crops (``(seed, epoch, index)``). A checkpoint therefore needs no RNG state: its step and the
run's seed say where the run was, and a resumed run takes the steps an uninterrupted one takes.

**Several processes.** Under an initialised ``torch.distributed`` process group (gloo on CPU,
nccl on GPUs), ``batch_size`` is the *global* batch: each process takes its contiguous slice of
the step's global batch, gradients are mean-all-reduced before clipping (what DDP does; the
official transformer stages use DDP) and the logged values are averaged over the processes.
The objective's :class:`~hftrainer_mogents.training.objectives.Draws` knows the process's shard
(``rank`` of ``world_size``) and, in default mode, is seeded alike in every process: each
per-sample draw is the global batch's, of which a process keeps its rows, and the VQ sums its
EMA statistics over the processes and resets codes from the global batch's rows. With equal
slices and a per-sample mean loss, N processes then give one process's losses and weights up to
float rounding, in every stage, when dropout is off (its masks come from each process's
generator). Reference mode draws per process, in the official order (as the official DDP runs
do), so it does not repeat one process's run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from hftrainer_mogents.errors import (
    ArtifactFormatError,
    ArtifactNotFoundError,
    InvalidInputError,
    NonFiniteOutputError,
    OutputWriteError,
)
from hftrainer_mogents.training.data import (
    MotionWindowDataset,
    Text2MotionDataset,
    collate_motion_windows,
    collate_text_motion,
    epoch_permutation,
)
from hftrainer_mogents.training.objectives import Draws, StageObjective, build_objective
from hftrainer_mogents.training.objectives.draws import TRAINING_MODES, TrainingMode
from hftrainer_mogents.training.stages import (
    StagePreset,
    apply_stage,
    learning_rate_factor,
    stage_preset,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "TrainState",
    "FitResult",
    "step_seed",
    "step_draws",
    "build_optimizer",
    "forward_step",
    "train_step",
    "set_learning_rate",
    "all_reduce_gradients",
    "batch_indices",
    "frozen_fingerprint",
    "save_checkpoint",
    "load_checkpoint",
    "fit",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "mogents-training-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "latest.pt"  # inside fit's work_dir

# the last word of a derived seed names its stream (the data module uses 0 and 1)
_DRAWS_STREAM, _DROPOUT_STREAM, _DATA_STREAM = 2, 3, 4


# ---------------------------------------------------------------------------- random sources


def step_seed(seed: int, step: int, rank: int, stream: int) -> int:
    """A 63-bit seed derived from ``(seed, step, rank, stream)`` (``numpy.random.SeedSequence``),
    the same on every machine and in every process.

    Args:
        seed: the run's seed (non-negative).
        step: the 1-based global step (0 for run-level streams).
        rank: the process's rank.
        stream: which stream of the step (the objective's draws, dropout, ...).

    Raises:
        InvalidInputError: a negative value.
    """
    values = [int(seed), int(step), int(rank), int(stream)]
    if min(values) < 0:
        raise InvalidInputError(f"seeds and step keys must be non-negative, got {values}")
    state = np.random.SeedSequence(values).generate_state(2, np.uint32)
    return int((int(state[0]) << 32 | int(state[1])) % 2**63)


def step_draws(
    seed: int,
    step: int,
    rank: int = 0,
    *,
    world_size: int = 1,
    mode: TrainingMode = "default",
    device: str | torch.device = "cpu",
) -> Draws:
    """The objective's random source for one step of one process, the shard ``rank`` of
    ``world_size`` of the global batch.

    Args:
        seed: the run's seed.
        step: the 1-based global step.
        rank: the process's rank.
        world_size: the number of processes sharing the global batch.
        mode: ``"default"`` or ``"reference"`` (the official draws in order).
        device: where the generator lives (the bundle's device).

    Returns:
        ``Draws(rank=rank, world_size=world_size)``, its Python source seeded with
        ``step_seed(seed, step, 0, 2)`` in every process (the VQ's quantizer dropout must
        agree between processes), its generator with the same seed in default mode (per-sample
        draws are then the global batch's) and with ``step_seed(seed, step, rank, 2)`` in
        reference mode (each process draws its own, as the official DDP runs do).
    """
    shared = step_seed(seed, step, 0, _DRAWS_STREAM)
    own = step_seed(seed, step, rank, _DRAWS_STREAM) if mode == "reference" else shared
    return Draws(
        mode=mode,
        generator=torch.Generator(device=device).manual_seed(own),
        python=random.Random(shared),
        rank=rank,
        world_size=world_size,
    )


def _fork_devices(device: torch.device) -> list[int]:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


# ---------------------------------------------------------------------------- one step


def _preset(stage_or_preset: str | StagePreset) -> StagePreset:
    if isinstance(stage_or_preset, StagePreset):
        return stage_or_preset
    return stage_preset(stage_or_preset)


def build_optimizer(
    bundle: Any, preset: str | StagePreset, **overrides: Any
) -> torch.optim.Optimizer:
    """The stage's official optimizer over ``bundle.trainable_parameters()``.

    Call :func:`~hftrainer_mogents.training.stages.apply_stage` first. Each parameter group
    keeps its base rate as ``"initial_lr"``; :func:`train_step` sets ``lr`` from it each step.

    Args:
        bundle: the bundle, its stage applied.
        preset: the stage name or its :class:`~hftrainer_mogents.training.stages.StagePreset`.
        **overrides: optimizer arguments replacing the preset's (``lr=1e-3``, ``type="SGD"``).

    Returns:
        The optimizer.

    Raises:
        InvalidInputError: an unknown optimizer type or argument, or nothing to train.
    """
    spec = {**_preset(preset).optimizer, **overrides}
    kind = spec.pop("type", None)
    cls = getattr(torch.optim, str(kind), None)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise InvalidInputError(
            f"optimizer type {kind!r} is not a torch.optim optimizer (e.g. 'AdamW', 'Adam')"
        )
    params = list(bundle.trainable_parameters())
    if not params:
        raise InvalidInputError(
            "the bundle has no trainable parameter: call apply_stage(bundle, stage) first"
        )
    try:
        optimizer = cls(params, **spec)
    except TypeError as err:
        raise InvalidInputError(f"bad arguments for {kind}: {err}") from err
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    return optimizer


def forward_step(
    bundle: Any,
    objective: nn.Module,
    batch: Mapping[str, Any],
    *,
    seed: int,
    step: int,
    rank: int = 0,
    world_size: int = 1,
    mode: TrainingMode = "default",
) -> dict[str, torch.Tensor]:
    """The objective's forward for one step, its random numbers derived from
    ``(seed, step, rank)``: the objective draws from :func:`step_draws` (the shard ``rank`` of
    ``world_size``), dropout from torch's global generator seeded for the step and rank inside
    a forked RNG state (the caller's global stream is left as it was).

    Args:
        bundle: the bundle, its stage applied.
        objective: the stage's objective (``objective(bundle, batch, draws)``).
        batch: a collate's dict.
        seed: the run's seed.
        step: the 1-based global step.
        rank: the process's rank.
        world_size: the number of processes sharing the global batch (``batch`` is the
            ``rank``-th of their equal, contiguous slices).
        mode: ``"default"`` or ``"reference"``.

    Returns:
        The objective's dict: ``"loss"`` with its graph, detached parts.

    Raises:
        NonFiniteOutputError: the loss is NaN or infinite.
    """
    draws = step_draws(seed, step, rank, world_size=world_size, mode=mode, device=bundle.device)
    with torch.random.fork_rng(devices=_fork_devices(bundle.device)):
        torch.manual_seed(step_seed(seed, step, rank, _DROPOUT_STREAM))
        out = objective(bundle, batch, draws)
    loss = out["loss"]
    if not torch.isfinite(loss.detach()).all():
        raise NonFiniteOutputError(
            f"the training loss is {float(loss.detach())} at step {step} (rank {rank}): lower the "
            "learning rate, or check the data for extreme values"
        )
    return out


def set_learning_rate(
    optimizers: torch.optim.Optimizer | Sequence[torch.optim.Optimizer],
    step: int,
    preset: str | StagePreset,
) -> float:
    """Set every parameter group's ``lr`` to its base rate (``"initial_lr"``, else its current
    ``lr``, which becomes the base) times the official factor of the 1-based ``step``
    (:func:`~hftrainer_mogents.training.stages.learning_rate_factor`).

    Args:
        optimizers: one optimizer or several.
        step: the 1-based global step.
        preset: the stage name or preset.

    Returns:
        The factor.
    """
    factor = learning_rate_factor(step, _preset(preset))
    if isinstance(optimizers, torch.optim.Optimizer):
        optimizers = [optimizers]
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor
    return factor


def _world() -> tuple[int, int]:
    """``(rank, world size)`` of the initialised process group, else ``(0, 1)``."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_gradients(parameters: Sequence[nn.Parameter]) -> None:
    """Replace each gradient by its mean over the processes (what DDP does), in one flat
    all-reduce; a no-op without an initialised process group of two or more processes.

    A parameter without a gradient takes zeros, so every process reduces the same layout.
    """
    _, world = _world()
    if world == 1 or not parameters:
        return
    for param in parameters:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
    flat = torch.cat([param.grad.reshape(-1) for param in parameters])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for param in parameters:
        n = param.grad.numel()
        param.grad.copy_(flat[offset : offset + n].view_as(param.grad))
        offset += n


def _mean_over_processes(logs: dict[str, float], device: torch.device) -> dict[str, float]:
    _, world = _world()
    if world == 1 or not logs:
        return logs
    keys = sorted(logs)
    values = torch.tensor([logs[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(values)
    return {k: float(v) / world for k, v in zip(keys, values.tolist())}


def train_step(
    bundle: Any,
    objective: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Mapping[str, Any],
    *,
    step: int,
    preset: str | StagePreset,
    seed: int = 0,
    mode: TrainingMode = "default",
) -> dict[str, float]:
    """One optimisation step: the official learning rate for ``step``, the forward
    (:func:`forward_step`), backward, gradients averaged over the processes, the preset's
    gradient-norm clip, the optimizer step.

    Under an initialised process group, ``batch`` is this process's slice of the global batch,
    and the returned values are averaged over the processes.

    Args:
        bundle: the bundle, its stage applied (and in training mode).
        objective: the stage's objective.
        optimizer: from :func:`build_optimizer` (groups carry ``"initial_lr"``).
        batch: a collate's dict.
        step: the 1-based global step.
        preset: the stage name or preset (schedule and clip).
        seed: the run's seed.
        mode: ``"default"`` or ``"reference"``.

    Returns:
        Detached floats: ``"loss"``, the objective's other parts, ``"lr"``, and
        ``"grad_norm"`` (before clipping) when the stage clips.

    Raises:
        NonFiniteOutputError: the loss is NaN or infinite (nothing is updated).
    """
    preset = _preset(preset)
    rank, world = _world()
    set_learning_rate(optimizer, step, preset)
    optimizer.zero_grad(set_to_none=True)
    out = forward_step(
        bundle, objective, batch, seed=seed, step=step, rank=rank, world_size=world, mode=mode
    )
    out["loss"].backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    all_reduce_gradients(params)
    logs = {key: float(value.detach()) for key, value in out.items()}
    if preset.grad_clip is not None:
        norm = torch.nn.utils.clip_grad_norm_(params, preset.grad_clip)
        logs["grad_norm"] = float(norm)
    optimizer.step()
    logs = _mean_over_processes(logs, bundle.device)
    logs["lr"] = float(optimizer.param_groups[0]["lr"])
    return logs


# ---------------------------------------------------------------------------- data order


def batch_indices(
    num_items: int,
    batch_size: int,
    *,
    seed: int,
    step: int,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[int, list[int]]:
    """The items of one process at one step.

    Each epoch is :func:`~hftrainer_mogents.training.data.epoch_permutation` (the order of an
    :class:`~hftrainer_mogents.training.data.EpochSampler`) of ``(seed, epoch)``, cut into
    ``num_items // batch_size`` global batches (the last, incomplete one dropped, as the
    official loaders do); step ``s`` takes global batch ``s - 1`` counted over epochs, and rank
    ``r`` its ``r``-th contiguous slice of ``batch_size // world_size`` items.

    Args:
        num_items: the dataset's length.
        batch_size: the global batch.
        seed: the run's seed.
        step: the 1-based global step.
        rank: the process's rank.
        world_size: the number of processes (must divide ``batch_size``).

    Returns:
        ``(epoch, indices)``.

    Raises:
        InvalidInputError: a batch larger than the dataset, or not divisible by the processes.
    """
    _check_batch(num_items, batch_size, world_size)
    if step < 1:
        raise InvalidInputError(f"steps count from 1, got {step}")
    per_epoch = num_items // batch_size
    epoch, position = divmod(step - 1, per_epoch)
    order = epoch_permutation(num_items, seed, epoch)
    local = batch_size // world_size
    start = position * batch_size + rank * local
    return epoch, order[start : start + local].tolist()


def _check_batch(num_items: int, batch_size: int, world_size: int) -> None:
    if batch_size < 1 or batch_size > num_items:
        raise InvalidInputError(
            f"batch_size {batch_size} must be between 1 and the dataset's {num_items} items"
        )
    if batch_size % world_size:
        raise InvalidInputError(
            f"the global batch_size {batch_size} must be a multiple of the {world_size} processes"
        )


# ---------------------------------------------------------------------------- checkpoints


@dataclass
class TrainState:
    """Where a run stands, as a checkpoint records it.

    Attributes:
        stage: the stage trained.
        step: the last completed 1-based step (0: none).
        seed: the run's seed.
        batch_size: the global batch.
        mode: ``"default"`` or ``"reference"``.
        fingerprint: :func:`frozen_fingerprint` of the bundle the run trains.
        extra: anything else the caller stored (plain Python values).
    """

    stage: str
    step: int
    seed: int
    batch_size: int
    mode: str = "default"
    fingerprint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def frozen_fingerprint(bundle: Any, stage: str | StagePreset) -> str:
    """A sha256 over what a stage does not train: the frozen networks' tensors (names, shapes,
    float32 values) and the bundle's mean/std. A checkpoint records it, so that a run does not
    resume on another artifact (whose frozen VQ would give other codes).

    Args:
        bundle: the bundle.
        stage: the stage name or preset.

    Returns:
        The hex digest.
    """
    preset = _preset(stage)
    digest = hashlib.sha256()
    tensors: list[tuple[str, torch.Tensor]] = [("mean", bundle.mean), ("std", bundle.std)]
    for name in sorted(bundle._frozen_modules):
        module = getattr(bundle, name, None)
        if module is None or name in preset.trainable:
            continue
        tensors += [(f"{name}.{k}", v) for k, v in module.state_dict().items()]
    for key, value in tensors:
        array = value.detach().to("cpu", torch.float32).contiguous().numpy()
        digest.update(f"{key}:{tuple(array.shape)};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_checkpoint(
    path: str | os.PathLike[str],
    bundle: Any,
    objective: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
) -> Path:
    """Write a training checkpoint atomically: to a temporary name beside ``path``, flushed to
    disk, then renamed over ``path``, so a crash mid-write leaves the previous checkpoint whole.

    Holds the stage's trainable modules' weights, the objective's state (e.g. the VQ's EMA
    codebook statistics), the optimizer's state and ``state``.

    Args:
        path: the checkpoint file.
        bundle: the bundle trained.
        objective: the stage's objective.
        optimizer: the optimizer.
        state: the run's state (step, seed, ...).

    Returns:
        ``path``.

    Raises:
        OutputWriteError: the file could not be written (the previous one is kept).
    """
    path = Path(path)
    preset = stage_preset(state.stage)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "state": {
            "stage": state.stage,
            "step": int(state.step),
            "seed": int(state.seed),
            "batch_size": int(state.batch_size),
            "mode": state.mode,
            "fingerprint": state.fingerprint,
            "extra": dict(state.extra),
        },
        "modules": {name: getattr(bundle, name).state_dict() for name in preset.trainable},
        "objective": objective.state_dict(),
        "optimizer": optimizer.state_dict(),
    }
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as err:
        raise OutputWriteError(
            f"could not write the training checkpoint {path} ({err}); the previous one, if any, "
            "is kept"
        ) from err
    finally:
        temporary.unlink(missing_ok=True)
    return path


def load_checkpoint(
    path: str | os.PathLike[str],
    bundle: Any,
    objective: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    stage: str | None = None,
    fingerprint: str | None = None,
) -> TrainState:
    """Restore a checkpoint of :func:`save_checkpoint` into ``bundle`` (the stage's modules),
    ``objective`` and ``optimizer`` (each when given).

    Args:
        path: the checkpoint file.
        bundle: the bundle to load into.
        objective: the stage's objective, or None.
        optimizer: the optimizer (same parameter groups as the saved one), or None.
        stage: the stage the caller trains; a checkpoint of another stage is refused.
        fingerprint: the caller's :func:`frozen_fingerprint`; a checkpoint whose frozen
            networks differ (another artifact) is refused.

    Returns:
        The checkpoint's :class:`TrainState`.

    Raises:
        ArtifactNotFoundError: no file at ``path``.
        ArtifactFormatError: not a training checkpoint, or unreadable.
        InvalidInputError: a checkpoint of another stage or another artifact.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactNotFoundError(f"training checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=bundle.device, weights_only=True)
    except Exception as err:  # torch raises several kinds for a truncated or foreign file
        raise ArtifactFormatError(f"{path} is not a readable training checkpoint: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ArtifactFormatError(
            f"{path} is not a training checkpoint of hftrainer_mogents (no {CHECKPOINT_FORMAT!r} "
            "marker)"
        )
    state = TrainState(**payload["state"])
    if stage is not None and state.stage != stage:
        raise InvalidInputError(
            f"{path} is a checkpoint of the {state.stage!r} stage, not {stage!r}: train "
            f"{state.stage!r} to resume it, or start {stage!r} in another work_dir "
            "(or with resume=False)"
        )
    if fingerprint is not None and state.fingerprint != fingerprint:
        raise InvalidInputError(
            f"{path} was trained from another artifact: the networks the {state.stage!r} stage "
            "keeps frozen (or the mean/std) differ from this bundle's. Resume with the artifact "
            "the run started from, or start a new run in another work_dir (or with resume=False)"
        )
    for name, module_state in payload["modules"].items():
        getattr(bundle, name).load_state_dict(module_state)
    if objective is not None:
        objective.load_state_dict(payload["objective"])
    if optimizer is not None:
        optimizer.load_state_dict(payload["optimizer"])
    return state


# ---------------------------------------------------------------------------- the loop


@dataclass
class FitResult:
    """What :func:`fit` did.

    Attributes:
        logs: one dict per step run by this call (``"step"``, ``"loss"``, parts, ``"lr"``).
        step: the last completed step.
        resumed_from: the step the run resumed from (0: a fresh start).
        checkpoint: the last checkpoint written or read, or None.
    """

    logs: list[dict[str, float]]
    step: int
    resumed_from: int
    checkpoint: Path | None

    @property
    def losses(self) -> list[float]:
        """The loss of each step run by this call."""
        return [log["loss"] for log in self.logs]


def _default_collate(dataset: Dataset) -> Callable[[list[Any]], dict[str, Any]]:
    if isinstance(dataset, Text2MotionDataset):
        return collate_text_motion
    if isinstance(dataset, MotionWindowDataset):
        return collate_motion_windows
    raise InvalidInputError(f"no default collate for a {type(dataset).__name__}: pass collate_fn=")


def _batches(
    dataset: Dataset,
    first: int,
    last: int,
    *,
    batch_size: int,
    seed: int,
    collate_fn: Callable[[list[Any]], Any],
    num_workers: int,
) -> Iterator[tuple[int, Any]]:
    """``(step, batch)`` for steps ``first..last``, this process's slices, one loader per epoch.
    This module's datasets get ``(epoch, index)`` keys; another dataset gets indices, and is told
    the epoch before its loader starts when it has ``set_epoch``."""
    rank, world = _world()
    keyed = isinstance(dataset, (Text2MotionDataset, MotionWindowDataset))
    num_items = len(dataset)  # type: ignore[arg-type]
    step = first
    while step <= last:
        epoch, _ = batch_indices(num_items, batch_size, seed=seed, step=step)
        steps: list[int] = []
        slices: list[list[int]] = []
        while step <= last:
            step_epoch, indices = batch_indices(
                num_items, batch_size, seed=seed, step=step, rank=rank, world_size=world
            )
            if step_epoch != epoch:
                break
            steps.append(step)
            slices.append([(epoch, i) for i in indices] if keyed else indices)
            step += 1
        if not keyed and hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        loader = DataLoader(
            dataset, batch_sampler=slices, collate_fn=collate_fn, num_workers=num_workers
        )
        yield from zip(steps, loader)


def _broadcast_from_rank0(tensors: Sequence[torch.Tensor]) -> None:
    _, world = _world()
    if world > 1:
        for tensor in tensors:
            dist.broadcast(tensor.data, src=0)


def fit(
    bundle: Any,
    stage: str,
    dataset: Dataset,
    *,
    steps: int,
    batch_size: int,
    work_dir: str | os.PathLike[str],
    seed: int = 0,
    resume: bool = True,
    mode: TrainingMode = "default",
    checkpoint_interval: int | None = None,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    num_workers: int = 0,
    optimizer_overrides: Mapping[str, Any] | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
    progress: bool = True,
) -> FitResult:
    """Train ``stage`` of ``bundle`` for ``steps`` steps (the host-free loop).

    Applies the stage (:func:`~hftrainer_mogents.training.stages.apply_stage`), builds its
    objective and optimizer, resumes from ``work_dir/latest.pt`` when there is one, then runs
    the steps, each on the items :func:`batch_indices` gives, writing a checkpoint every
    ``checkpoint_interval`` steps and after the last. A run killed after its checkpoint at step
    ``k`` and started again with the same arguments takes the steps ``k + 1 ..`` that an
    uninterrupted run takes (same losses, same final weights).

    Under an initialised ``torch.distributed`` process group, ``batch_size`` is the global
    batch (a multiple of the processes), rank 0 alone writes checkpoints, and every rank reads
    the same ``work_dir`` on resume.

    Args:
        bundle: the bundle to train (changed in place).
        stage: ``"vq"``, ``"mask"``, ``"res"`` or ``"length"``.
        dataset: a :class:`~hftrainer_mogents.training.data.Text2MotionDataset` (transformer
            and length stages), a :class:`~hftrainer_mogents.training.data.MotionWindowDataset`
            (``vq``), or any dataset with ``collate_fn``. An unseeded ``Text2MotionDataset``
            takes a seed derived from ``seed``.
        steps: the last step to reach (counted over resumes).
        batch_size: the global batch.
        work_dir: where the checkpoint lives.
        seed: the run's seed.
        resume: continue from ``work_dir/latest.pt`` when it exists (False: start afresh and
            overwrite it).
        mode: ``"default"`` or ``"reference"`` draws.
        checkpoint_interval: steps between checkpoints (None: only after the last step).
        collate_fn: the batch collate (default: the dataset's own).
        num_workers: ``DataLoader`` worker processes.
        optimizer_overrides: optimizer arguments replacing the preset's (e.g. ``{"lr": 1e-3}``).
        callback: called as ``callback(step, logs)`` after each step (and its checkpoint).
        progress: show a tqdm bar (rank 0 only).

    Returns:
        The :class:`FitResult`.

    Raises:
        InvalidInputError: a bad stage, mode, step count, batch size or interval; a
            checkpoint of another stage or artifact.
        NonFiniteOutputError: a NaN or infinite loss.
        OutputWriteError: a checkpoint could not be written.
    """
    from tqdm.auto import tqdm

    if steps < 1:
        raise InvalidInputError(f"steps must be at least 1, got {steps}")
    if mode not in TRAINING_MODES:
        raise InvalidInputError(
            f"training mode must be one of {', '.join(TRAINING_MODES)}, got {mode!r}"
        )
    if checkpoint_interval is not None and checkpoint_interval < 1:
        raise InvalidInputError(
            f"checkpoint_interval must be at least 1, got {checkpoint_interval}"
        )
    rank, world = _world()
    preset = apply_stage(bundle, stage)
    _check_batch(len(dataset), batch_size, world)  # type: ignore[arg-type]
    collate_fn = collate_fn or _default_collate(dataset)
    if isinstance(dataset, Text2MotionDataset) and not dataset.seeded:
        dataset.seed(step_seed(seed, 0, 0, _DATA_STREAM))
    objective: StageObjective = build_objective(stage, bundle).to(bundle.device)
    objective.train()
    optimizer = build_optimizer(bundle, preset, **dict(optimizer_overrides or {}))
    fingerprint = frozen_fingerprint(bundle, preset)
    path = Path(work_dir) / CHECKPOINT_NAME
    state = TrainState(stage, 0, seed, batch_size, mode, fingerprint)
    checkpoint: Path | None = None
    if resume and path.is_file():
        saved = load_checkpoint(
            path, bundle, objective, optimizer, stage=stage, fingerprint=fingerprint
        )
        if (saved.seed, saved.batch_size, saved.mode) != (seed, batch_size, mode):
            logger.warning(
                "resuming %s (seed %d, batch %d, mode %s) with seed %d, batch %d, mode %s: the run "
                "will not repeat an uninterrupted one",
                path,
                saved.seed,
                saved.batch_size,
                saved.mode,
                seed,
                batch_size,
                mode,
            )
        state.step = saved.step
        checkpoint = path
    resumed_from = state.step
    trainable = [p for g in optimizer.param_groups for p in g["params"]]
    _broadcast_from_rank0([*trainable, *objective.buffers()])

    logs: list[dict[str, float]] = []
    bar = tqdm(
        total=steps, initial=state.step, desc=f"train {stage}", disable=not progress or rank != 0
    )
    try:
        batches = _batches(
            dataset,
            state.step + 1,
            steps,
            batch_size=batch_size,
            seed=seed,
            collate_fn=collate_fn,
            num_workers=num_workers,
        )
        for step, batch in batches:
            step_logs = train_step(
                bundle, objective, optimizer, batch, step=step, preset=preset, seed=seed, mode=mode
            )
            state.step = step
            logs.append({"step": float(step), **step_logs})
            bar.update(1)
            bar.set_postfix(loss=f"{step_logs['loss']:.4g}")
            due = checkpoint_interval is not None and step % checkpoint_interval == 0
            if due or step == steps:
                if rank == 0:
                    checkpoint = save_checkpoint(path, bundle, objective, optimizer, state)
                if world > 1:
                    dist.barrier()
                checkpoint = path
            if callback is not None:
                callback(step, step_logs)
    finally:
        bar.close()
    return FitResult(logs=logs, step=state.step, resumed_from=resumed_from, checkpoint=checkpoint)
