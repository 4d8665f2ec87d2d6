"""The input checks of a pipeline call: texts, lengths, precomputed text features, batch size and
mode. Each raises :class:`~hftrainer_mogents.errors.InvalidInputError` naming the argument, the
value and the allowed range, before any compute."""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hftrainer_mogents.config import (
    MAX_MOTION_LENGTH,
    MIN_MOTION_LENGTH,
    UNIT_LENGTH,
    clamp_length,
)
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.modeling.tokenizer import CLIPTokenizer

if TYPE_CHECKING:
    from hftrainer_mogents.bundle import MoGenTSBundle

__all__ = ["MODES", "normalize_length"]

logger = logging.getLogger(__name__)

MODES = ("fast", "reference")


def normalize_length(frames: float, *, index: int | None = None, raise_short: bool = False) -> int:
    """A requested length in frames (20 fps) -> the frames generated: floored to a multiple of 4
    and kept within 196, with a warning naming the old and new value when it changes.

    A length below the model's minimum (40 frames) is refused, unless ``raise_short`` (the zoo's
    ``clamp=True``) brings it up to 40 with the same warning.

    Raises:
        InvalidInputError: not a number (a bool or a string is not one), not finite, or below 40
            frames without ``raise_short``.
    """
    where = f"lengths[{index}]" if index is not None else "length"
    value = _frame_count(frames, where)
    if value < MIN_MOTION_LENGTH and not raise_short:
        raise InvalidInputError(
            f"{where} = {frames!r} frames is below the model's minimum of {MIN_MOTION_LENGTH} "
            f"({MIN_MOTION_LENGTH // 20} s at 20 fps): give at least {MIN_MOTION_LENGTH}, or "
            "clamp=True to raise it to the minimum"
        )
    new = clamp_length(int(value))
    if new != value:
        logger.warning(
            "%s = %s frames -> %d (lengths are floored to a multiple of %d and kept within [%d, %d])",
            where,
            frames,
            new,
            UNIT_LENGTH,
            MIN_MOTION_LENGTH,
            MAX_MOTION_LENGTH,
        )
    return new


def _frame_count(frames: Any, where: str) -> float:
    """``frames`` as a float, if it is a real, finite, non-negative number (not a bool/str)."""
    if isinstance(frames, (bool, np.bool_)) or not isinstance(frames, numbers.Real):
        raise InvalidInputError(
            f"{where} must be a number of frames at 20 fps, got {type(frames).__name__} {frames!r}"
        )
    value = float(frames)
    if not math.isfinite(value) or value < 0:
        raise InvalidInputError(
            f"{where} must be a finite, non-negative number of frames at 20 fps, got {frames!r}"
        )
    return value


def _check_texts(texts: Sequence[str] | str) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or isinstance(texts, bytes):
        raise InvalidInputError(f"texts must be a list of strings, got {type(texts).__name__}")
    out = list(texts)
    if not out:
        raise InvalidInputError("texts is empty: give at least one caption")
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise InvalidInputError(f"texts[{i}] must be a string, got {type(text).__name__}")
        if not text.strip():
            raise InvalidInputError(f"texts[{i}] is empty; describe the motion in words")
        if not CLIPTokenizer.default().encode(text):
            raise InvalidInputError(
                f"texts[{i}] ({text!r}) has no words once CLIP's text cleaning has run (only "
                "control characters or marks); describe the motion in words"
            )
    return out


def _check_lengths(
    lengths: Sequence[float], n_texts: int, *, clamp: bool | None = None
) -> list[int]:
    if isinstance(lengths, (str, bytes)) or not hasattr(lengths, "__len__"):
        raise InvalidInputError(
            f"lengths must be a list of frame counts, got {type(lengths).__name__}"
        )
    values = (
        list(np.asarray(lengths).reshape(-1))
        if isinstance(lengths, (np.ndarray, torch.Tensor))
        else list(lengths)
    )
    if len(values) != n_texts:
        raise InvalidInputError(
            f"got {n_texts} texts but {len(values)} lengths; give one length per text or lengths=None"
        )
    if clamp is not None and not isinstance(clamp, (bool, np.bool_)):
        raise InvalidInputError(f"clamp must be None, True or False, got {clamp!r}")
    if clamp is None or clamp:
        return [normalize_length(v, index=i, raise_short=bool(clamp)) for i, v in enumerate(values)]
    out = []
    for i, value in enumerate(values):
        number = _frame_count(value, f"lengths[{i}]")
        if number != clamp_length(int(number)):
            raise InvalidInputError(
                f"lengths[{i}] = {value!r}: with clamp=False a length must already be a multiple "
                f"of {UNIT_LENGTH} within [{MIN_MOTION_LENGTH}, {MAX_MOTION_LENGTH}] frames; pass "
                "clamp=True to bring it into that range"
            )
        out.append(int(number))
    return out


def _check_execution(batch_size: int, mode: str) -> None:
    if (
        not isinstance(batch_size, (int, np.integer))
        or isinstance(batch_size, bool)
        or batch_size < 1
    ):
        raise InvalidInputError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if mode not in MODES:
        raise InvalidInputError(f"mode must be one of {MODES}, got {mode!r}")


def _check_features(features: Any, n_texts: int, bundle: MoGenTSBundle) -> torch.Tensor:
    tensor = torch.as_tensor(
        np.asarray(features) if not isinstance(features, torch.Tensor) else features
    )
    width = bundle.config.mask.clip_dim
    if tensor.shape != (n_texts, width) or not tensor.is_floating_point():
        raise InvalidInputError(
            f"text_features must be a float ({n_texts}, {width}) array (one CLIP feature per "
            f"text), got {tuple(tensor.shape)} {tensor.dtype}"
        )
    if not torch.isfinite(tensor).all():
        raise InvalidInputError("text_features contains NaN or infinite values")
    return tensor.to(device=bundle.device, dtype=torch.float32)


def _check_inputs(
    bundle: MoGenTSBundle,
    texts: Sequence[str] | str,
    lengths: Sequence[float] | None,
    clamp: bool | None,
    text_features: Any,
) -> tuple[list[str], list[int] | None, torch.Tensor | None]:
    """The texts, frames (None: to be estimated) and text features of a generation call.

    Raises:
        InvalidInputError: bad texts, lengths or features, or ``lengths=None`` without a length
            estimator in the bundle.
    """
    texts = _check_texts(texts)
    frames = None if lengths is None else _check_lengths(lengths, len(texts), clamp=clamp)
    if frames is None and bundle.length_estimator is None:
        raise InvalidInputError(
            "lengths=None needs the length estimator, which this artifact lacks; pass lengths "
            "(frames at 20 fps) or load an artifact with a length estimator"
        )
    features = None if text_features is None else _check_features(text_features, len(texts), bundle)
    return texts, frames, features
