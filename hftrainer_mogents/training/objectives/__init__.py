"""The official training objectives, one per stage, each ``objective(bundle, batch, draws)``.

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

from hftrainer_mogents.training.objectives.common import Objective
from hftrainer_mogents.training.objectives.draws import TRAINING_MODES, Draws, TrainingMode
from hftrainer_mogents.training.objectives.length import length_objective
from hftrainer_mogents.training.objectives.mask import mask_objective
from hftrainer_mogents.training.objectives.residual import residual_objective
from hftrainer_mogents.training.objectives.vq import vq_objective

__all__ = [
    "OBJECTIVES",
    "STAGES",
    "Draws",
    "Objective",
    "TRAINING_MODES",
    "TrainingMode",
    "length_objective",
    "mask_objective",
    "residual_objective",
    "vq_objective",
]

OBJECTIVES: dict[str, Objective] = {
    "vq": vq_objective,
    "mask": mask_objective,
    "res": residual_objective,
    "length": length_objective,
}
STAGES: tuple[str, ...] = tuple(OBJECTIVES)
