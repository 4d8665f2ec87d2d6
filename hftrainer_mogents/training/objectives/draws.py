"""Where a training forward's random numbers come from.

The official training draws from torch's global generator (``torch.rand``, ``torch.bernoulli``,
``torch.randint``, ``Tensor.uniform_``) and, for the VQ's quantizer dropout, from Python's
``random``. :class:`Draws` gives every objective one place to draw from:

- ``mode="reference"``: the draws the official code makes, in its order and with its shapes,
  from one seeded ``torch.Generator`` (and one seeded ``random.Random``). With the networks'
  dropout at zero, a batch's loss then equals the official code's for ``torch.manual_seed(seed)``
  set right before its forward, the same batch and the same weights.
- ``mode="default"``: the objective may draw as it likes (per sample, fewer numbers); still from
  :attr:`Draws.generator` when one is given, so a seeded run is reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

import torch

from hftrainer_mogents.errors import InvalidInputError

__all__ = ["TrainingMode", "TRAINING_MODES", "Draws"]

TrainingMode = Literal["default", "reference"]
TRAINING_MODES: tuple[str, ...] = ("default", "reference")


@dataclass
class Draws:
    """The random sources of one training forward.

    Attributes:
        mode: ``"default"`` or ``"reference"`` (the official draws, in order).
        generator: torch generator for tensor draws; ``None`` draws from torch's global one.
        python: Python-level source for the draws the official code makes with ``random``
            (the VQ's quantizer dropout).
    """

    mode: TrainingMode = "default"
    generator: torch.Generator | None = None
    python: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.mode not in TRAINING_MODES:
            raise InvalidInputError(
                f"training mode must be one of {', '.join(TRAINING_MODES)}, got {self.mode!r}"
            )
        if self.mode == "reference" and self.generator is None:
            raise InvalidInputError(
                "mode='reference' draws from one generator, as the official code does; pass "
                "generator=torch.Generator().manual_seed(seed) (or use Draws.seeded)"
            )

    @classmethod
    def seeded(
        cls, seed: int, *, mode: TrainingMode = "reference", device: str | torch.device = "cpu"
    ) -> Draws:
        """Draws from a torch generator on ``device`` and a Python ``random.Random``, both
        seeded with ``seed``."""
        generator = torch.Generator(device=device).manual_seed(int(seed))
        return cls(mode=mode, generator=generator, python=random.Random(int(seed)))

    @property
    def reference(self) -> bool:
        """True in reference mode."""
        return self.mode == "reference"

    def _device(self, device: str | torch.device | None) -> torch.device:
        if device is not None:
            return torch.device(device)
        return self.generator.device if self.generator is not None else torch.device("cpu")

    def rand(self, *shape: int, device: str | torch.device | None = None) -> torch.Tensor:
        """``torch.rand(shape)`` (float32 in [0, 1))."""
        return torch.rand(shape, generator=self.generator, device=self._device(device))

    def uniform_(self, tensor: torch.Tensor, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        """``tensor.uniform_(low, high)`` from this source (in place, returned)."""
        return tensor.uniform_(low, high, generator=self.generator)

    def bernoulli(self, probabilities: torch.Tensor) -> torch.Tensor:
        """``torch.bernoulli(probabilities)`` (same dtype and shape)."""
        return torch.bernoulli(probabilities, generator=self.generator)

    def randint(
        self, high: int, shape: tuple[int, ...], *, device: str | torch.device | None = None
    ) -> torch.Tensor:
        """``torch.randint(0, high, shape)`` (int64)."""
        return torch.randint(0, high, shape, generator=self.generator, device=self._device(device))

    def batch_randperm(
        self, rows: int, cols: int, *, device: str | torch.device | None = None
    ) -> torch.Tensor:
        """``torch.rand(rows, cols).argsort(dim=-1)``: one random permutation per row, the
        official way of choosing which positions to mask (int64, (rows, cols))."""
        return self.rand(rows, cols, device=device).argsort(dim=-1)
