"""Long motions from a sequence of prompts: ``MoGenTSPipeline.generate_long``.

The first window is generated from text; each next one is an edit (:mod:`.editing`) that keeps
the motion so far's tail and re-generates the new frames, and the seams are cross-faded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hftrainer_mogents.config import (
    MAX_MOTION_LENGTH,
    MIN_MOTION_LENGTH,
    UNIT_LENGTH,
    floor_to_unit,
)
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.generation_config import GenerationConfig
from hftrainer_mogents.pipeline.inputs import _check_texts, _frame_count
from hftrainer_mogents.pipeline.output import MoGenTSOutput
from hftrainer_mogents.pipeline.prepare import sample_seed

if TYPE_CHECKING:
    from hftrainer_mogents.pipeline.prepare import PreparedCall

__all__ = ["LongMotionMixin", "check_sequence"]

logger = logging.getLogger(__name__)


class LongMotionMixin:
    """:meth:`generate_long` for :class:`~hftrainer_mogents.pipeline.MoGenTSPipeline`, over its
    ``__call__``, ``edit`` and ``_prepare_call``."""

    _prepare_call: Callable[..., PreparedCall]
    __call__: Callable[..., MoGenTSOutput]
    edit: Callable[..., MoGenTSOutput]

    @torch.inference_mode()
    def generate_long(
        self,
        texts: Sequence[str] | str,
        lengths: Sequence[int] | int,
        *,
        transition: int = 40,
        seed: int | None = None,
        generation_config: GenerationConfig | Mapping[str, Any] | None = None,
        time_steps: int | None = None,
        cond_scale: float | None = None,
        res_cond_scale: float | None = None,
    ) -> MoGenTSOutput:
        """One motion of any length from a sequence of prompts (e.g. "walks forward", "sits
        down", "waves") and their lengths in frames.

        The prompts are cut into windows of at most 196 frames (a prompt longer than that is
        the same text over several windows). The first window is generated; each next window is
        an :meth:`edit` of ``transition`` + new frames whose first ``transition`` frames are the
        motion so far's tail, kept (their tokens in every layer), and the rest (the new frames,
        placeholder = the tail's last frame) re-generated with the window's text. The window's
        new frames are appended; over the ``transition`` frames the motion cross-fades linearly
        from the previous output to the window's rendering of them (which the decoder changed
        near the seam, see :func:`decoder_reach`).

        Root trajectory: HumanML3D-263's root is velocity-based (per-frame yaw velocity and
        planar velocity in the body's own heading frame, absolute height), and the joints are
        root-relative; the trajectory is recovered by integrating over the whole array. So
        concatenating feature frames continues the trajectory from where the previous segment
        ended (position and heading carry on, nothing is reset): recovering the output with
        :func:`~hftrainer_mogents.motion.hml263.recover_from_ric` gives one path.

        Continuity (how the tests measure it): the joint speed ``v[t] = mean_j |r[t+1, j] -
        r[t, j]|`` of the root-relative joint positions ``r`` (the 263's ``ric`` features; the
        root itself is continuous by construction, see above); the speed across a seam is
        compared with the speeds inside the segments. Each seam is a cross-fade over the
        ``transition`` frames; at both of its edges the tests require the speed to stay within
        the 95th percentile of the other steps' speeds (on the tiny random-weight release, whose
        motion is jittery everywhere), which a naive concatenation of independent generations of
        the same prompts fails (its seams reach 1.4-1.9 x the median speed).

        Args:
            texts: one caption per segment (a single string: one segment).
            lengths: frames of each segment, each at least 40 (floored to a multiple of 4 with
                a warning, as ``__call__`` floors its lengths; any length above 196 is split
                into windows).
            transition: frames kept from the previous window, a multiple of 4 in [4, 160],
                at most the first window's frames (:func:`check_sequence`).
            seed: makes the call reproducible (None draws one, returned in the output).
            generation_config: the sampling settings, as in :meth:`__call__`.
            time_steps: overrides this setting of ``generation_config`` for this call.
            cond_scale: overrides this setting of ``generation_config`` for this call.
            res_cond_scale: overrides this setting of ``generation_config`` for this call.

        Returns:
            :class:`MoGenTSOutput` with one motion of ``sum(lengths)`` frames; ``settings``
            records the segments and windows.

        Raises:
            InvalidInputError: bad texts, lengths or transition (all checked before any
                compute, by :func:`check_sequence`).
        """
        texts, frames, windows = check_sequence(texts, lengths, transition)
        call = self._prepare_call(
            1,
            generation_config=generation_config,
            seed=seed,
            time_steps=time_steps,
            cond_scale=cond_scale,
            res_cond_scale=res_cond_scale,
        )
        seed = call.seed

        first_text, first_len = windows[0]
        motion = self(
            [first_text],
            [first_len],
            seed=sample_seed(seed, 0),
            clamp=False,
            generation_config=call.config,
        ).motions[0]
        ramp = ((np.arange(transition) + 1) / (transition + 1)).astype(np.float32)[:, None]
        for w, (text, new) in enumerate(windows[1:], start=1):
            tail = motion[-transition:]
            window = np.concatenate([tail, np.repeat(tail[-1:], new, axis=0)], 0)
            out = self.edit(
                window,
                text,
                [(0, transition)],
                seed=sample_seed(seed, w),
                generation_config=call.config,
            )
            rendered = out.motions[0]
            seam = (1 - ramp) * tail + ramp * rendered[:transition]
            motion = np.concatenate([motion[:-transition], seam, rendered[transition:]], 0)
        settings = {
            **call.config.to_dict(),
            "mode": "fast",
            "seed": seed,
            "sequence": [{"text": t, "frames": f} for t, f in zip(texts, frames)],
            "windows": [{"text": t, "new_frames": f} for t, f in windows],
            "transition": transition,
        }
        return MoGenTSOutput(
            motions=[np.ascontiguousarray(motion, dtype=np.float32)],
            lengths=[len(motion)],
            seed=seed,
            mode="fast",
            settings=settings,
            generation_config=call.config,
        )


def check_sequence(
    texts: Sequence[str] | str, lengths: Sequence[float] | float, transition: int
) -> tuple[list[str], list[int], list[tuple[str, int]]]:
    """Every check of :meth:`~LongMotionMixin.generate_long`'s inputs, without the model (the CLI
    can call it before loading one).

    Returns:
        The texts, the segments' frames (floored to a multiple of 4, with a warning, as
        ``--length`` is) and the windows (``(text, new frames)``).

    Raises:
        InvalidInputError: bad texts, lengths (or a segment below 40 frames) or transition (not a
            multiple of 4 in [4, 160], or longer than the first window, which it keeps).
    """
    texts = _check_texts(texts)
    frames = _check_segments(texts, lengths, transition)
    windows = _plan_windows(texts, frames, transition)
    first = windows[0][1]
    if len(windows) > 1 and transition > first:
        raise InvalidInputError(
            f"transition = {transition} frames, but the motion before the second window has "
            f"only {first} frames (the first segment's first window), and the transition keeps "
            f"that many frames of it: give a transition of at most {first} frames (a multiple "
            f"of {UNIT_LENGTH}; --transition), or a longer first segment"
        )
    return texts, frames, windows


def _check_segments(
    texts: list[str], lengths: Sequence[float] | float, transition: int
) -> list[int]:
    """The segments' frames (each floored to a multiple of 4 with a warning, at least 40) after
    checking ``lengths`` against ``texts`` and the ``transition``."""
    if isinstance(lengths, (int, float, np.integer, np.floating)) and not isinstance(lengths, bool):
        lengths = [lengths]
    if isinstance(lengths, (str, bytes)) or not hasattr(lengths, "__len__"):
        raise InvalidInputError(
            f"lengths must be a list of frame counts, got {type(lengths).__name__}"
        )
    if len(lengths) != len(texts):
        raise InvalidInputError(
            f"got {len(texts)} texts but {len(lengths)} lengths; give one length per text"
        )
    frames = []
    for i, value in enumerate(lengths):
        number = _frame_count(value, f"lengths[{i}]")
        if number < MIN_MOTION_LENGTH:
            raise InvalidInputError(
                f"lengths[{i}] = {value!r}: each segment needs at least {MIN_MOTION_LENGTH} "
                f"frames ({MIN_MOTION_LENGTH // 20} s at 20 fps; --sequence TEXT:FRAMES)"
            )
        floored = floor_to_unit(int(number))
        if floored != number:
            logger.warning(
                "lengths[%d] = %s frames -> %d (segment lengths are floored to a multiple of %d)",
                i,
                value,
                floored,
                UNIT_LENGTH,
            )
        frames.append(floored)
    high = MAX_MOTION_LENGTH - MIN_MOTION_LENGTH + UNIT_LENGTH
    if (
        isinstance(transition, bool)
        or not isinstance(transition, (int, np.integer))
        or transition % UNIT_LENGTH
        or not UNIT_LENGTH <= transition <= high
    ):
        raise InvalidInputError(
            f"transition must be a multiple of {UNIT_LENGTH} frames in [{UNIT_LENGTH}, "
            f"{high}], got {transition!r}"
        )
    return frames


def _plan_windows(texts: list[str], frames: list[int], transition: int) -> list[tuple[str, int]]:
    """The windows as ``(text, new frames)``: the first holds up to 196 new frames, the others
    up to 196 - transition (they also carry the transition), each segment split evenly in
    multiples of 4."""
    windows: list[tuple[str, int]] = []
    for text, total in zip(texts, frames):
        done = 0
        while done < total:
            cap = MAX_MOTION_LENGTH - (transition if windows else 0)
            left = total - done
            parts = math.ceil(left / cap)
            step = min(cap, math.ceil(left / parts / UNIT_LENGTH) * UNIT_LENGTH)
            windows.append((text, step))
            done += step
    return windows
