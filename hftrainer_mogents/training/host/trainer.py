"""``MoGenTSTrainer``: the host trainer of every MoGenTS stage.

The hftrainer host's runner builds it as ``TRAINERS.build(dict(type="MoGenTSTrainer", ...),
default_args={"bundle": bundle})``, injects ``accelerator`` and ``runner``, calls
:meth:`MoGenTSTrainer.train_step` per batch (then backward, optimizer and scheduler steps
itself) and :meth:`MoGenTSTrainer.val_step` per validation batch (feeding the evaluators).

It implements the host ``BaseTrainer``'s interface without inheriting it (importing the host
costs seconds, and this module must import without it); registration into the host's
``TRAINERS`` makes it a virtual subclass of ``BaseTrainer``, so ``isinstance`` checks hold.

- The stage's objective (:func:`~hftrainer_mogents.training.objectives.build_objective`) is a
  submodule; when it has state (the VQ's EMA codebook statistics), the trainer registers it with
  the accelerator, so the host's checkpoints (``accelerator.save_state``) carry it and a resumed
  run restores it.
- One implementation: the step itself is the core's
  (:func:`~hftrainer_mogents.training.loop.forward_step`: the objective's draws and the dropout
  seed derived from ``(seed, step)`` and the process's shard, dropout seeded inside a forked RNG state),
  and so are the official learning-rate factor
  (:func:`~hftrainer_mogents.training.loop.set_learning_rate`), the gradient mean over processes
  (:func:`~hftrainer_mogents.training.loop.all_reduce_gradients`) and the preset's clip. A
  resumed run therefore draws what the uninterrupted run would have drawn. When the runner
  injects its accelerator, the trainer also seeds the process's global generators with ``seed``
  (the host's runner seeds nothing).
- A stage with an official gradient clip (the length estimator's 0.5) cannot be served by the
  host's runner, which has no clipping: for it the trainer takes the optimisation over
  (``trainer_controls_optimization``, the host's protocol for that): backward through the
  accelerator, clip, the host-built optimizers' and schedulers' steps.
- Several processes: the runner wraps the trainable networks in ``DistributedDataParallel``,
  which hides their attributes (``estimator.config``, ``vq.encode``) from the objectives. The
  trainer unwraps them in the bundle and averages the gradients itself
  (:func:`~hftrainer_mogents.training.loop.all_reduce_gradients`), so it also takes the
  optimisation over there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.training.loop import (
    all_reduce_gradients,
    forward_step,
    set_learning_rate,
    step_draws,
    step_seed,
)
from hftrainer_mogents.training.objectives import Draws, build_objective
from hftrainer_mogents.training.objectives.draws import TRAINING_MODES
from hftrainer_mogents.training.stages import stage_preset

__all__ = ["MoGenTSTrainer"]

_PRESET = "preset"
# the stream of step_seed that validation generations draw from (the core uses 0 to 4)
_VALIDATION_STREAM = 5


class MoGenTSTrainer(nn.Module):
    """Computes a stage's loss for the host runner (see the module docstring).

    Args:
        bundle: the bundle being trained (the host passes it), with its stage's roles applied
            (:class:`~hftrainer_mogents.training.host.bundle.MoGenTSTrainingBundle`).
        stage: ``vq``, ``mask``, ``res`` or ``length`` (default: the bundle's ``stage``).
        seed: the run's seed for the objective's draws.
        mode: ``"default"`` or ``"reference"`` (the official draws, in order).
        grad_clip: max gradient norm; ``"preset"`` takes the stage's official one (0.5 for
            ``length``, none otherwise), None switches clipping off.
        official_schedule: set the learning rate before each step to the optimizer's configured
            rate times the stage's official factor
            (:func:`~hftrainer_mogents.training.stages.learning_rate_factor`: the warm-up and its
            quirk, the step decays), which the host's schedulers cannot express; configure no
            ``lr_scheduler`` then. The trainer runs the optimisation.
        val_seed: seed of the validation generations.
        val_generation: extra generation settings for :meth:`val_step` (``time_steps``,
            ``cond_scale``, ...).
        **kwargs: accepted and ignored (the host passes trainer settings it knows).

    Raises:
        InvalidInputError: no stage, an unknown stage or mode, or a bad ``grad_clip``.
    """

    # the runner reads this before each step; an instance attribute overrides it (grad_clip)
    trainer_controls_optimization = False

    def __init__(
        self,
        bundle: Any,
        stage: str | None = None,
        seed: int = 0,
        mode: str = "default",
        grad_clip: float | str | None = _PRESET,
        official_schedule: bool = False,
        val_seed: int = 0,
        val_generation: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        stage = stage if stage is not None else getattr(bundle, "stage", None)
        if stage is None:
            raise InvalidInputError(
                "the trainer needs a stage: give trainer=dict(stage=...) or build the bundle "
                "with one (MoGenTSTrainingBundle(stage=...))"
            )
        preset = stage_preset(stage)
        if mode not in TRAINING_MODES:
            raise InvalidInputError(
                f"training mode must be one of {', '.join(TRAINING_MODES)}, got {mode!r}"
            )
        if grad_clip == _PRESET:
            grad_clip = preset.grad_clip
        elif grad_clip is not None and (
            isinstance(grad_clip, (str, bool)) or not float(grad_clip) > 0
        ):
            raise InvalidInputError(f"grad_clip must be > 0, 'preset' or None, got {grad_clip!r}")
        self.bundle = bundle
        self.stage = preset.name
        self.objective = build_objective(preset.name, bundle)
        self.seed = int(seed)
        self.mode = mode
        self.grad_clip = None if grad_clip is None else float(grad_clip)
        self.preset = preset
        self.official_schedule = bool(official_schedule)
        if self.grad_clip is not None or self.official_schedule:
            self.trainer_controls_optimization = True
        self.val_seed = int(val_seed)
        self.val_generation = dict(val_generation or {})
        self.runner: Any = None
        self.optimizers: dict[str, Any] = {}
        self.lr_schedulers: dict[str, Any] = {}
        self._accelerator: Any = None
        self._registered = False

    # ------------------------------------------------------------------ the host's injections

    @property
    def accelerator(self) -> Any:
        """The host's ``Accelerator`` (None until the runner injects it)."""
        return self._accelerator

    @accelerator.setter
    def accelerator(self, accelerator: Any) -> None:
        self._accelerator = accelerator
        if accelerator is None:
            return
        # the runner moves the networks; the bundle's own buffers (mean/std) and the
        # objective's state follow here
        self.bundle.to(accelerator.device)
        self.objective.to(accelerator.device)
        # the host's runner seeds nothing: seeding here, before the first batch is drawn, makes
        # the data order (the loader's shuffle) repeat from run to run
        from accelerate.utils import set_seed

        set_seed(self.seed)
        if int(getattr(accelerator, "num_processes", 1) or 1) > 1:
            _unwrap_trainable(self.bundle)
            self.trainer_controls_optimization = True
        if not self._registered and self.objective.state_dict():
            accelerator.register_for_checkpointing(self.objective)
            self._registered = True

    def set_optimizers(
        self, optimizers: Mapping[str, Any], lr_schedulers: Mapping[str, Any] | None = None
    ) -> None:
        """Take the host-built optimizers and schedulers (the runner calls this when
        :attr:`trainer_controls_optimization` is set)."""
        self.optimizers = dict(optimizers)
        self.lr_schedulers = dict(lr_schedulers or {})

    def get_global_step(self) -> int:
        """Completed optimisation steps (the runner's ``global_step``; 0 without a runner)."""
        return int(getattr(self.runner, "global_step", 0)) if self.runner is not None else 0

    def get_current_step(self) -> int:
        """The 1-based index of the step being run."""
        return self.get_global_step() + 1

    def get_bundle(self) -> Any:
        """The bundle being trained."""
        return self.bundle

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`train_step` (the host's ``BaseTrainer.forward``)."""
        return self.train_step(batch)

    # ------------------------------------------------------------------ steps

    def rank(self) -> int:
        """The process index (0 without an accelerator)."""
        return int(getattr(self._accelerator, "process_index", 0) or 0)

    def world_size(self) -> int:
        """The number of processes (1 without an accelerator)."""
        return int(getattr(self._accelerator, "num_processes", 1) or 1)

    def draws(self, step: int | None = None) -> Draws:
        """The objective's draws of a 1-based step (default: the current one):
        :func:`~hftrainer_mogents.training.loop.step_draws` of ``(seed, step)`` and the process's
        shard among the accelerator's processes (default mode: the per-sample draws are the
        global batch's, so N processes draw what one does)."""
        step = self.get_current_step() if step is None else int(step)
        return step_draws(
            self.seed,
            step,
            self.rank(),
            world_size=self.world_size(),
            mode=self.mode,
            device=self.bundle.device,
        )

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """One batch's loss and its logged parts:
        :func:`~hftrainer_mogents.training.loop.forward_step` at the current step.

        Returns:
            ``{"loss": scalar, <part>: detached scalar, ...}``; the loss keeps its graph unless
            the trainer ran the optimisation itself (gradient clipping), then it is detached.

        Raises:
            NonFiniteOutputError: the loss is NaN or infinite (named with the step).
            InvalidInputError: the trainer runs the optimisation (``grad_clip``) and has no
                accelerator (it runs outside the host's runner).
        """
        if self.trainer_controls_optimization and self._accelerator is None:
            raise InvalidInputError(
                "the trainer runs the optimisation itself (grad_clip) and needs the host's "
                "accelerator; run it through the host runner, or set grad_clip=None"
            )
        parts = forward_step(
            self.bundle,
            self.objective,
            batch,
            seed=self.seed,
            step=self.get_current_step(),
            rank=self.rank(),
            world_size=self.world_size(),
            mode=self.mode,
        )
        loss = parts["loss"]
        out: dict[str, Any] = {
            k: (v.detach() if isinstance(v, torch.Tensor) else v)
            for k, v in parts.items()
            if k != "loss"
        }
        if self.trainer_controls_optimization:
            self._optimise(loss)
            loss = loss.detach()
            if self.official_schedule and self.optimizers:
                group = next(iter(self.optimizers.values())).param_groups[0]
                out["lr"] = float(group["lr"])
        return {"loss": loss, **out}

    def _optimise(self, loss: torch.Tensor) -> None:
        """Backward, clip, step: what the runner does, with the stage's gradient clip."""
        accelerator = self._accelerator
        if self.official_schedule:
            self.set_learning_rates(self.get_current_step())
        accelerator.backward(loss)
        if accelerator.sync_gradients:
            params = list(self.bundle.trainable_parameters())
            all_reduce_gradients(params)  # a no-op in one process
            if self.grad_clip is not None:
                accelerator.clip_grad_norm_(params, self.grad_clip)
        for optimizer in self.optimizers.values():
            optimizer.step()
            optimizer.zero_grad()
        for scheduler in self.lr_schedulers.values():
            scheduler.step()

    def set_learning_rates(self, iteration: int) -> float:
        """Set every optimizer group's rate to its configured rate times the official factor
        of the 1-based ``iteration``.

        Returns:
            The factor.
        """
        return set_learning_rate(list(self.optimizers.values()), iteration, self.preset)

    @torch.no_grad()
    def val_step(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Generate the batch's captions at the batch's lengths, for the evaluators
        (:class:`~hftrainer_mogents.host_compat.HostEvaluatorMixin`: ``reset``, ``process``
        each output, ``compute``).

        Returns:
            ``{"keys": batch keys (or "val<step>_<i>"), "motions": list of (T_i, 263) float32
            arrays in physical units, "lengths": (B,) tensor, "captions": list}``, and the
            batch's ``caption_indices`` when it has them
            (:class:`~hftrainer_mogents.training.host.datasets.HumanML3DEvalDataset`).

        Raises:
            InvalidInputError: the batch has no captions or lengths.
        """
        from hftrainer_mogents.pipeline import MoGenTSPipeline

        if "captions" not in batch or "lengths" not in batch:
            raise InvalidInputError(
                "val_step generates from captions: the batch needs 'captions' and 'lengths' "
                "(a transformer stage's dataset)"
            )
        captions = list(batch["captions"])
        lengths = torch.as_tensor(batch["lengths"]).long()
        step = self.get_global_step()
        keys = batch.get("keys") or [f"val{step}_{i}" for i in range(len(captions))]
        pipe = MoGenTSPipeline(self.bundle, cuda_graphs=False)
        pipe.set_progress_bar_config(disable=True)
        # crops may be shorter than the generator's 40-frame minimum (a "double" crop of a
        # 40-frame clip is 36): those are generated at the minimum and cut back
        settings = {"clamp": True, **self.val_generation}
        motions = pipe.infer_t2m(
            captions,
            [int(n) for n in lengths],
            seed=step_seed(self.val_seed, step, 0, _VALIDATION_STREAM),
            **settings,
        )
        motions = [m[: int(n)] for m, n in zip(motions, lengths)]
        out = {"keys": list(keys), "motions": motions, "lengths": lengths, "captions": captions}
        if "caption_indices" in batch:  # which caption the evaluator scores each motion against
            out["caption_indices"] = list(batch["caption_indices"])
        return out


def _unwrap_trainable(bundle: Any) -> None:
    """Replace the bundle's wrapped trainable networks (``DistributedDataParallel``) by the
    networks themselves (the wrappers keep pointing at the same parameters)."""
    for name in list(getattr(bundle, "_trainable_modules", ())):
        module = getattr(bundle, name, None)
        inner = module
        while isinstance(getattr(inner, "module", None), nn.Module):
            inner = inner.module
        if inner is not module:
            setattr(bundle, name, inner)
