"""Reader of MotionStreamer's HumanML3D-272 test split (``humanml3d_272``).

Layout::

    <root>/motion_data/<id>.npy    (T, 272) raw features at 30 fps
    <root>/texts/<id>.txt          caption#tokens#start#end per line (HumanML3D's text files)
    <root>/split/test.txt          test ids (or <root>/test.txt)
    <root>/mean_std/Mean.npy, Std.npy   (272,) normalisation of the evaluator's inputs

Index rules of upstream's evaluation dataset (``dataset_eval_t2m``, ``t2m_272``): a clip is used
only when ``60 <= T < 300``; a caption line with ``start == end == 0`` (NaN counts as 0)
describes the whole clip; any other line describes ``motion[int(start * 30) : int(end * 30)]``,
an entry of its own with that one caption, kept when ``60 <= len < 300``; the whole clip is an
entry when at least one line describes it. Sub-clip entries are named ``<id>__sub<k>``, ``k``
counting the clip's time-tagged lines in file order before the length check (the zoo's names, the
HumanML3D-263 evaluator's too, so one generation serves both).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError

__all__ = [
    "FPS",
    "MIN_LENGTH",
    "MAX_LENGTH",
    "UNIT_LENGTH",
    "LAYOUT_HELP",
    "MS272Entry",
    "MS272Split",
    "read_ms272_split",
    "load_mean_std",
]

FPS = 30
MIN_LENGTH = 60
MAX_LENGTH = 300  # exclusive; also the padded length of the motion encoder
UNIT_LENGTH = 4

LAYOUT_HELP = (
    "expected a humanml3d_272 folder:\n"
    "  <root>/motion_data/<id>.npy   (T, 272) raw features at 30 fps\n"
    "  <root>/texts/<id>.txt         caption#tokens#start#end per line\n"
    "  <root>/split/test.txt         test ids (or <root>/test.txt)\n"
    "  <root>/mean_std/Mean.npy, Std.npy"
)


@dataclass(frozen=True)
class MS272Entry:
    """One evaluation item.

    Attributes:
        key: prediction file stem (``<id>`` or ``<id>__sub<k>``).
        source_id: the clip it comes from.
        frames: ``(start, end)`` of a sub-clip, or None for the whole clip.
        length: frames of the item.
        captions: its captions (the whole clip's lines, or the one tagged line).
    """

    key: str
    source_id: str
    frames: tuple[int, int] | None
    length: int
    captions: tuple[str, ...]


@dataclass
class MS272Split:
    """The indexed split.

    Attributes:
        root: the dataset folder.
        entries: items sorted by length (stably).
        skipped: ids left out, with the reason.
    """

    root: Path
    entries: list[MS272Entry]
    skipped: dict[str, str] = field(default_factory=dict)

    def motion(self, entry: MS272Entry) -> np.ndarray:
        """(length, 272) float32 raw features of ``entry``."""
        data = np.load(self.root / "motion_data" / f"{entry.source_id}.npy", allow_pickle=False)
        if entry.frames is not None:
            data = data[entry.frames[0] : entry.frames[1]]
        return np.asarray(data, dtype=np.float32)


def _tag(text: str) -> float:
    value = float(text) if text.strip() else 0.0
    return 0.0 if math.isnan(value) else value


def read_ms272_split(
    root: str | os.PathLike[str],
    *,
    split: str = "test",
    split_file: str | os.PathLike[str] | None = None,
    max_samples: int | None = None,
) -> MS272Split:
    """Index the split with upstream's rules (module docstring).

    Args:
        root: the ``humanml3d_272`` folder.
        split: ``<root>/split/<split>.txt`` (or ``<root>/<split>.txt``).
        split_file: an explicit id list instead.
        max_samples: only the first ids of the list.

    Raises:
        ArtifactNotFoundError: the folder or the split file is missing (the layout is shown).
    """
    folder = Path(root)
    if not (folder / "motion_data").is_dir() or not (folder / "texts").is_dir():
        raise ArtifactNotFoundError(f"{folder} is not a humanml3d_272 folder; {LAYOUT_HELP}")
    if split_file is None:
        candidates = [folder / "split" / f"{split}.txt", folder / f"{split}.txt"]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise ArtifactNotFoundError(f"{folder}: no split/{split}.txt; {LAYOUT_HELP}")
        split_file = found[0]
    ids = [s.strip() for s in Path(split_file).read_text().splitlines() if s.strip()]
    if max_samples:
        ids = ids[:max_samples]
    entries: list[MS272Entry] = []
    skipped: dict[str, str] = {}
    for sid in ids:
        motion_path = folder / "motion_data" / f"{sid}.npy"
        text_path = folder / "texts" / f"{sid}.txt"
        if not motion_path.is_file() or not text_path.is_file():
            skipped[sid] = "missing motion or text file"
            continue
        try:
            total = int(np.load(motion_path, mmap_mode="r", allow_pickle=False).shape[0])
        except (ValueError, OSError) as err:
            skipped[sid] = f"unreadable motion ({err})"
            continue
        if not MIN_LENGTH <= total < MAX_LENGTH:
            skipped[sid] = f"{total} frames outside [{MIN_LENGTH}, {MAX_LENGTH})"
            continue
        whole: list[str] = []
        n_tagged = 0  # the zoo's k: every tagged line counts, kept or not
        for raw in text_path.read_text(encoding="utf-8").splitlines():
            fields = raw.strip().split("#")
            if len(fields) < 4:
                continue
            start, end = _tag(fields[2]), _tag(fields[3])
            if start == 0.0 and end == 0.0:
                if fields[0]:
                    whole.append(fields[0])
                continue
            key = f"{sid}__sub{n_tagged}"
            n_tagged += 1
            lo, hi = int(start * FPS), int(end * FPS)
            length = len(range(total)[lo:hi])
            if fields[0] and MIN_LENGTH <= length < MAX_LENGTH:
                entries.append(MS272Entry(key, sid, (lo, hi), length, (fields[0],)))
        if whole:
            entries.append(MS272Entry(sid, sid, None, total, tuple(whole)))
    entries.sort(key=lambda e: e.length)
    return MS272Split(folder, entries, skipped)


def load_mean_std(folder: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """``Mean.npy``/``Std.npy`` (or ``mean.npy``/``std.npy``) of a folder, checked to be (272,).

    Raises:
        ArtifactNotFoundError: missing files.
        ArtifactFormatError: wrong shapes or non-positive std.
    """
    path = Path(folder)
    pairs = [("Mean.npy", "Std.npy"), ("mean.npy", "std.npy")]
    for mean_name, std_name in pairs:
        if (path / mean_name).is_file() and (path / std_name).is_file():
            mean = np.load(path / mean_name, allow_pickle=False)
            std = np.load(path / std_name, allow_pickle=False)
            if mean.shape != (272,) or std.shape != (272,) or not (std > 0).all():
                raise ArtifactFormatError(
                    f"{path}: mean {mean.shape} / std {std.shape} must be (272,) with std > 0"
                )
            return mean, std
    raise ArtifactNotFoundError(f"no Mean.npy/Std.npy in {path}")
