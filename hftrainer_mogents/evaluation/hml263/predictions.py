"""Predictions of the HumanML3D-263 protocol: checked motions by key, a prediction folder's
multimodality groups and generation manifest, and the old sub-clip names mapped to the zoo's."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hftrainer_mogents.config import DIM_POSE
from hftrainer_mogents.errors import ArtifactFormatError
from hftrainer_mogents.evaluation.hml263.dataset import HumanML3DTestSplit, legacy_subclip_aliases
from hftrainer_mogents.utils.io import is_temporary

__all__ = [
    "MANIFEST_FILE",
    "MM_DIR",
    "MM_SEPARATOR",
    "Predictions",
    "collect_mm",
    "read_caption_indices",
    "rename_legacy_keys",
]

logger = logging.getLogger(__name__)

MANIFEST_FILE = "generation.json"  # written by the test-split generation beside the predictions
MM_DIR = "mm"  # <pred_dir>/mm/<key>__r<k>.npy: repeated generations for multimodality
MM_SEPARATOR = "__r"


class Predictions:
    """Predicted motions by key, from arrays or ``.npy`` paths, checked before any compute.

    Args:
        items: motion (``(T, 263)`` array in physical units) or ``.npy`` path by key.
        unit_length: the shortest length accepted.

    Raises:
        ArtifactFormatError: a wrong shape or an unreadable file (named).
    """

    def __init__(self, items: Mapping[str, Any], unit_length: int):
        self.items = dict(items)
        self.lengths: dict[str, int] = {}
        for key, value in self.items.items():
            shape = self._shape(key, value)
            if len(shape) != 2 or shape[1] != DIM_POSE or shape[0] < unit_length:
                raise ArtifactFormatError(
                    f"prediction {self._name(key, value)}: shape {tuple(shape)}, expected "
                    f"(T, {DIM_POSE}) raw HumanML3D-263 features with T >= {unit_length}"
                )
            self.lengths[key] = int(shape[0])

    @staticmethod
    def _name(key: str, value: Any) -> str:
        return str(value) if isinstance(value, (str, os.PathLike)) else repr(key)

    def _shape(self, key: str, value: Any) -> tuple[int, ...]:
        if isinstance(value, (str, os.PathLike)):
            try:
                return np.load(value, mmap_mode="r", allow_pickle=False).shape
            except (ValueError, OSError) as err:
                raise ArtifactFormatError(f"prediction {value}: unreadable .npy ({err})") from err
        return np.shape(value)

    def load(self, key: str) -> np.ndarray:
        """The float32 motion of ``key``.

        Raises:
            ArtifactFormatError: it holds NaN or inf values.
        """
        value = self.items[key]
        if isinstance(value, (str, os.PathLike)):
            value = np.load(value, allow_pickle=False)
        motion = np.asarray(value, dtype=np.float32)
        if not np.isfinite(motion).all():
            raise ArtifactFormatError(
                f"prediction {self._name(key, self.items[key])} holds NaN or inf values"
            )
        return motion


def collect_mm(pred_dir: Path) -> dict[str, list[Path]]:
    """The repeated generations ``<pred_dir>/mm/<key>__r<k>.npy`` grouped by key."""
    groups: dict[str, list[Path]] = {}
    mm_dir = pred_dir / MM_DIR
    if not mm_dir.is_dir():
        return groups
    for path in sorted(mm_dir.glob(f"*{MM_SEPARATOR}*.npy")):
        if is_temporary(path):
            continue
        key = path.stem.rsplit(MM_SEPARATOR, 1)[0]
        groups.setdefault(key, []).append(path)
    return groups


def read_caption_indices(pred_dir: Path) -> dict[str, int] | None:
    """The caption each prediction was generated from, by key, from the folder's
    ``generation.json`` (``None`` without one).

    Raises:
        ArtifactFormatError: the manifest is unreadable.
    """
    manifest_path = pred_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        return {k: int(v["caption_index"]) for k, v in manifest.get("items", {}).items()}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise ArtifactFormatError(
            f"{manifest_path}: unreadable generation manifest ({err}); regenerate the "
            "folder or remove the file to score against the first captions"
        ) from err


def rename_legacy_keys(
    split: HumanML3DTestSplit,
    predictions: Mapping[str, Any],
    mm_predictions: Mapping[str, Any] | None,
    caption_indices: Mapping[str, int] | None,
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, int] | None]:
    """Map sub-clip names of folders written before the zoo's naming (``<id>__L<line>``) to
    ``<id>__sub<k>``, in the predictions, the multimodality groups and the caption indices."""
    aliases = legacy_subclip_aliases(split.entries)
    old = [k for k in predictions if k in aliases]
    if not old:
        return (
            dict(predictions),
            None if mm_predictions is None else dict(mm_predictions),
            (None if caption_indices is None else dict(caption_indices)),
        )
    logger.warning(
        "%d predictions use the old sub-clip names <id>__L<line>; scoring them as the zoo's "
        "<id>__sub<k> (regenerate, or rename the files, to silence this)",
        len(old),
    )

    def rename(table: Mapping[str, Any] | None) -> Any:
        return None if table is None else {aliases.get(k, k): v for k, v in table.items()}

    return rename(predictions), rename(mm_predictions), rename(caption_indices)
