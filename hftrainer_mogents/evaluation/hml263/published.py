"""MoGenTS' published HumanML3D-263 numbers: the reference of the benchmark and the "published"
column of the evaluator's report.

Plain data with no imports, so the plugin manifest (:mod:`hftrainer_mogents.zoo.plugin`) can name
them as its benchmark's reference without making discovery import anything heavy.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PUBLISHED_HML263"]

# MoGenTS on the HumanML3D test set (n=3970) and the real data, as published
PUBLISHED_HML263: dict[str, Any] = {
    "source": "MoGenTS (NeurIPS 2024), HumanML3D test set",
    "fid": 0.0806,
    "r_precision": (0.5219, 0.7128, 0.8056),
    "diversity": 9.4063,
    "matching_score": 2.9290,
    "n_samples": 3970,
    "r_precision_real": (0.5135, 0.7108, 0.8069),
}
