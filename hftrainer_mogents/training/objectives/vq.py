"""The objective of the dual-stream RVQ-VAE (being written, issue 20)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from hftrainer_mogents.training.objectives.common import StageObjective
from hftrainer_mogents.training.objectives.draws import Draws

__all__ = ["VQObjective"]


class VQObjective(StageObjective):
    """Not written yet."""

    def __init__(self, bundle: Any) -> None:
        super().__init__()

    def forward(
        self, bundle: Any, batch: Mapping[str, Any], draws: Draws
    ) -> dict[str, torch.Tensor]:
        """Not written yet."""
        raise NotImplementedError("the 'vq' objective is not written yet")
