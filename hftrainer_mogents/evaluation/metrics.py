"""Text-to-motion metrics on embeddings, shared by every evaluator of the package.

The definitions are those of Guo et al. (2022) as the HumanML3D evaluation code computes them
(FID, R-precision top-k within batches of 32, matching score a.k.a. MM-Dist, diversity,
multimodality) and the replication protocol (repeat, report the mean and the 95% confidence
interval ``1.96 * std / sqrt(n)``). Everything is numpy/scipy, vectorised over batches, and generic
over the embedding width ``D``; nothing here imports torch.

Shape symbols: ``N`` samples, ``D`` embedding width, ``B`` batches, ``n`` samples per batch,
``K`` top-k, ``R`` generations per text (multimodality).

Numerics follow the reference code: distance matrices in the inputs' dtype (float32 for the
evaluators) with the expanded formula ``sqrt(|a|^2 + |b|^2 - 2 a.b)``, activation means in the
inputs' dtype and covariances in float64 (``np.cov``, ddof=1). The trace of the matrix square root
in FID is computed from a symmetric eigendecomposition by default (same value as the reference's
``scipy.linalg.sqrtm`` to rounding, much faster; ``method="sqrtm"`` gives the reference
computation). Two deliberate differences, neither of which changes a well-defined result: a slightly negative squared distance (rounding) is clamped to 0
instead of giving NaN, and exact distance ties in R-precision are broken by index, as a stable sort
would (the reference's quicksort leaves that order unspecified).

Randomness comes only from the ``numpy.random.Generator`` passed in; recorded draws can be replayed
through the ``indices`` arguments.

Examples:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> text = rng.normal(size=(64, 8)).astype(np.float32)
    >>> scores = retrieval_scores(text, text + 0.01, batch_size=32)
    >>> scores.r_precision.tolist()
    [1.0, 1.0, 1.0]
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hftrainer_mogents.errors import InvalidInputError

__all__ = [
    "BATCH_SIZE",
    "TOP_K",
    "N_REPEATS",
    "MM_TIMES",
    "CI_Z",
    "RetrievalScores",
    "euclidean_distance_matrix",
    "top_k_hits",
    "retrieval_counts",
    "retrieval_scores",
    "activation_statistics",
    "frechet_distance",
    "fid",
    "default_diversity_times",
    "draw_pairs",
    "diversity",
    "multimodality",
    "confidence_interval",
    "summarize_repeats",
    "embedding_metrics",
    "replicate",
    "replicate_embeddings",
]

logger = logging.getLogger(__name__)

BATCH_SIZE = 32  # R-precision is ranked among the samples of one batch
TOP_K = 3
N_REPEATS = 20
MM_TIMES = 10  # pairs of generations per text in multimodality
CI_Z = 1.96  # 95% confidence interval of the mean under a normal approximation


def _as_2d(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise InvalidInputError(f"{name} must be a 2-D (N, D) array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr).reshape(arr.shape[0], -1).all(axis=1)).sum())
        raise InvalidInputError(
            f"{name} has {bad} row(s) with NaN or inf values; check the motions or captions that "
            "produced them (a generated motion with NaN, an empty caption)"
        )


def euclidean_distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances ``sqrt(|a_i|^2 + |b_j|^2 - 2 a_i.b_j)``, in the inputs' dtype.

    Args:
        a: ``(..., N, D)`` embeddings.
        b: ``(..., M, D)`` embeddings (same leading dims as ``a``).

    Returns:
        ``(..., N, M)`` distances (negative rounding residues clamped to 0).
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-1] or a.shape[:-2] != b.shape[:-2]:
        raise InvalidInputError(
            f"distance matrix needs (..., N, D) and (..., M, D) arrays, got {a.shape} and {b.shape}"
        )
    # (..., N, D) @ (..., D, M) -> (..., N, M); same evaluation order as the reference code
    inner = np.matmul(a, np.swapaxes(b, -1, -2))
    sq_a = np.sum(np.square(a), axis=-1)[..., :, None]  # (..., N, 1)
    sq_b = np.sum(np.square(b), axis=-1)[..., None, :]  # (..., 1, M)
    return np.sqrt(np.maximum(-2 * inner + sq_a + sq_b, 0))


def top_k_hits(dist: np.ndarray, top_k: int = TOP_K) -> np.ndarray:
    """Whether the matching column ``i`` is among the ``k`` nearest columns of row ``i``.

    Rows are texts and columns motions of one batch; the match of row ``i`` is column ``i``. The
    rank of the match is the number of columns strictly closer, plus the tied columns of smaller
    index (a stable sort's order).

    Args:
        dist: ``(..., n, n)`` distances.
        top_k: ``K``.

    Returns:
        ``(..., n, K)`` bool, column ``k-1`` = hit within the top ``k`` (cumulative in ``k``).
    """
    dist = np.asarray(dist)
    n = dist.shape[-1]
    if dist.ndim < 2 or dist.shape[-2] != n:
        raise InvalidInputError(f"top_k_hits needs square (..., n, n) distances, got {dist.shape}")
    own = np.diagonal(dist, axis1=-2, axis2=-1)[..., :, None]  # (..., n, 1)
    earlier = np.arange(n)[None, :] < np.arange(n)[:, None]  # (n, n): column j before row i
    rank = (dist < own).sum(-1) + ((dist == own) & earlier).sum(-1)  # (..., n)
    return rank[..., None] < np.arange(1, top_k + 1)  # (..., n, K)


def retrieval_counts(
    text_emb: np.ndarray, motion_emb: np.ndarray, top_k: int = TOP_K
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k hit counts and distance traces of batches (the reference's per-batch quantities).

    Args:
        text_emb: ``(B, n, D)`` text embeddings of ``B`` batches.
        motion_emb: ``(B, n, D)`` motion embeddings, row ``i`` paired with text row ``i``.
        top_k: ``K``.

    Returns:
        ``counts`` ``(B, K)`` int64, the number of texts of each batch whose motion ranks within
        the top ``k``; ``traces`` ``(B,)`` float, the sum of the matched distances of each batch.
    """
    dist = euclidean_distance_matrix(text_emb, motion_emb)  # (B, n, n)
    counts = top_k_hits(dist, top_k).sum(axis=-2).astype(np.int64)  # (B, K)
    traces = np.trace(dist, axis1=-2, axis2=-1)  # (B,)
    return counts, traces


@dataclass
class RetrievalScores:
    """R-precision and matching score over consecutive batches.

    Attributes:
        r_precision: ``(K,)`` fraction of texts whose motion is within the top ``k`` of its batch.
        matching_score: mean distance between a text and its motion (MM-Dist).
        counts: ``(K,)`` hit counts summed over batches.
        matching_sum: sum of the matched distances.
        n_samples: samples used (whole batches only).
    """

    r_precision: np.ndarray
    matching_score: float
    counts: np.ndarray
    matching_sum: float
    n_samples: int


def _n_used(n: int, batch_size: int, what: str) -> int:
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    used = (n // batch_size) * batch_size
    if used == 0:
        raise InvalidInputError(
            f"{what}: {n} samples do not fill one batch of {batch_size}; evaluate more samples "
            "or lower batch_size"
        )
    return used


def retrieval_scores(
    text_emb: np.ndarray,
    motion_emb: np.ndarray,
    *,
    batch_size: int = BATCH_SIZE,
    top_k: int = TOP_K,
) -> RetrievalScores:
    """R-precision top-1..K and matching score, ranking within consecutive batches.

    The last partial batch is dropped, as the reference loader does (``drop_last=True``).

    Args:
        text_emb: ``(N, D)`` text embeddings.
        motion_emb: ``(N, D)`` motion embeddings, row ``i`` paired with text row ``i``.
        batch_size: ``n``, samples ranked together.
        top_k: ``K``.

    Returns:
        :class:`RetrievalScores` over the first ``(N // n) * n`` samples.
    """
    text = _as_2d(text_emb, "text_emb")
    motion = _as_2d(motion_emb, "motion_emb")
    if text.shape != motion.shape:
        raise InvalidInputError(
            f"text_emb {text.shape} and motion_emb {motion.shape} must have the same shape"
        )
    used = _n_used(len(text), batch_size, "R-precision")
    d = text.shape[1]
    # (N, D) -> (B, n, D)
    counts, traces = retrieval_counts(
        text[:used].reshape(-1, batch_size, d), motion[:used].reshape(-1, batch_size, d), top_k
    )
    total = counts.sum(axis=0)
    matching_sum = float(np.sum(traces, dtype=np.float64))
    return RetrievalScores(
        r_precision=total / used,
        matching_score=matching_sum / used,
        counts=total,
        matching_sum=matching_sum,
        n_samples=used,
    )


def activation_statistics(activations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of embeddings.

    Args:
        activations: ``(N, D)``.

    Returns:
        ``mu`` ``(D,)`` in the input dtype and ``sigma`` ``(D, D)`` float64 (ddof=1).
    """
    act = _as_2d(activations, "activations")
    if len(act) < 2:
        raise InvalidInputError(f"a covariance needs at least 2 samples, got {len(act)}")
    return np.mean(act, axis=0), np.cov(act, rowvar=False)


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, eps: float, method: str) -> float:
    """``tr(sqrtm(sigma1 @ sigma2))``."""
    import scipy.linalg

    if method == "eigh":
        # sigma1 @ sigma2 is similar to the PSD matrix S1^1/2 sigma2 S1^1/2: same eigenvalues
        w, v = np.linalg.eigh(sigma1)
        root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # (D, D)
        ev = np.linalg.eigvalsh(root @ sigma2 @ root)
        return float(np.sqrt(np.clip(ev, 0, None)).sum())
    if method != "sqrtm":
        raise InvalidInputError(f"unknown FID method {method!r}; use 'sqrtm' or 'eigh'")
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        logger.warning("FID: singular product of covariances; adding %g to their diagonals", eps)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            worst = float(np.max(np.abs(covmean.imag)))
            raise InvalidInputError(
                f"FID: the matrix square root has an imaginary component of {worst:.3g}; the "
                "covariances are degenerate (too few samples for the embedding width?)"
            )
        covmean = covmean.real
    return float(np.trace(covmean))


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    *,
    eps: float = 1e-6,
    method: str = "eigh",
) -> float:
    """Fréchet distance between two Gaussians,
    ``|mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr(sqrtm(sigma1 sigma2))``.

    Args:
        mu1: ``(D,)`` mean of the first (reference) set.
        sigma1: ``(D, D)`` its covariance.
        mu2: ``(D,)`` mean of the second set.
        sigma2: ``(D, D)`` its covariance.
        eps: diagonal offset tried when the product is singular (as the reference does).
        method: ``"eigh"`` (default): ``tr(sqrtm(S1 S2))`` as the sum of the square roots of the
            eigenvalues of the symmetric PSD ``S1^1/2 S2 S1^1/2``, which has the same
            eigenvalues as ``S1 S2``; or ``"sqrtm"``: scipy's general matrix square root, the
            reference code's computation. They agree to rounding (1e-12 relative at D=512);
            ``eigh`` is 5-20x faster at D=512 and never goes complex.

    Returns:
        The distance (float).
    """
    mu1 = np.atleast_1d(mu1)
    mu2 = np.atleast_1d(mu2)
    sigma1 = np.atleast_2d(sigma1)
    sigma2 = np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise InvalidInputError(
            f"FID statistics disagree: mu {mu1.shape} vs {mu2.shape}, "
            f"sigma {sigma1.shape} vs {sigma2.shape}"
        )
    diff = mu1 - mu2
    tr_covmean = _trace_sqrt_product(sigma1, sigma2, eps, method)
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def fid(real_emb: np.ndarray, pred_emb: np.ndarray, *, method: str = "eigh") -> float:
    """FID between two embedding sets.

    Args:
        real_emb: ``(N1, D)`` reference embeddings.
        pred_emb: ``(N2, D)`` embeddings to score.
        method: see :func:`frechet_distance`.

    Returns:
        The distance (0 for identical sets, up to rounding).
    """
    mu1, sigma1 = activation_statistics(real_emb)
    mu2, sigma2 = activation_statistics(pred_emb)
    return frechet_distance(mu1, sigma1, mu2, sigma2, method=method)


def default_diversity_times(n_samples: int) -> int:
    """The reference's number of diversity pairs: 300 above 300 samples, else 100."""
    return 300 if n_samples > 300 else 100


def draw_pairs(rng: np.random.Generator, n: int, times: int) -> tuple[np.ndarray, np.ndarray]:
    """Two independent draws of ``times`` distinct indices in ``[0, n)``.

    Args:
        rng: the generator to draw from.
        n: population size.
        times: indices per draw.

    Returns:
        ``first``, ``second``: ``(times,)`` int64 each (position ``k`` pairs ``first[k]`` with
        ``second[k]``; the two may coincide, which contributes a distance of 0, as in the
        reference).
    """
    if not 0 < times <= n:
        raise InvalidInputError(
            f"cannot draw {times} distinct indices out of {n}; lower the number of pairs "
            f"(diversity_times / mm_times) or evaluate more samples"
        )
    return rng.choice(n, times, replace=False), rng.choice(n, times, replace=False)


def diversity(
    activations: np.ndarray,
    times: int,
    *,
    rng: np.random.Generator | None = None,
    indices: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """Mean distance between ``times`` random pairs of embeddings.

    Args:
        activations: ``(N, D)`` embeddings.
        times: number of pairs (the reference: :func:`default_diversity_times`).
        rng: draws the pairs (:func:`draw_pairs`); required unless ``indices`` is given.
        indices: recorded ``(first, second)`` index arrays ``(times,)`` to replay.

    Returns:
        The diversity (float).
    """
    act = _as_2d(activations, "activations")
    if indices is None:
        if rng is None:
            raise InvalidInputError("diversity needs rng= or indices=")
        indices = draw_pairs(rng, len(act), times)
    first, second = (np.asarray(i) for i in indices)
    return float(np.linalg.norm(act[first] - act[second], axis=1).mean())


def multimodality(
    activations: np.ndarray,
    times: int = MM_TIMES,
    *,
    rng: np.random.Generator | None = None,
    indices: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """Mean distance between pairs of generations for the same text.

    The same ``times`` pairs of generation indices are used for every text, as in the reference.

    Args:
        activations: ``(T, R, D)`` embeddings of ``R`` generations for each of ``T`` texts.
        times: number of pairs.
        rng: draws the pairs; required unless ``indices`` is given.
        indices: recorded ``(first, second)`` index arrays ``(times,)`` into ``R``.

    Returns:
        The multimodality (float).
    """
    act = np.asarray(activations)
    if act.ndim != 3:
        raise InvalidInputError(
            f"multimodality needs (texts, generations, D) embeddings, got shape {act.shape}"
        )
    if indices is None:
        if rng is None:
            raise InvalidInputError("multimodality needs rng= or indices=")
        indices = draw_pairs(rng, act.shape[1], times)
    first, second = (np.asarray(i) for i in indices)
    return float(np.linalg.norm(act[:, first] - act[:, second], axis=2).mean())


def confidence_interval(values: Sequence[Any] | np.ndarray) -> tuple[Any, Any]:
    """Mean and 95% confidence half-width ``1.96 * std(ddof=0) / sqrt(n)`` over repeats.

    Args:
        values: ``(n_repeats,)`` scalars or ``(n_repeats, K)`` vectors.

    Returns:
        ``(mean, conf)``: floats, or lists of ``K`` floats for vector values.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0 or len(arr) == 0:
        raise InvalidInputError("confidence_interval needs at least one repeat")
    mean = arr.mean(axis=0)
    conf = arr.std(axis=0) * CI_Z / math.sqrt(len(arr))
    if arr.ndim == 1:
        return float(mean), float(conf)
    return mean.tolist(), conf.tolist()


def summarize_repeats(repeats: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean and confidence interval of every numeric metric over repeats.

    Args:
        repeats: one dict per repeat (e.g. :func:`embedding_metrics` outputs). Keys whose value is
            ``None`` or not numeric in some repeat are left out.

    Returns:
        ``{metric: {"mean": ..., "conf": ...}}`` (lists for vector metrics).
    """
    if not repeats:
        raise InvalidInputError("summarize_repeats needs at least one repeat")
    summary: dict[str, dict[str, Any]] = {}
    for key in repeats[0]:
        values = [rep.get(key) for rep in repeats]
        if any(v is None or isinstance(v, (str, bool, dict)) for v in values):
            continue
        try:
            mean, conf = confidence_interval(values)
        except (TypeError, ValueError):
            continue
        summary[key] = {"mean": mean, "conf": conf}
    return summary


def embedding_metrics(
    text_emb: np.ndarray,
    real_emb: np.ndarray,
    pred_emb: np.ndarray | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    top_k: int = TOP_K,
    diversity_times: int | None = None,
    rng: np.random.Generator | None = None,
    diversity_indices: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    mm_activations: np.ndarray | None = None,
    mm_times: int = MM_TIMES,
    mm_indices: tuple[np.ndarray, np.ndarray] | None = None,
    fid_method: str = "eigh",
) -> dict[str, Any]:
    """All metrics of one evaluation pass, samples taken in the given order.

    Samples are cut into consecutive batches of ``batch_size`` (the last partial batch dropped);
    every metric uses the same whole batches. Random pairs are drawn from ``rng`` in the
    reference's order: diversity of the real motions, then of the generated ones, then the
    multimodality pairs.

    Args:
        text_emb: ``(N, D)`` text embeddings.
        real_emb: ``(N, D)`` embeddings of the real (ground-truth) motions.
        pred_emb: ``(N, D)`` embeddings of the generated motions, or ``None`` for real-data
            values only.
        batch_size: samples ranked together in R-precision.
        top_k: ``K``.
        diversity_times: pairs for diversity (default :func:`default_diversity_times`).
        rng: random pairs; required unless every ``*_indices`` argument needed is given.
        diversity_indices: recorded pairs, ``{"real": (first, second), "pred": (first, second)}``.
        mm_activations: ``(T, R, D)`` generations per text for multimodality, or ``None``.
        mm_times: pairs for multimodality.
        mm_indices: recorded multimodality pairs.
        fid_method: see :func:`frechet_distance`.

    Returns:
        A JSON-ready dict: ``n_samples``, ``r_precision_real`` (list of ``K``),
        ``matching_score_real``, ``diversity_real``; with ``pred_emb`` also ``fid``,
        ``r_precision``, ``matching_score``, ``diversity``; with ``mm_activations`` also
        ``multimodality``.
    """
    text = _as_2d(text_emb, "text_emb")
    real = _as_2d(real_emb, "real_emb")
    if real.shape != text.shape:
        raise InvalidInputError(f"real_emb {real.shape} must have text_emb's shape {text.shape}")
    _check_finite(text, "text_emb")
    _check_finite(real, "real_emb")
    used = _n_used(len(text), batch_size, "embedding_metrics")
    times = default_diversity_times(used) if diversity_times is None else diversity_times
    div_idx = dict(diversity_indices or {})

    real_scores = retrieval_scores(text[:used], real[:used], batch_size=batch_size, top_k=top_k)
    out: dict[str, Any] = {
        "n_samples": used,
        "r_precision_real": real_scores.r_precision.tolist(),
        "matching_score_real": real_scores.matching_score,
        "diversity_real": diversity(real[:used], times, rng=rng, indices=div_idx.get("real")),
    }
    if pred_emb is not None:
        pred = _as_2d(pred_emb, "pred_emb")
        if pred.shape != text.shape:
            raise InvalidInputError(
                f"pred_emb {pred.shape} must have text_emb's shape {text.shape}"
            )
        _check_finite(pred, "pred_emb")
        pred_scores = retrieval_scores(text[:used], pred[:used], batch_size=batch_size, top_k=top_k)
        out["fid"] = fid(real[:used], pred[:used], method=fid_method)
        out["r_precision"] = pred_scores.r_precision.tolist()
        out["matching_score"] = pred_scores.matching_score
        out["diversity"] = diversity(pred[:used], times, rng=rng, indices=div_idx.get("pred"))
    if mm_activations is not None:
        out["multimodality"] = multimodality(mm_activations, mm_times, rng=rng, indices=mm_indices)
    return out


def replicate(
    repeat_fn: Callable[[int, np.random.Generator], Mapping[str, Any]],
    *,
    n_repeats: int = N_REPEATS,
    seed: int = 0,
) -> dict[str, Any]:
    """Run ``repeat_fn`` ``n_repeats`` times and summarise (the replication protocol).

    Repeat ``r`` gets its own generator ``np.random.default_rng([seed, r])``, so a repeat's draws do
    not depend on how many repeats ran before it.

    Args:
        repeat_fn: ``(r, rng) -> metrics dict`` of one repeat.
        n_repeats: number of repeats (20 in the reference protocol).
        seed: base seed.

    Returns:
        ``{"n_repeats", "seed", "repeats": [dict per repeat], "summary": {metric: {"mean",
        "conf"}}}``.
    """
    if n_repeats < 1:
        raise InvalidInputError(f"n_repeats must be >= 1, got {n_repeats}")
    repeats = [dict(repeat_fn(r, np.random.default_rng([seed, r]))) for r in range(n_repeats)]
    return {
        "n_repeats": n_repeats,
        "seed": seed,
        "repeats": repeats,
        "summary": summarize_repeats(repeats),
    }


def replicate_embeddings(
    text_emb: np.ndarray,
    real_emb: np.ndarray,
    pred_emb: np.ndarray | None = None,
    *,
    n_repeats: int = N_REPEATS,
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
    top_k: int = TOP_K,
    diversity_times: int | None = None,
    mm_activations: np.ndarray | None = None,
    mm_times: int = MM_TIMES,
    fid_method: str = "eigh",
) -> dict[str, Any]:
    """The replication protocol on fixed embeddings: each repeat shuffles the samples (so the
    batches of R-precision change), then computes :func:`embedding_metrics`.

    Use it when the embeddings do not change between repeats (one caption and one crop per
    sample); evaluators that redraw captions and crops per repeat call :func:`replicate` with their
    own ``repeat_fn``.

    Args:
        text_emb: ``(N, D)``.
        real_emb: ``(N, D)``.
        pred_emb: ``(N, D)`` or ``None``.
        n_repeats: repeats.
        seed: base seed (see :func:`replicate`).
        batch_size: R-precision batch size.
        top_k: ``K``.
        diversity_times: pairs for diversity (default :func:`default_diversity_times`).
        mm_activations: ``(T, R, D)`` or ``None``.
        mm_times: pairs for multimodality.
        fid_method: see :func:`frechet_distance`.

    Returns:
        See :func:`replicate`.
    """
    text = _as_2d(text_emb, "text_emb")
    real = _as_2d(real_emb, "real_emb")
    pred = None if pred_emb is None else _as_2d(pred_emb, "pred_emb")

    def one_repeat(_: int, rng: np.random.Generator) -> dict[str, Any]:
        order = rng.permutation(len(text))
        return embedding_metrics(
            text[order],
            real[order],
            None if pred is None else pred[order],
            batch_size=batch_size,
            top_k=top_k,
            diversity_times=diversity_times,
            rng=rng,
            mm_activations=mm_activations,
            mm_times=mm_times,
            fid_method=fid_method,
        )

    return replicate(one_repeat, n_repeats=n_repeats, seed=seed)
