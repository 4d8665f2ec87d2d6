"""Random draws of one pass of the reference evaluation loader, made explicit.

Each pass (repeat) of the reference loader shuffles the entries, cuts them into batches of 32
(dropping the last partial batch), and for each item picks a caption at random, flips a coin that
shortens the crop by one unit (``m_length = floor4(len)`` with probability 2/3, ``floor4(len) - 4``
otherwise) and picks a random crop start in ``[0, len - m_length]``. Here those draws are arrays
drawn from a ``numpy.random.Generator`` up front, so the embeddings they need can be computed in
one batched pass, and recorded draws can be replayed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hftrainer_mogents.errors import InvalidInputError

__all__ = ["RepeatDraws", "draw_repeat", "DOUBLE_COIN_PROBABILITY"]

DOUBLE_COIN_PROBABILITY = 1.0 / 3.0  # the reference draws from ['single', 'single', 'double']


@dataclass
class RepeatDraws:
    """The draws of one repeat over ``N`` entries.

    Attributes:
        batches: ``(B, n)`` entry indices of each batch, in loader order.
        caption: ``(N,)`` index into each entry's captions.
        m_length: ``(N,)`` crop length in frames (a multiple of the unit length).
        start: ``(N,)`` crop start in frames.
    """

    batches: np.ndarray
    caption: np.ndarray
    m_length: np.ndarray
    start: np.ndarray

    @property
    def used(self) -> np.ndarray:
        """``(B * n,)`` entry indices of the samples evaluated, batch by batch."""
        return self.batches.reshape(-1)


def draw_repeat(
    rng: np.random.Generator,
    lengths: np.ndarray,
    n_captions: np.ndarray,
    *,
    batch_size: int = 32,
    unit_length: int = 4,
    fixed_captions: np.ndarray | None = None,
) -> RepeatDraws:
    """Draw one loader pass.

    The draws happen in a fixed order (shuffle, captions, coins, starts), each vectorised over
    all entries, so ``fixed_captions`` changes nothing but the caption choice.

    Args:
        rng: this repeat's generator.
        lengths: ``(N,)`` entry lengths in frames.
        n_captions: ``(N,)`` captions per entry (>= 1).
        batch_size: items per batch.
        unit_length: frames per movement step.
        fixed_captions: ``(N,)`` caption indices to use instead of random ones.

    Returns:
        The draws.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    n_captions = np.asarray(n_captions, dtype=np.int64)
    n = len(lengths)
    n_batches = n // batch_size
    if n_batches == 0:
        raise InvalidInputError(
            f"{n} entries do not fill one batch of {batch_size}; evaluate more entries"
        )
    order = rng.permutation(n)
    caption = rng.integers(0, n_captions)
    double = rng.random(n) < DOUBLE_COIN_PROBABILITY
    m_length = (lengths // unit_length - double) * unit_length
    start = rng.integers(0, lengths - m_length + 1)
    if fixed_captions is not None:
        caption = np.asarray(fixed_captions, dtype=np.int64)
    return RepeatDraws(
        batches=order[: n_batches * batch_size].reshape(n_batches, batch_size),
        caption=caption,
        m_length=m_length,
        start=start,
    )
