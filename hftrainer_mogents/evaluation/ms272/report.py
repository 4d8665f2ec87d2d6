"""The MotionStreamer-272 report: ``verify_ms272.json`` (the evaluator's dict and the reference
numbers) and ``verify_ms272.md`` (ours, mean ± 95% CI, beside them).

The JSON holds the zoo's keys (``n_samples_used``, ``n_repeats``, ``fid``, ``fid_std``,
``diversity_real``/``_pred``, ``r_precision_real``/``_pred`` and their ``_std``,
``matching_score_real``/``_pred``, ``skipped_no_pred``, ``config{evaluator: "motionstreamer_272",
evaluator_ckpt, data_root, pred_dir, gt_only, batch_size}``) with ours beside them (``summary``
with the 95% half-widths, ``repeats``, ...). A real-data-only run fills the generated-motion keys
as the zoo does (its "generation" is the real data: FID 0, the ``_pred`` values the ``_real``
ones).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hftrainer_mogents.evaluation.ms272.evaluator import REFERENCE
from hftrainer_mogents.evaluation.report import T2M_ROWS, render_markdown

__all__ = ["MS272_ROWS", "REPORT_NAME", "ZOO_KEYS", "write_ms272_report", "zoo_view"]

# the top-level keys of the zoo's verify_ms272.json
ZOO_KEYS = (
    "n_samples_used",
    "n_repeats",
    "fid",
    "fid_std",
    "diversity_real",
    "diversity_pred",
    "r_precision_real",
    "r_precision_real_std",
    "r_precision_pred",
    "r_precision_pred_std",
    "matching_score_real",
    "matching_score_pred",
    "skipped_no_pred",
    "config",
)


def zoo_view(result: Mapping[str, Any]) -> dict[str, Any]:
    """The result as ``verify_ms272.json`` holds it (real-data-only runs filled as the zoo's)."""
    out = dict(result)
    if out.get("subset_note"):
        out["comparable_to_published"] = False
    if "fid" not in out:
        out["fid"], out["fid_std"] = 0.0, 0.0
        for name in ("r_precision", "matching_score", "diversity"):
            for tail in ("", "_std"):
                if f"{name}_real{tail}" in out:
                    out[f"{name}_pred{tail}"] = out[f"{name}_real{tail}"]
        out["gt_only_note"] = (
            "real data only: the generated-motion keys are the real data's (FID 0), as the zoo "
            "writes them"
        )
    return out


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
        out / f"{name}.json", {**zoo_view(result), "reference": dict(reference)}, sort_keys=False
    )
    md = render_markdown(
        result.get("summary", {}),
        MS272_ROWS,
        reference=reference,
        title="MotionStreamer-272 (HumanML3D-272 test set, TMR-style evaluator)",
        notes=notes,
        warnings=[result["subset_note"]] if result.get("subset_note") else [],
    )
    md_path = atomic_write_text(out / f"{name}.md", md)
    return json_path, md_path
