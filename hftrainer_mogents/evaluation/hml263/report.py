"""The HumanML3D-263 report: ``verify_hml263.json`` and ``verify_hml263.md`` with the published
MoGenTS numbers beside ours.

The JSON holds the zoo's keys (``mode``, ``n_repeats``, ``n_samples``, ``{"mean", "std"}`` per
metric, ``r_precision{"mean": [3], "std": [3]}``, ``config{evaluator: "humanml3d_263", ckpt_dir,
gt_root, texts_dir, pred_dir, split_file, caption_selection, caption_protocol_note}``) with ours
beside them (``conf``, the 95% half-width, in every metric; ``n_samples_used``, ``repeats``,
``skipped``, ...). A real-data-only run fills the generated-motion metrics as the zoo does: the
"generation" is the real data, so ``fid`` is ``{0, 0}`` and the others repeat the ``*_real``
values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hftrainer_mogents.evaluation.hml263.evaluator import PUBLISHED
from hftrainer_mogents.evaluation.report import T2M_ROWS, ReportRow, write_report

__all__ = ["HML263_ROWS", "REPORT_NAME", "ZOO_KEYS", "write_hml263_report", "zoo_view"]

# the top-level keys of the zoo's verify_hml263.json
ZOO_KEYS = (
    "mode",
    "n_repeats",
    "n_samples",
    "fid",
    "r_precision",
    "matching_score",
    "diversity",
    "r_precision_real",
    "matching_score_real",
    "diversity_real",
    "config",
)

REPORT_NAME = "verify_hml263"
HML263_ROWS = (
    *T2M_ROWS,
    ReportRow("MultiModality", "multimodality", better="higher"),
)


def zoo_view(result: Mapping[str, Any]) -> dict[str, Any]:
    """The result as ``verify_hml263.json`` holds it: a real-data-only run gets the zoo's
    generated-motion values (``fid`` ``{0, 0}``, the others equal to the real data's)."""
    out = dict(result)
    if out.get("subset_note"):
        out["comparable_to_published"] = False
    if out.get("mode") == "gt-only":
        out["fid"] = {"mean": 0.0, "std": 0.0, "conf": 0.0}
        for name in ("r_precision", "matching_score", "diversity"):
            if out.get(name) is None:
                out[name] = out.get(f"{name}_real")
        out["gt_only_note"] = (
            "real data only: the generated-motion metrics are the real data's (FID 0), as the "
            "zoo writes them"
        )
    return out


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
        json_result=zoo_view(result),
        warnings=[result["subset_note"]] if result.get("subset_note") else [],
    )
