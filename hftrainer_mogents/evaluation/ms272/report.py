"""The MotionStreamer-272 report: ``verify_ms272.json`` (the evaluator's dict and the reference
numbers) and ``verify_ms272.md`` (ours, mean ± 95% CI, beside them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hftrainer_mogents.evaluation.ms272.evaluator import REFERENCE
from hftrainer_mogents.evaluation.report import T2M_ROWS, render_markdown

__all__ = ["MS272_ROWS", "REPORT_NAME", "write_ms272_report"]

REPORT_NAME = "verify_ms272"
MS272_ROWS = T2M_ROWS


def write_ms272_report(
    result: Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    *,
    name: str = REPORT_NAME,
    reference: Mapping[str, Any] = REFERENCE,
) -> tuple[Path, Path]:
    """Write the reports of a :meth:`MotionStreamer272Evaluator.evaluate_dir` result.

    Returns:
        ``(json_path, md_path)``.
    """
    from hftrainer_mogents.utils.io import atomic_write_json, atomic_write_text

    config = result.get("config", {})
    notes = [
        f"{result.get('n_repeats')} repeats, seed {result.get('seed')}, "
        f"{result.get('n_samples_used')} samples per repeat out of {result.get('n_evaluated')} "
        f"({result.get('n_entries')} test entries, pairs per {config.get('pairs')}, caption "
        f"{config.get('caption_selection')})",
        f"missing predictions: {result.get('skipped_no_pred', 0)}; shorter than 60 frames: "
        f"{result.get('skipped_short_pred', 0)}",
        f"reference: {reference.get('source')}",
        f"evaluator {config.get('evaluator_dir')}, dataset {config.get('data_root')}, "
        f"predictions {config.get('pred_dir')}",
    ]
    out = Path(out_dir)
    json_path = atomic_write_json(
        out / f"{name}.json", {**result, "reference": dict(reference)}, sort_keys=False
    )
    md = render_markdown(
        result.get("summary", {}),
        MS272_ROWS,
        reference=reference,
        title="MotionStreamer-272 (HumanML3D-272 test set, TMR-style evaluator)",
        notes=notes,
    )
    md_path = atomic_write_text(out / f"{name}.md", md)
    return json_path, md_path
