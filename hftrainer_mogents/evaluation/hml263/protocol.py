"""The HumanML3D-263 test protocol (the role of momask-codes' ``eval_t2m.py``): which entries are
scored, the random draws of every pass, the embeddings the passes need (each computed once), the
metrics per pass and their aggregation into the report.

Each step is a function of plain data and an evaluator (:class:`~.encoders.HML263Encoders`), so
:meth:`~.evaluator.HumanML263Evaluator.evaluate` reads as the list of steps.
"""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hftrainer_mogents.config import floor_to_unit
from hftrainer_mogents.errors import ArtifactNotFoundError, InvalidInputError
from hftrainer_mogents.evaluation import metrics
from hftrainer_mogents.evaluation.hml263.cache import cached_embeddings, real_cache_path
from hftrainer_mogents.evaluation.hml263.dataset import HumanML3DTestSplit, TestEntry
from hftrainer_mogents.evaluation.hml263.draws import RepeatDraws, draw_repeat
from hftrainer_mogents.evaluation.hml263.encoders import HML263Encoders
from hftrainer_mogents.evaluation.hml263.predictions import MM_SEPARATOR, Predictions

__all__ = [
    "EVALUATOR_NAME",
    "ZOO_EVALUATOR_NAME",
    "CAPTION_PROTOCOL_NOTE",
    "Passes",
    "Embeddings",
    "check_caption_selection",
    "select_entries",
    "plan_passes",
    "embed_passes",
    "score_passes",
    "summarize",
    "report_config",
    "with_std",
]

logger = logging.getLogger(__name__)

EVALUATOR_NAME = "hml263"
ZOO_EVALUATOR_NAME = "humanml3d_263"  # config.evaluator in the zoo's verify_hml263.json
CAPTION_PROTOCOL_NOTE = (
    "Semantic metrics (R-precision, matching score) compare each prediction with the caption it "
    "was generated from (generation.json, else the first caption of the item); texts_dir must "
    "hold the captions the predictions were generated from."
)
PROTOCOL_NOTE = (
    "per pass: shuffled entries in batches of batch_size (last partial batch "
    "dropped), crop length floor4(len) or floor4(len)-4 (p=1/3), random crop start "
    "for the real motion, first m_length frames of the prediction"
)


@dataclass
class Passes:
    """Every pass of the protocol, drawn up front.

    Attributes:
        rngs: the generator of each pass (its draws, then its diversity pairs).
        draws: the draws of each pass.
        diversity_times: the diversity pairs (``None``: the protocol's default).
    """

    rngs: list[np.random.Generator]
    draws: list[RepeatDraws]
    diversity_times: int | None


@dataclass
class Embeddings:
    """What the passes need, each embedded once.

    Attributes:
        text: by ``(entry, caption)``.
        real: by ``(entry, start, m_length)``.
        pred: by ``(entry, m_length)``, or ``None`` for the real data only.
        mm: ``(K, R, D)`` repeated generations, or ``None``.
        mm_note: how multimodality was computed, or why not.
    """

    text: dict[tuple[int, int], np.ndarray]
    real: dict[tuple[int, int, int], np.ndarray]
    pred: dict[tuple[int, int], np.ndarray] | None
    mm: np.ndarray | None
    mm_note: str | None


def check_caption_selection(selection: str | None, predictions: Any) -> str:
    """The caption selection: ``"random"`` for the real data only, else ``"generated"``.

    Raises:
        InvalidInputError: an unknown selection.
    """
    if selection is None:
        selection = "random" if predictions is None else "generated"
    if selection not in ("random", "generated"):
        raise InvalidInputError(
            f"caption_selection must be 'random' or 'generated', got {selection!r}"
        )
    return selection


def select_entries(
    split: HumanML3DTestSplit,
    predictions: Mapping[str, Any] | None,
    unit_length: int,
    *,
    strict: bool,
) -> tuple[list[TestEntry], Predictions | None, list[str]]:
    """The entries scored (those with a prediction), their checked predictions and the keys
    left out.

    Parameters
    ----------
    split:
        The test split.
    predictions:
        Motion by key, or ``None`` (every entry, the real data only).
    unit_length:
        The shortest prediction accepted.
    strict:
        Raise when a prediction is missing.

    Returns
    -------
    ``(entries, predictions, missing keys)``.

    Raises
    ------
    ArtifactNotFoundError
        No entry has a prediction, or (``strict``) one is missing.
    """
    entries = list(split.entries)
    if predictions is None:
        return entries, None, []
    missing = [e.key for e in entries if e.key not in predictions]
    if strict and missing:
        raise ArtifactNotFoundError(
            f"{len(missing)} of {len(entries)} test items have no prediction (first: "
            f"{missing[:5]}); generate them (--skip-existing resumes) or drop --strict"
        )
    entries = [e for e in entries if e.key in predictions]
    if not entries:
        raise ArtifactNotFoundError(
            f"none of the {len(split.entries)} test items has a prediction; are the "
            "prediction files named <id>.npy / <id>__sub<k>.npy?"
        )
    preds = Predictions({e.key: predictions[e.key] for e in entries}, unit_length)
    if missing:
        logger.warning("%d test items have no prediction and are left out", len(missing))
    return entries, preds, missing


def plan_passes(
    entries: Sequence[TestEntry],
    *,
    caption_selection: str,
    caption_indices: Mapping[str, int] | None,
    n_repeats: int,
    seed: int,
    batch_size: int,
    diversity_times: int | None,
    unit_length: int,
    draws: Sequence[RepeatDraws] | None = None,
) -> Passes:
    """Draw every pass up front (or take recorded ``draws``): repeat ``r`` draws from
    ``default_rng([seed, r])``; with ``caption_selection="generated"`` each entry keeps the
    caption of ``caption_indices`` (default 0). On a split too small for the protocol's
    diversity pairs, every sample is used once.

    Raises:
        InvalidInputError: a caption index out of range.
    """
    lengths = np.array([e.length for e in entries], dtype=np.int64)
    n_caps = np.array([len(e.captions) for e in entries], dtype=np.int64)
    fixed = None
    if caption_selection == "generated":
        indices = dict(caption_indices or {})
        fixed = np.array([indices.get(e.key, 0) for e in entries], dtype=np.int64)
        bad = [e.key for e, c, n in zip(entries, fixed, n_caps) if not 0 <= c < n]
        if bad:
            raise InvalidInputError(f"caption index out of range for {bad[:5]}")
    if draws is not None:
        n_repeats = len(draws)
    rngs = [np.random.default_rng([seed, r]) for r in range(n_repeats)]
    n_used = (len(entries) // batch_size) * batch_size
    if diversity_times is None and 0 < n_used < metrics.default_diversity_times(n_used):
        # a small split: the protocol's pairs cannot all be distinct; use every sample
        logger.warning(
            "only %d samples per pass: diversity uses %d pairs instead of %d",
            n_used,
            n_used,
            metrics.default_diversity_times(n_used),
        )
        diversity_times = n_used
    drawn = draws or [
        draw_repeat(
            rng,
            lengths,
            n_caps,
            batch_size=batch_size,
            unit_length=unit_length,
            fixed_captions=fixed,
        )
        for rng in rngs
    ]
    return Passes(rngs, list(drawn), diversity_times)


def embed_passes(
    evaluator: HML263Encoders,
    split: HumanML3DTestSplit,
    entries: Sequence[TestEntry],
    preds: Predictions | None,
    draws: Sequence[RepeatDraws],
    *,
    mm_predictions: Mapping[str, Sequence[Any]] | None,
    mm_times: int,
    batch_size: int,
    progress: bool,
    cache_dir: str | os.PathLike[str] | None,
) -> Embeddings:
    """Embed every distinct caption and crop the passes need, once (real crops through the
    cache in ``cache_dir`` when given)."""
    text = _embed_captions(evaluator, entries, draws)
    real = _embed_real(evaluator, split, entries, draws, batch_size, progress, cache_dir)
    pred = None
    if preds is not None:
        pred = _embed_pred(evaluator, entries, preds, draws, batch_size, progress)
    mm, mm_note = _embed_mm(evaluator, mm_predictions, batch_size, mm_times)
    return Embeddings(text, real, pred, mm, mm_note)


def _embed_captions(
    evaluator: HML263Encoders, entries: Sequence[TestEntry], draws: Sequence[RepeatDraws]
) -> dict[tuple[int, int], np.ndarray]:
    needed = sorted(
        {(int(i), int(d.caption[i])) for d in draws for i in d.used}  # (entry, caption)
    )
    emb = evaluator.encode_text([entries[i].captions[c].tokens for i, c in needed])
    return dict(zip(needed, emb))


def _embed_real(
    evaluator: HML263Encoders,
    split: HumanML3DTestSplit,
    entries: Sequence[TestEntry],
    draws: Sequence[RepeatDraws],
    batch_size: int,
    progress: bool,
    cache_dir: str | os.PathLike[str] | None,
) -> dict[tuple[int, int, int], np.ndarray]:
    requests = {(int(i), int(d.start[i]), int(d.m_length[i])) for d in draws for i in d.used}
    path = None
    if cache_dir is not None:
        path = real_cache_path(Path(cache_dir), evaluator.fingerprint(), split)
    return cached_embeddings(
        path,
        requests,
        lambda req: f"{entries[req[0]].key}|{req[1]}|{req[2]}",
        lambda todo: evaluator._embed_crops(
            todo,
            lambda i: split.load_motion(entries[i]),
            batch_size,
            progress,
            "encode real motions",
        ),
    )


def _embed_pred(
    evaluator: HML263Encoders,
    entries: Sequence[TestEntry],
    preds: Predictions,
    draws: Sequence[RepeatDraws],
    batch_size: int,
    progress: bool,
) -> dict[tuple[int, int], np.ndarray]:
    unit = evaluator.config.unit_length

    def pred_length(i: int, m: int) -> int:
        # a prediction shorter than the crop is used whole (floored to the unit)
        return min(int(m), floor_to_unit(preds.lengths[entries[i].key], unit))

    requests = {(int(i), 0, pred_length(i, d.m_length[i])) for d in draws for i in d.used}
    crops = evaluator._embed_crops(
        requests,
        lambda i: preds.load(entries[i].key),
        batch_size,
        progress,
        "encode generated motions",
    )
    table = {}
    for d in draws:
        for i in d.used:
            m = int(d.m_length[i])
            table[(int(i), m)] = crops[(int(i), 0, pred_length(i, m))]
    return table


def _embed_mm(
    evaluator: HML263Encoders,
    mm_predictions: Mapping[str, Sequence[Any]] | None,
    batch_size: int,
    mm_times: int,
) -> tuple[np.ndarray | None, str | None]:
    if not mm_predictions:
        return None, "not computed: no repeated generations (<pred_dir>/mm/)"
    counts = {k: len(v) for k, v in mm_predictions.items()}
    n_rep = min(counts.values())
    if n_rep < mm_times:
        return None, (
            f"not computed: {n_rep} generations for some texts, fewer than the "
            f"{mm_times} pairs drawn"
        )
    keys = sorted(mm_predictions)
    flat = {f"{k}{MM_SEPARATOR}{j}": mm_predictions[k][j] for k in keys for j in range(n_rep)}
    preds = Predictions(flat, evaluator.config.unit_length)
    motions = [preds.load(name) for name in flat]
    emb = evaluator.encode_motion(motions, batch_size=batch_size)  # (K * R, D)
    dropped = sum(counts.values()) - n_rep * len(keys)
    note = f"{len(keys)} texts x {n_rep} generations" + (
        f" ({dropped} extra generations unused)" if dropped else ""
    )
    return emb.reshape(len(keys), n_rep, -1), note


def score_passes(
    passes: Passes,
    emb: Embeddings,
    *,
    batch_size: int,
    mm_times: int,
    fid_method: str,
    diversity_indices: Sequence[Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The metrics of each pass (:func:`~hftrainer_mogents.evaluation.metrics.embedding_metrics`
    on its batches), numbered ``repeat``."""
    repeats = []
    for r, (rng, d) in enumerate(zip(passes.rngs, passes.draws)):
        used = d.used
        key_text = list(zip(used.tolist(), d.caption[used].tolist()))
        key_real = list(zip(used.tolist(), d.start[used].tolist(), d.m_length[used].tolist()))
        out = metrics.embedding_metrics(
            np.stack([emb.text[k] for k in key_text]),
            np.stack([emb.real[k] for k in key_real]),
            None
            if emb.pred is None
            else np.stack([emb.pred[(i, m)] for i, m in zip(used, d.m_length[used])]),
            batch_size=batch_size,
            diversity_times=passes.diversity_times,
            rng=rng,
            mm_activations=emb.mm,
            mm_times=mm_times,
            fid_method=fid_method,
            diversity_indices=None if diversity_indices is None else diversity_indices[r],
        )
        out["repeat"] = r
        repeats.append(out)
    return repeats


def with_std(
    summary: Mapping[str, dict[str, Any]], repeats: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``{"mean", "std", "conf"}`` per metric: the zoo's population standard deviation over the
    passes (``numpy.std``) beside our 95% half-width."""
    out: dict[str, dict[str, Any]] = {}
    for key, stat in summary.items():
        values = np.asarray([rep[key] for rep in repeats], dtype=np.float64)
        std = values.std(axis=0)
        out[key] = {
            "mean": stat["mean"],
            "std": std.tolist() if values.ndim > 1 else float(std),
            "conf": stat["conf"],
        }
    return out


def summarize(
    repeats: list[dict[str, Any]],
    *,
    split: HumanML3DTestSplit,
    entries: Sequence[TestEntry],
    predictions: Mapping[str, Any] | None,
    missing: list[str],
    mm_note: str | None,
    n_repeats: int,
) -> dict[str, Any]:
    """The report without its ``config``: the mean, std and 95% half-width of every metric over
    the passes, and what was scored and left out."""
    summary = with_std(metrics.summarize_repeats(repeats), repeats)
    result: dict[str, Any] = {
        "evaluator": EVALUATOR_NAME,
        "mode": "gt-only" if predictions is None else "pred",
        "n_repeats": n_repeats,
        "n_samples": len(entries),
        "n_entries": len(split.entries),
        "n_evaluated": len(entries),
        "n_samples_used": repeats[0]["n_samples"],
    }
    for name in ("fid", "r_precision", "matching_score", "diversity", "multimodality"):
        result[name] = summary.get(name)
    for name in ("r_precision_real", "matching_score_real", "diversity_real"):
        result[name] = summary[name]
    if mm_note:
        result["multimodality_note"] = mm_note
    result["skipped_no_pred"] = len(missing)
    known = {e.key for e in split.entries}
    result["unmatched_predictions"] = (
        0 if predictions is None else sum(1 for k in predictions if k not in known)
    )
    result["skipped"] = {"no_prediction": missing, "dataset": dict(split.skipped)}
    result["repeats"] = repeats
    return result


def report_config(
    evaluator: HML263Encoders, source: str | None, split: HumanML3DTestSplit, **extra: Any
) -> dict[str, Any]:
    """The report's ``config``: the evaluator, the dataset, the protocol, the versions, and
    the settings given in ``extra``."""
    import scipy
    import torch

    from hftrainer_mogents._version import __version__

    return {
        "evaluator": ZOO_EVALUATOR_NAME,
        "ckpt_dir": source,
        "gt_root": str(split.root),
        "texts_dir": str(split.texts_dir or split.root / "texts"),
        "caption_protocol_note": CAPTION_PROTOCOL_NOTE,
        "evaluator_dir": source,
        "dataset_root": str(split.root),
        "split_file": str(split.split_file),
        "unit_length": evaluator.config.unit_length,
        "embedding_dim": evaluator.config.dim_coemb_hidden,
        "device": str(evaluator.device),
        "dtype": str(evaluator.dtype).replace("torch.", ""),
        "protocol": PROTOCOL_NOTE,
        "versions": {
            "hftrainer_mogents": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "python": platform.python_version(),
        },
        **extra,
    }
