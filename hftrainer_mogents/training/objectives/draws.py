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

**Shards (several processes).** A process that holds a contiguous slice of a global batch (its
``rank``-th of ``world_size`` equal slices, as :func:`~hftrainer_mogents.training.loop.batch_indices`
cuts them) says so with ``rank`` and ``world_size``. In default mode every draw marked
``per_sample=True`` (its leading dimension is this process's rows of the batch, sample-major:
samples, or samples x k rows laid out sample by sample) then draws the *global* batch's numbers
(leading dimension x ``world_size``) and keeps this process's slice; the other draws are shared
(the same numbers in every process). With every process's generator seeded alike, the processes
together draw what one process draws for the whole batch, so N processes give one process's
losses. Reference mode ignores the shard: each process draws its own batch's numbers in the
official order (what the official DDP runs do).
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
        rank: this process's slice of the global batch (``0 <= rank < world_size``).
        world_size: how many equal, contiguous slices the global batch is cut into (1: this
            process holds the whole batch).
    """

    mode: TrainingMode = "default"
    generator: torch.Generator | None = None
    python: random.Random = field(default_factory=random.Random)
    rank: int = 0
    world_size: int = 1

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
        if not 0 <= int(self.rank) < int(self.world_size):
            raise InvalidInputError(
                f"a shard needs 0 <= rank < world_size, got rank={self.rank}, "
                f"world_size={self.world_size}"
            )

    @classmethod
    def seeded(
        cls,
        seed: int,
        *,
        mode: TrainingMode = "reference",
        device: str | torch.device = "cpu",
        rank: int = 0,
        world_size: int = 1,
    ) -> Draws:
        """Draws from a torch generator on ``device`` and a Python ``random.Random``, both
        seeded with ``seed``, for the shard ``rank`` of ``world_size``."""
        generator = torch.Generator(device=device).manual_seed(int(seed))
        return cls(
            mode=mode,
            generator=generator,
            python=random.Random(int(seed)),
            rank=int(rank),
            world_size=int(world_size),
        )

    @property
    def reference(self) -> bool:
        """True in reference mode."""
        return self.mode == "reference"

    @property
    def sharded(self) -> bool:
        """True when ``per_sample`` draws are the global batch's, sliced (default mode, several
        slices)."""
        return self.world_size > 1 and not self.reference

    def _device(self, device: str | torch.device | None) -> torch.device:
        if device is not None:
            return torch.device(device)
        return self.generator.device if self.generator is not None else torch.device("cpu")

    def _global(self, shape: tuple[int, ...], per_sample: bool) -> tuple[int, ...]:
        """The shape to draw: the leading dim scaled to the global batch for a sharded
        per-sample draw."""
        if not (per_sample and self.sharded):
            return tuple(shape)
        if not shape:
            raise InvalidInputError("a per_sample draw needs a leading (batch rows) dimension")
        return (shape[0] * self.world_size, *shape[1:])

    def _local(self, drawn: torch.Tensor, rows: int, per_sample: bool) -> torch.Tensor:
        """This process's rows of a global draw."""
        if not (per_sample and self.sharded):
            return drawn
        return drawn[self.rank * rows : (self.rank + 1) * rows]

    def rand(
        self, *shape: int, device: str | torch.device | None = None, per_sample: bool = False
    ) -> torch.Tensor:
        """``torch.rand(shape)`` (float32 in [0, 1)).

        Args:
            *shape: the shape (this process's, for a ``per_sample`` draw).
            device: where to draw (default: the generator's device).
            per_sample: the leading dim is this process's batch rows, sample-major (see the
                module docstring).
        """
        drawn = torch.rand(
            self._global(shape, per_sample), generator=self.generator, device=self._device(device)
        )
        return self._local(drawn, shape[0] if shape else 0, per_sample)

    def randn(
        self,
        *shape: int,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        per_sample: bool = False,
    ) -> torch.Tensor:
        """``torch.randn(shape)`` (standard normal; see :meth:`rand` for the arguments)."""
        drawn = torch.randn(
            self._global(shape, per_sample),
            generator=self.generator,
            device=self._device(device),
            dtype=dtype,
        )
        return self._local(drawn, shape[0] if shape else 0, per_sample)

    def uniform_(
        self,
        tensor: torch.Tensor,
        low: float = 0.0,
        high: float = 1.0,
        *,
        per_sample: bool = False,
    ) -> torch.Tensor:
        """``tensor.uniform_(low, high)`` from this source (in place, returned); with
        ``per_sample``, ``tensor``'s leading dim is this process's batch rows."""
        if not (per_sample and self.sharded):
            return tensor.uniform_(low, high, generator=self.generator)
        drawn = tensor.new_empty(self._global(tuple(tensor.shape), True))
        drawn.uniform_(low, high, generator=self.generator)
        return tensor.copy_(self._local(drawn, tensor.shape[0], True))

    def bernoulli(self, probabilities: torch.Tensor, *, per_sample: bool = False) -> torch.Tensor:
        """``torch.bernoulli(probabilities)`` (same dtype and shape); with ``per_sample``, the
        leading dim is this process's batch rows.

        A sharded draw places this process's probabilities in its rows of a global tensor
        (the other rows 0): the kernel draws one number per element whatever the
        probabilities, so this process's rows get the numbers the whole batch's draw gives
        them.
        """
        if not (per_sample and self.sharded):
            return torch.bernoulli(probabilities, generator=self.generator)
        rows = probabilities.shape[0]
        full = probabilities.new_zeros(self._global(tuple(probabilities.shape), True))
        full[self.rank * rows : (self.rank + 1) * rows] = probabilities
        return self._local(torch.bernoulli(full, generator=self.generator), rows, True)

    def bernoulli_like(
        self, template: torch.Tensor, probability: float, *, per_sample: bool = False
    ) -> torch.Tensor:
        """``torch.bernoulli(template, p=probability)``: the scalar-probability kernel (its
        stream differs from :meth:`bernoulli`'s), a tensor of ``template``'s shape and dtype
        (its values unused); with ``per_sample``, the leading dim is this process's batch
        rows."""
        if not (per_sample and self.sharded):
            return torch.bernoulli(template, p=probability, generator=self.generator)
        full = template.new_zeros(self._global(tuple(template.shape), True))
        drawn = torch.bernoulli(full, p=probability, generator=self.generator)
        return self._local(drawn, template.shape[0], True)

    def randint(
        self,
        high: int,
        shape: tuple[int, ...],
        *,
        device: str | torch.device | None = None,
        per_sample: bool = False,
    ) -> torch.Tensor:
        """``torch.randint(0, high, shape)`` (int64); ``per_sample`` as in :meth:`rand`."""
        drawn = torch.randint(
            0,
            high,
            self._global(tuple(shape), per_sample),
            generator=self.generator,
            device=self._device(device),
        )
        return self._local(drawn, shape[0] if shape else 0, per_sample)

    def batch_randperm(
        self,
        rows: int,
        cols: int,
        *,
        device: str | torch.device | None = None,
        per_sample: bool = False,
    ) -> torch.Tensor:
        """``torch.rand(rows, cols).argsort(dim=-1)``: one random permutation per row, the
        official way of choosing which positions to mask (int64, (rows, cols));
        ``per_sample``: the rows are this process's batch rows."""
        return self.rand(rows, cols, device=device, per_sample=per_sample).argsort(dim=-1)
