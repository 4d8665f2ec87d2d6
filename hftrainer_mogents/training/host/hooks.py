"""The host hooks: :class:`BestCheckpointHook` keeps the checkpoint with the best validation
metric, as the official training keeps ``net_best_fid.tar``; :class:`DataEpochHook` tells the
data the runner's epoch (epoch-based training).

The host's ``CheckpointHook`` saves every ``interval`` steps and keeps the last few; its runner
validates on ``train_cfg.val_interval`` but hands the metrics to no hook. This hook runs the
validation itself (``runner.val()``: the trainer's ``val_step`` per batch, then the evaluators)
every ``interval`` steps and, when ``metric`` improves, writes the bundle's checkpoint to
``<work_dir>/best_<metric>/`` (``model.pt`` as the host writes it, and ``meta.pt`` with the step
and the value). ``mogents export WORK_DIR --checkpoint WORK_DIR/best_fid`` makes an artifact of
it. Leave ``train_cfg.val_interval`` unset when using it (or validation runs twice).

Config::

    default_hooks = dict(..., best=dict(type="BestCheckpointHook", interval=1000, metric="fid"))
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

from hftrainer_mogents.errors import InvalidInputError

__all__ = ["BestCheckpointHook", "DataEpochHook"]

logger = logging.getLogger(__name__)


class BestCheckpointHook:
    """Validate every ``interval`` steps and keep the best checkpoint of ``metric``.

    Args:
        interval: steps between validations.
        metric: the evaluator metric to watch (``fid``, ``r_precision_top1``, ...).
        rule: ``"less"`` (lower is better, FID) or ``"greater"``.
        folder: the folder name under the work dir (default ``best_<metric>``).

    Attributes:
        best: the best value so far (None before the first validation).
        best_step: the step of the best value.

    Raises:
        InvalidInputError: a bad interval or rule.
    """

    priority = 85  # after the host's checkpoint hook (80)

    def __init__(
        self,
        interval: int = 1000,
        metric: str = "fid",
        rule: str = "less",
        folder: str | None = None,
    ) -> None:
        if int(interval) < 1:
            raise InvalidInputError(f"interval must be at least 1, got {interval}")
        if rule not in ("less", "greater"):
            raise InvalidInputError(f"rule must be 'less' or 'greater', got {rule!r}")
        self.interval = int(interval)
        self.metric = metric
        self.rule = rule
        self.folder = folder or f"best_{metric}"
        self.best: float | None = None
        self.best_step: int | None = None
        self.runner: Any = None  # injected by the host's runner
        self._warned = False

    def _better(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value < self.best if self.rule == "less" else value > self.best

    def after_train_iter(self, global_step: int, output: dict | None = None) -> None:
        """The host's per-step call (``global_step`` is the 0-based step just done)."""
        runner = self.runner
        if runner is None or (global_step + 1) % self.interval:
            return
        metrics = runner.val() or {}
        runner.bundle.train()
        runner.trainer.train()
        if self.metric not in metrics:
            if not self._warned:
                logger.warning(
                    "BestCheckpointHook: validation gave no %r (got %s); configure a "
                    "val_dataloader and a val_evaluator that reports it",
                    self.metric,
                    sorted(metrics),
                )
                self._warned = True
            return
        value = float(metrics[self.metric])
        if not self._better(value):
            return
        self.best, self.best_step = value, global_step + 1
        self._save(value)

    def _save(self, value: float) -> None:
        import torch

        runner = self.runner
        folder = os.path.join(runner.work_dir, self.folder)
        # every process takes part in gathering the state (sharded backends), one writes
        state = runner._state_dict_to_save()
        if not runner.accelerator.is_main_process:
            return
        os.makedirs(folder, exist_ok=True)
        torch.save(state, os.path.join(folder, "model.pt"))
        meta = {
            "global_step": int(runner.global_step),
            "current_epoch": int(getattr(runner, "current_epoch", 0)),
            "metric": self.metric,
            "value": value,
        }
        torch.save(meta, os.path.join(folder, "meta.pt"))
        logger.info(
            "best %s %.4f at step %d: saved to %s", self.metric, value, runner.global_step, folder
        )


class DataEpochHook:
    """Epoch-based training (``train_cfg.by_epoch=True``): before each epoch, give the runner's
    epoch to its train loader (``set_epoch``, which accelerate's loader passes on to
    :class:`~hftrainer_mogents.training.host.datasets.HumanML3DTrainDataset`).

    Accelerate's loader counts its own passes from 0, and the host's epoch loop restarts it at
    the resumed epoch, so without this hook a run resumed at epoch ``e`` would replay epoch 0's
    order and crops. Iteration-based training needs no hook (the host replays the loader from
    step 0 on resume).

    Config::

        default_hooks = dict(..., data_epoch=dict(type="DataEpochHook"))
    """

    priority = 10  # before the others: the epoch is set before any hook reads data

    def __init__(self) -> None:
        self.runner: Any = None  # injected by the host's runner

    def before_train_epoch(self, epoch: int) -> None:
        """The host's per-epoch call (``epoch`` is 0-based)."""
        loader = getattr(self.runner, "train_dataloader", None)
        if loader is not None and hasattr(loader, "set_epoch"):
            loader.set_epoch(int(epoch))
