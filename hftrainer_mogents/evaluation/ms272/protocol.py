"""The MotionStreamer-272 test protocol (the zoo's, deterministic): which samples are scored, the
metrics of aligned samples over reshuffled passes, and the report's zoo keys.

Every entry of the test split is one sample (or one per caption line with ``pairs="caption"``);
the real motion is taken from frame 0 at its length floored to 4; the prediction at
``min(that length, its own length floored to 4)``, and is left out (counted) when missing or
shorter than 60 frames.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hftrainer_mogents.config import floor_to_unit
from hftrainer_mogents.errors import ArtifactNotFoundError, InvalidInputError
from hftrainer_mogents.evaluation import metrics
from hftrainer_mogents.evaluation.ms272.dataset import (
    MAX_LENGTH,
    MIN_LENGTH,
    UNIT_LENGTH,
    MS272Split,
)
from hftrainer_mogents.evaluation.ms272.encoders import MS272Encoders

__all__ = [
    "Samples",
    "load_prediction",
    "pair_samples",
    "score_samples",
    "zoo_keys",
    "report_config",
]

logger = logging.getLogger(__name__)


@dataclass
class Samples:
    """Aligned samples: candidate captions, real and generated motions (cut to their lengths),
    and the keys left out."""

    captions: list[list[str]] = field(default_factory=list)
    reals: list[np.ndarray] = field(default_factory=list)
    preds: list[np.ndarray] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    short: list[str] = field(default_factory=list)


def load_prediction(key: str, value: Any) -> np.ndarray:
    """A prediction given as an array or a ``.npy`` path, checked to be ``(T, 272)``.

    Raises:
        InvalidInputError: another shape (the file or key is named).
    """
    is_path = isinstance(value, (str, os.PathLike))
    pred = np.load(value, allow_pickle=False) if is_path else np.asarray(value)
    if pred.ndim != 2 or pred.shape[1] != 272:
        name = str(value) if is_path else repr(key)
        raise InvalidInputError(f"{name}: expected (T, 272), got {pred.shape}")
    return pred


def pair_samples(
    data: MS272Split,
    predictions: Mapping[str, Any] | None,
    *,
    pairs: str,
    strict: bool,
) -> Samples:
    """Pair each test entry with its prediction (none for the real data only).

    Parameters
    ----------
    data:
        The test split.
    predictions:
        Motion (array or ``.npy`` path) by key, or ``None``.
    pairs:
        ``"entry"`` (one sample per entry) or ``"caption"`` (one per caption line).
    strict:
        Raise on a missing prediction instead of leaving the entry out.

    Returns
    -------
    The samples and the entries left out (no prediction, or one shorter than 60 frames).

    Raises
    ------
    ArtifactNotFoundError
        (``strict``) a missing prediction.
    """
    out = Samples()
    for entry in data.entries:
        motion = data.motion(entry)
        length = floor_to_unit(len(motion), UNIT_LENGTH)
        pred = None
        if predictions is not None:
            if entry.key not in predictions:
                if strict:
                    raise ArtifactNotFoundError(f"missing prediction for {entry.key!r}")
                out.missing.append(entry.key)
                continue
            pred = load_prediction(entry.key, predictions[entry.key])
            plen = min(length, floor_to_unit(len(pred), UNIT_LENGTH))
            if plen < MIN_LENGTH:
                out.short.append(entry.key)
                continue
            pred = pred[:plen]
        groups = [[c] for c in entry.captions] if pairs == "caption" else [list(entry.captions)]
        for group in groups:
            out.captions.append(group)
            out.reals.append(motion[:length])
            if pred is not None:
                out.preds.append(pred)
    return out


def score_samples(
    evaluator: MS272Encoders,
    captions: Sequence[str] | Sequence[Sequence[str]],
    real_motions: Sequence[np.ndarray],
    pred_motions: Sequence[np.ndarray] | None = None,
    *,
    real_lengths: Sequence[int] | None = None,
    pred_lengths: Sequence[int] | None = None,
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
    caption_selection: str = "first",
    n_repeats: int = metrics.N_REPEATS,
    seed: int = 0,
    batch_size: int = metrics.BATCH_SIZE,
    diversity_times: int | None = None,
) -> dict[str, Any]:
    """Metrics of aligned samples (see
    :meth:`~.evaluator.MotionStreamer272Evaluator.evaluate_pairs`)."""
    options = [[c] if isinstance(c, str) else list(c) for c in captions]
    n = len(options)
    if len(real_motions) != n or (pred_motions is not None and len(pred_motions) != n):
        raise InvalidInputError(
            f"{n} captions, {len(real_motions)} real motions"
            + ("" if pred_motions is None else f", {len(pred_motions)} generated motions")
        )
    if caption_selection not in ("first", "random"):
        raise InvalidInputError("caption_selection must be 'first' or 'random'")
    r_len = (
        [floor_to_unit(len(m), UNIT_LENGTH) for m in real_motions]
        if real_lengths is None
        else real_lengths
    )
    real = evaluator.encode_motion(real_motions, r_len, mean=mean, std=std, batch_size=batch_size)
    pred = None
    if pred_motions is not None:
        p_len = (
            [floor_to_unit(len(m), UNIT_LENGTH) for m in pred_motions]
            if pred_lengths is None
            else pred_lengths
        )
        pred = evaluator.encode_motion(
            pred_motions, p_len, mean=mean, std=std, batch_size=batch_size
        )
    flat = [c for opts in options for c in opts]
    text_all = evaluator.encode_text(flat, batch_size=batch_size)
    offsets = np.cumsum([0] + [len(o) for o in options])

    def one_repeat(r: int, rng: np.random.Generator) -> dict[str, Any]:
        if caption_selection == "random":
            pick = [int(offsets[i] + rng.integers(len(options[i]))) for i in range(n)]
        else:
            pick = [int(offsets[i]) for i in range(n)]
        order = rng.permutation(n)
        text = text_all[pick][order]
        return metrics.embedding_metrics(
            text,
            real[order],
            None if pred is None else pred[order],
            batch_size=batch_size,
            diversity_times=diversity_times,
            rng=rng,
        )

    result = metrics.replicate(one_repeat, n_repeats=n_repeats, seed=seed)
    return zoo_keys(result, pred is not None)


def zoo_keys(result: dict[str, Any], with_pred: bool) -> dict[str, Any]:
    """The zoo's keys of :func:`~hftrainer_mogents.evaluation.metrics.replicate`'s result: the
    mean and population standard deviation of each metric over the passes (``fid``,
    ``fid_std``, ``r_precision_real`` ...), with ``summary``, ``repeats`` and ``seed``."""
    repeats = result["repeats"]

    def stats(key: str) -> tuple[Any, Any]:
        values = np.asarray([rep[key] for rep in repeats], dtype=np.float64)
        mean, std = values.mean(axis=0), values.std(axis=0)
        if values.ndim == 1:
            return float(mean), float(std)
        return mean.tolist(), std.tolist()

    out: dict[str, Any] = {
        "n_samples_used": int(repeats[0]["n_samples"]),
        "n_repeats": result["n_repeats"],
    }
    out["r_precision_real"], out["r_precision_real_std"] = stats("r_precision_real")
    out["matching_score_real"], out["matching_score_real_std"] = stats("matching_score_real")
    out["diversity_real"], out["diversity_real_std"] = stats("diversity_real")
    if with_pred:
        out["fid"], out["fid_std"] = stats("fid")
        out["r_precision_pred"], out["r_precision_pred_std"] = stats("r_precision")
        out["matching_score_pred"], out["matching_score_pred_std"] = stats("matching_score")
        out["diversity_pred"], out["diversity_pred_std"] = stats("diversity")
    out["summary"] = result["summary"]
    out["repeats"] = repeats
    out["seed"] = result["seed"]
    return out


def report_config(
    source: str | None,
    data_root: str | os.PathLike[str],
    data: MS272Split,
    *,
    gt_only: bool,
    batch_size: int,
    caption_selection: str,
    pairs: str,
    seed: int,
    split: str | None,
) -> dict[str, Any]:
    """The report's ``config`` (the zoo's keys): the evaluator folder ``source``, the dataset,
    and the protocol's settings; ``pred_dir`` is ``None`` (``evaluate_dir`` names its folder)."""
    return {
        "evaluator": "motionstreamer_272",
        "evaluator_ckpt": None if source is None else str(Path(source) / "evaluator.safetensors"),
        "evaluator_dir": source,
        "data_root": str(data_root),
        "pred_dir": None,
        "gt_only": gt_only,
        "batch_size": batch_size,
        "caption_selection": caption_selection,
        "pairs": pairs,
        "seed": seed,
        "split": split,
        "min_length": MIN_LENGTH,
        "max_length": MAX_LENGTH,
        "skipped_dataset": len(data.skipped),
    }
