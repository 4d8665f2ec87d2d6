"""Evaluation reports: the metrics JSON and a short markdown table that puts our numbers next to
published ones. Generic over evaluators: each passes its rows and reference numbers."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ReportRow", "T2M_ROWS", "format_stat", "render_markdown", "write_report"]


@dataclass(frozen=True)
class ReportRow:
    """One line of the markdown table.

    Attributes:
        label: metric name shown, e.g. ``"R@1"``.
        key: key of the result (a ``{"mean", "std", "conf"}`` dict or a number).
        index: element of a vector metric (``r_precision``), or ``None``.
        real_key: key of the real-data counterpart, or ``None``.
        better: ``"lower"``, ``"higher"`` or ``"closer to real"``.
    """

    label: str
    key: str
    index: int | None = None
    real_key: str | None = None
    better: str = ""


# the text-to-motion metrics every evaluator reports, each beside its real-data value
T2M_ROWS = (
    ReportRow("FID", "fid", better="lower"),
    ReportRow("R@1", "r_precision", 0, "r_precision_real", "higher"),
    ReportRow("R@2", "r_precision", 1, "r_precision_real", "higher"),
    ReportRow("R@3", "r_precision", 2, "r_precision_real", "higher"),
    ReportRow("MM-Dist", "matching_score", None, "matching_score_real", "lower"),
    ReportRow("Diversity", "diversity", None, "diversity_real", "closer to real"),
)


def _pick(value: Any, index: int | None) -> Any:
    if index is None or value is None:
        return value
    return value[index]


def format_stat(stat: Any, index: int | None = None, digits: int = 4) -> str:
    """``"mean ± conf"`` of a ``{"mean", "conf"}`` dict, a plain number, or ``"-"``."""
    if stat is None:
        return "-"
    if isinstance(stat, Mapping):
        mean, conf = _pick(stat.get("mean"), index), _pick(stat.get("conf"), index)
        if mean is None:
            return "-"
        return (
            f"{mean:.{digits}f} ± {conf:.{digits}f}" if conf is not None else f"{mean:.{digits}f}"
        )
    value = _pick(stat, index)
    return "-" if value is None else f"{value:.{digits}f}"


def render_markdown(
    result: Mapping[str, Any],
    rows: Sequence[ReportRow],
    *,
    reference: Mapping[str, Any],
    title: str,
    notes: Sequence[str] = (),
    warnings: Sequence[str] = (),
) -> str:
    """The markdown report: a table of ours (mean ± 95% CI) beside the published numbers, for the
    generated motions and for the real data, then the run's settings; ``warnings`` (e.g. a
    score over a subset of the test items) come first, under the title."""
    lines = [f"# {title}", ""]
    for warning in warnings:
        lines += [f"> **WARNING: {warning}**", ""]
    lines += [
        "| Metric | Ours | Published | Real data (ours) | Real data (published) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        better = f" ({row.better})" if row.better else ""
        real_ref = reference.get(row.real_key) if row.real_key else None
        lines.append(
            f"| {row.label}{better} | {format_stat(result.get(row.key), row.index)} "
            f"| {format_stat(reference.get(row.key), row.index)} "
            f"| {format_stat(result.get(row.real_key), row.index) if row.real_key else '-'} "
            f"| {format_stat(real_ref, row.index)} |"
        )
    lines += ["", "Ours: mean ± 95% confidence half-width over the repeats."]
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def write_report(
    result: Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    rows: Sequence[ReportRow],
    reference: Mapping[str, Any],
    title: str,
    notes: Sequence[str] = (),
    json_result: Mapping[str, Any] | None = None,
    warnings: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.json`` (the result, with the reference beside it) and
    ``<out_dir>/<name>.md`` (see :func:`render_markdown`), atomically.

    Args:
        json_result: what the JSON holds when it differs from ``result`` (e.g. with the zoo's
            conventions filled in); default ``result``.
        warnings: shown first in the markdown (see :func:`render_markdown`).

    Returns:
        The two paths.
    """
    from hftrainer_mogents.utils.io import atomic_write_json, atomic_write_text

    out = Path(out_dir)
    body = result if json_result is None else json_result
    json_path = atomic_write_json(
        out / f"{name}.json", {**body, "reference": dict(reference)}, sort_keys=False
    )
    md_path = atomic_write_text(
        out / f"{name}.md",
        render_markdown(
            result, rows, reference=reference, title=title, notes=notes, warnings=warnings
        ),
    )
    return json_path, md_path
