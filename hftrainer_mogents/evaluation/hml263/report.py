"""The HumanML3D-263 report: ``verify_hml263.json`` and ``verify_hml263.md`` with the published
MoGenTS numbers beside ours."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hftrainer_mogents.evaluation.hml263.evaluator import PUBLISHED
from hftrainer_mogents.evaluation.report import T2M_ROWS, ReportRow, write_report

__all__ = ["HML263_ROWS", "REPORT_NAME", "write_hml263_report"]

REPORT_NAME = "verify_hml263"
HML263_ROWS = (
    *T2M_ROWS,
    ReportRow("MultiModality", "multimodality", better="higher"),
)


def write_hml263_report(
    result: Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    *,
    name: str = REPORT_NAME,
    reference: Mapping[str, Any] = PUBLISHED,
) -> tuple[Path, Path]:
    """Write the JSON and markdown reports of a :meth:`HumanML263Evaluator.evaluate` result.

    Returns:
        ``(json_path, md_path)``.
    """
    config = result.get("config", {})
    skipped = result.get("skipped", {})
    notes = [
        f"mode {result.get('mode')}, {result.get('n_repeats')} repeats, seed {config.get('seed')}, "
        f"{result.get('n_samples_used')} samples per repeat out of {result.get('n_evaluated')} "
        f"evaluated ({result.get('n_entries')} test entries)",
        f"missing predictions: {result.get('skipped_no_pred', 0)}; entries left out of the "
        f"dataset: {len(skipped.get('dataset', {}))}",
        f"published: {reference.get('source')}, n={reference.get('n_samples')}",
        f"multimodality: {result.get('multimodality_note') or 'computed'}",
        f"evaluator {config.get('evaluator_dir')}, dataset {config.get('dataset_root')}, "
        f"predictions {config.get('pred_dir')}",
    ]
    return write_report(
        result,
        out_dir,
        name=name,
        rows=HML263_ROWS,
        reference=reference,
        title="HumanML3D-263 test set (Guo et al. evaluator)",
        notes=notes,
    )
