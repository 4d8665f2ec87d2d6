"""``MoGenTSOutput``: what a pipeline call returns (``__call__``, ``edit``, ``generate_long``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hftrainer_mogents.generation_config import GenerationConfig

__all__ = ["MoGenTSOutput"]


@dataclass
class MoGenTSOutput:
    """Result of a pipeline call.

    Attributes:
        motions: one ``(T_i, 263)`` float32 array per text, physical units, same order.
        lengths: frames of each motion (``T_i``, multiples of 4).
        seed: the seed used (drawn at random when none was given, so the call can be repeated);
            None when the caller's generators drew everything.
        mode: ``"fast"`` or ``"reference"``.
        tokens: when requested, per text a dict with ``ids_aux (T/4, Q)`` and
            ``ids_ts (T/4, 6, Q)`` int64 arrays (-1 = no code).
        settings: the generation settings flat (``generation_config`` fields, ``batch_size``,
            ``mode``, ``seed``).
        generation_config: the sampling settings the call used.
    """

    motions: list[np.ndarray]
    lengths: list[int]
    seed: int | None
    mode: str
    tokens: list[dict[str, np.ndarray]] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    generation_config: GenerationConfig | None = None
