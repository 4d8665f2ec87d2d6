"""The official training objectives, one per stage: ``build_objective(stage, bundle)`` gives a
:class:`~.common.StageObjective` module, called as ``objective(bundle, batch, draws)``.

| stage | module | what it trains |
|---|---|---|
| ``vq`` | :mod:`.vq` | the dual-stream RVQ-VAE (reconstruction, commitment, EMA codebooks) |
| ``mask`` | :mod:`.mask` | the 1D and 2D mask transformers (masked-token cross-entropy) |
| ``res`` | :mod:`.residual` | the 1D and 2D residual transformers (one random layer's CE) |
| ``length`` | :mod:`.length` | the length estimator (CE of the token count) |

Random numbers come from a :class:`~.draws.Draws` (``mode="reference"``: the official draws, in
order, from one seeded generator).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.training.objectives.common import Objective, StageObjective
from hftrainer_mogents.training.objectives.draws import TRAINING_MODES, Draws, TrainingMode
from hftrainer_mogents.training.objectives.length import length_objective
from hftrainer_mogents.training.objectives.mask import mask_objective
from hftrainer_mogents.training.objectives.residual import residual_objective
from hftrainer_mogents.training.objectives.vq import VQObjective

__all__ = [
    "OBJECTIVES",
    "STAGES",
    "Draws",
    "Objective",
    "StageObjective",
    "VQObjective",
    "build_objective",
    "TRAINING_MODES",
    "TrainingMode",
    "length_objective",
    "mask_objective",
    "residual_objective",
]

# stage -> factory(bundle) -> StageObjective
OBJECTIVES: dict[str, Callable[[Any], StageObjective]] = {
    "vq": VQObjective,
    "mask": lambda bundle: StageObjective(mask_objective),
    "res": lambda bundle: StageObjective(residual_objective),
    "length": lambda bundle: StageObjective(length_objective),
}
STAGES: tuple[str, ...] = tuple(OBJECTIVES)


def build_objective(stage: str, bundle: Any) -> StageObjective:
    """The objective module of ``stage`` (``vq``, ``mask``, ``res`` or ``length``) for ``bundle``."""
    if stage not in OBJECTIVES:
        raise InvalidInputError(
            f"unknown training stage {stage!r}; choose one of {', '.join(STAGES)}"
        )
    return OBJECTIVES[stage](bundle)
