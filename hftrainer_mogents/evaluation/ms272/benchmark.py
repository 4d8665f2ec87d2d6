"""The MotionStreamer-272 benchmark as one call: evaluate a folder of 272 predictions (e.g. the
output of ``mogents bridge``) and write ``verify_ms272.json`` and ``.md``.

Every front-end runs it: ``mogents evaluate ms272`` and ``scripts/verify_evaluators.py --which
ms272`` (stage C of the bridge chain script).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from hftrainer_mogents.errors import ArtifactNotFoundError, InvalidInputError
from hftrainer_mogents.evaluation.base import (
    check_coverage,
    check_scoring_options,
    collect_predictions,
)
from hftrainer_mogents.evaluation.ms272.dataset import read_ms272_split

__all__ = ["run_benchmark"]


def run_benchmark(
    pred_dir: str | os.PathLike[str] | None,
    *,
    data_root: str | os.PathLike[str],
    evaluator_dir: str | os.PathLike[str],
    report_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
    gt_only: bool = False,
    split_file: str | os.PathLike[str] | None = None,
    caption_selection: Literal["first", "random"] | None = None,
    pairs: Literal["entry", "caption"] = "entry",
    strict: bool = False,
    allow_missing: bool = False,
    max_samples: int | None = None,
    n_repeats: int = 20,
    seed: int = 0,
    batch_size: int = 32,
    diversity_times: int | None = None,
) -> dict[str, Any]:
    """Score ``pred_dir`` with the converted evaluator and write ``verify_ms272.{json,md}`` into
    ``report_dir``.

    Args:
        pred_dir: the predictions (``<key>.npy``, ``(T, 272)`` raw at 30 fps); ``None`` with
            ``gt_only``.
        data_root: the ``humanml3d_272`` folder (``motion_data/``, ``texts/``, ``split/``,
            ``mean_std/``).
        evaluator_dir: the converted evaluator (``mogents convert-evaluator-ms272``).
        report_dir: folder of the reports (default: ``<pred_dir>/metrics``, or ``metrics``).
        device: torch device (default: CUDA when available).
        gt_only: score the real data only.
        split_file: an id list instead of ``split/test.txt``.
        caption_selection: ``"first"`` (default with predictions) or ``"random"`` (default with
            ``gt_only``).
        pairs: one sample per test entry, or one per caption line (the zoo's variant).
        strict: fail on a missing prediction (the default; kept for older callers).
        allow_missing: score the entries that have a prediction when some are missing (the
            report then says it is over a subset, not comparable to the reference numbers);
            without it a missing prediction fails before the evaluator loads.
        max_samples: first ids of the split only.
        n_repeats: evaluation passes.
        seed: seeds the passes.
        batch_size: R-precision batch size.
        diversity_times: diversity pairs.

    Returns:
        ``{"metrics": result, "reports": (json_path, md_path), "coverage": Coverage or None}``
        (``coverage`` names the missing and unmatched predictions; ``None`` with ``gt_only``).

    Raises:
        InvalidInputError: bad settings (``n_repeats`` or ``diversity_times`` below 1, ...).
        ArtifactNotFoundError: predictions missing without ``allow_missing``.
    """
    from hftrainer_mogents.evaluation.ms272.evaluator import MotionStreamer272Evaluator
    from hftrainer_mogents.evaluation.ms272.report import write_ms272_report

    check_scoring_options(n_repeats, diversity_times, strict=strict, allow_missing=allow_missing)
    if pred_dir is None and not gt_only:
        raise InvalidInputError("give a prediction folder (or score the real data only)")
    coverage = None
    if not gt_only:
        folder = Path(pred_dir)  # type: ignore[arg-type]  # checked above
        if not folder.is_dir():
            raise ArtifactNotFoundError(f"prediction folder not found: {folder}")
        split = read_ms272_split(data_root, split_file=split_file, max_samples=max_samples)
        coverage = check_coverage(
            [e.key for e in split.entries],
            collect_predictions(folder),
            pred_dir=folder,
            allow_missing=allow_missing,
        )
    evaluator = MotionStreamer272Evaluator.from_pretrained(evaluator_dir, device=device)
    result = evaluator.evaluate_dir(
        None if gt_only else pred_dir,
        data_root=data_root,
        split_file=split_file,
        gt_only=gt_only,
        caption_selection=caption_selection,
        pairs=pairs,
        strict=False,  # checked above, with the CLI's words
        max_samples=max_samples,
        n_repeats=n_repeats,
        seed=seed,
        batch_size=batch_size,
        diversity_times=diversity_times,
    )
    if report_dir is None:
        report_dir = Path(pred_dir) / "metrics" if pred_dir is not None else Path("metrics")
    note = None if coverage is None else coverage.subset_note()
    if note is not None:
        result["subset_note"] = note
    reports = write_ms272_report(result, report_dir)
    return {"metrics": result, "reports": reports, "coverage": coverage}
