"""The objective of the 1D and 2D mask transformers (being written, issue 20)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from hftrainer_mogents.training.objectives.draws import Draws

__all__ = ["mask_objective"]


def mask_objective(bundle: Any, batch: Mapping[str, Any], draws: Draws) -> dict[str, torch.Tensor]:
    """Not written yet."""
    raise NotImplementedError("the 'mask' objective is not written yet")
