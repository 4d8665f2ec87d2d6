"""Reader of the HumanML3D test split as the evaluation protocol uses it.

Layout of a HumanML3D folder::

    <root>/new_joint_vecs/<id>.npy   (T, 263) float, raw (un-normalised) features at 20 fps
    <root>/texts/<id>.txt            one caption per line: caption#w/POS w/POS ...#start#end
    <root>/split/test.txt            test ids, one per line (or <root>/test.txt)

(the captions may come from another folder, ``texts_dir``, as the zoo's ``--hml263-texts-dir``).

Index rules of the reference evaluation dataset: a clip is kept when ``40 <= T < 200`` frames; a
caption line with ``start == end == 0`` (NaN counts as 0) describes the whole clip; any other line
describes the sub-clip ``motion[int(start * 20) : int(end * 20)]``, which becomes an entry of its
own (kept when ``40 <= len < 200``) with that one caption; the whole clip is an entry only when at
least one line describes it. Entries are sorted by length (stably). An id whose motion or text file
is missing or unreadable, or that has an empty caption, is left out and recorded in
``skipped`` (the reference drops these silently).

Sub-clip entries are named as the zoo names them, ``<id>__sub<k>``: within a clip that passes the
length rule, ``k`` counts the time-tagged caption lines in file order (0, 1, ...), counted before
the sub-clip's own length check, so a dropped sub-clip leaves a gap. (The reference names them with
a random letter prefix, which no file layout could rely on.) Folders written before this naming,
``<id>__L<line>`` (line index in the text file), are still read: :func:`legacy_subclip_aliases`
maps the old names to the new ones.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hftrainer_mogents.config import DIM_POSE, FPS, MIN_MOTION_LENGTH
from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError, InvalidInputError

__all__ = [
    "MAX_CLIP_LENGTH",
    "Caption",
    "TestEntry",
    "HumanML3DTestSplit",
    "find_split_file",
    "read_test_split",
    "subclip_key",
    "legacy_subclip_key",
    "legacy_subclip_aliases",
    "LAYOUT_HELP",
]

MAX_CLIP_LENGTH = 200  # exclusive upper bound on clip and sub-clip length, frames

LAYOUT_HELP = (
    "expected a HumanML3D folder:\n"
    "  <root>/new_joint_vecs/<id>.npy   (T, 263) raw features at 20 fps\n"
    "  <root>/texts/<id>.txt            caption#w/POS w/POS ...#start#end per line\n"
    "  <root>/split/test.txt            test ids, one per line (or <root>/test.txt)"
)


@dataclass(frozen=True)
class Caption:
    """One caption line.

    Attributes:
        text: the sentence.
        tokens: ``word/POS`` tokens.
        line: index of the line in ``texts/<id>.txt``.
    """

    text: str
    tokens: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class TestEntry:
    """One item of the evaluation set: a whole clip or a captioned sub-clip.

    Attributes:
        key: ``<id>`` or ``<id>__sub<k>`` (the prediction file stem).
        source_id: the clip id.
        frames: ``(start, end)`` frame slice of the clip for a sub-clip, ``None`` for a clip.
        length: frames.
        captions: the captions describing it (one for a sub-clip).
    """

    key: str
    source_id: str
    frames: tuple[int, int] | None
    length: int
    captions: tuple[Caption, ...]


@dataclass
class HumanML3DTestSplit:
    """The evaluation entries of a HumanML3D folder.

    Attributes:
        root: the dataset folder.
        split_file: the id list read.
        entries: kept entries, sorted by length (stable).
        skipped: ids (or sub-clip keys) left out, with the reason.
        texts_dir: the caption folder read (default ``<root>/texts``).
    """

    root: Path
    split_file: Path
    entries: list[TestEntry]
    skipped: dict[str, str] = field(default_factory=dict)
    texts_dir: Path | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def motion_path(self, entry: TestEntry) -> Path:
        """The ``new_joint_vecs`` file of an entry's clip."""
        return self.root / "new_joint_vecs" / f"{entry.source_id}.npy"

    def load_motion(self, entry: TestEntry) -> np.ndarray:
        """The raw motion of an entry.

        Returns:
            ``(entry.length, 263)`` float32.
        """
        motion = np.load(self.motion_path(entry), allow_pickle=False)
        if entry.frames is not None:
            motion = motion[entry.frames[0] : entry.frames[1]]
        return np.asarray(motion, dtype=np.float32)

    def select(self, keys: Sequence[str]) -> HumanML3DTestSplit:
        """A split holding only the entries named in ``keys`` (in this split's order)."""
        wanted = set(keys)
        return HumanML3DTestSplit(
            self.root,
            self.split_file,
            [e for e in self.entries if e.key in wanted],
            dict(self.skipped),
            self.texts_dir,
        )


def subclip_key(source_id: str, k: int) -> str:
    """Key (prediction file stem) of the ``k``-th time-tagged caption of a clip (the zoo's
    ``<id>__sub<k>``; see the module doc for how ``k`` counts)."""
    return f"{source_id}__sub{k}"


def legacy_subclip_key(source_id: str, line: int) -> str:
    """The name this package gave sub-clips before it took the zoo's: ``<id>__L<line>``."""
    return f"{source_id}__L{line}"


def legacy_subclip_aliases(entries: Sequence[TestEntry]) -> dict[str, str]:
    """``{<id>__L<line>: <id>__sub<k>}`` for the sub-clip entries given, so prediction folders
    written with the old names still score."""
    return {
        legacy_subclip_key(e.source_id, e.captions[0].line): e.key
        for e in entries
        if e.frames is not None
    }


def find_split_file(root: Path, split: str = "test") -> Path:
    """``<root>/split/<split>.txt`` or ``<root>/<split>.txt``.

    Raises:
        ArtifactNotFoundError: neither exists (the message shows the expected layout).
    """
    for candidate in (root / "split" / f"{split}.txt", root / f"{split}.txt"):
        if candidate.is_file():
            return candidate
    raise ArtifactNotFoundError(f"{root}: no split/{split}.txt nor {split}.txt; {LAYOUT_HELP}")


def _check_layout(root: Path, texts_dir: Path | None = None) -> None:
    if not root.is_dir():
        raise ArtifactNotFoundError(f"dataset folder {root} does not exist; {LAYOUT_HELP}")
    needed = ("new_joint_vecs",) if texts_dir is not None else ("new_joint_vecs", "texts")
    missing = [name for name in needed if not (root / name).is_dir()]
    if missing:
        raise ArtifactNotFoundError(f"{root}: missing {', '.join(missing)}/; {LAYOUT_HELP}")
    if texts_dir is not None and not texts_dir.is_dir():
        raise ArtifactNotFoundError(f"caption folder {texts_dir} (texts_dir) does not exist")


def _tag(text: str) -> float:
    value = float(text)
    return 0.0 if math.isnan(value) else value


def _slice_length(total: int, start: int, end: int) -> int:
    return len(range(total)[start:end])


def _read_captions(path: Path) -> list[tuple[Caption, float, float]]:
    """Caption lines with their time tags (seconds)."""
    out = []
    for line_no, raw in enumerate(path.read_text(encoding="utf-8").splitlines()):
        fields = raw.strip().split("#")
        if len(fields) < 4:
            raise ValueError(f"line {line_no} has {len(fields)} '#' fields, expected 4")
        caption, tokens = fields[0], tuple(fields[1].split(" "))
        if not caption:
            raise ValueError(f"line {line_no} has an empty caption")
        out.append((Caption(caption, tokens, line_no), _tag(fields[2]), _tag(fields[3])))
    return out


def read_test_split(
    root: str | os.PathLike[str],
    *,
    split: str = "test",
    split_file: str | os.PathLike[str] | None = None,
    min_length: int = MIN_MOTION_LENGTH,
    max_length: int = MAX_CLIP_LENGTH,
    include_subclips: bool = True,
    max_samples: int | None = None,
    texts_dir: str | os.PathLike[str] | None = None,
) -> HumanML3DTestSplit:
    """Index a HumanML3D folder's test split with the reference rules (see the module doc).

    Args:
        root: the HumanML3D folder.
        split: split name (``<root>/split/<split>.txt`` or ``<root>/<split>.txt``).
        split_file: an explicit id list instead.
        min_length: shortest clip or sub-clip kept, frames.
        max_length: exclusive upper bound, frames.
        include_subclips: keep time-tagged captions as sub-clip entries.
        max_samples: keep only the first ``max_samples`` ids of the split (for quick runs).
        texts_dir: read the captions ``<id>.txt`` from this folder instead of ``<root>/texts``
            (the zoo's ``--hml263-texts-dir``: the captions the predictions were generated from).

    Returns:
        The split's entries; motions are read when used (only their shapes are read here).

    Raises:
        ArtifactNotFoundError: the folder, ``new_joint_vecs/``, ``texts/`` or the split file is
            missing (the expected layout is in the message).
        ArtifactFormatError: a motion file is not ``(T, 263)``.
    """
    root = Path(root)
    captions_dir = root / "texts" if texts_dir is None else Path(texts_dir)
    _check_layout(root, None if texts_dir is None else captions_dir)
    if split_file is None:
        split_path = find_split_file(root, split)
    else:
        split_path = Path(split_file)
        if not split_path.is_file():
            raise ArtifactNotFoundError(f"split file {split_path} not found; {LAYOUT_HELP}")
    ids = [line.strip() for line in split_path.read_text(encoding="utf-8").splitlines()]
    ids = [i for i in ids if i]
    if max_samples is not None:
        ids = ids[:max_samples]

    entries: list[TestEntry] = []
    skipped: dict[str, str] = {}
    for clip_id in ids:
        motion_path = root / "new_joint_vecs" / f"{clip_id}.npy"
        text_path = captions_dir / f"{clip_id}.txt"
        if not motion_path.is_file():
            skipped[clip_id] = "missing motion file"
            continue
        if not text_path.is_file():
            skipped[clip_id] = "missing text file"
            continue
        try:
            shape = np.load(motion_path, mmap_mode="r", allow_pickle=False).shape
        except (ValueError, OSError) as err:
            skipped[clip_id] = f"unreadable motion file ({err})"
            continue
        if len(shape) != 2 or shape[1] != DIM_POSE:
            raise ArtifactFormatError(
                f"{motion_path}: shape {shape}, expected (T, {DIM_POSE}) HumanML3D-263 features"
            )
        total = shape[0]
        if not min_length <= total < max_length:
            skipped[clip_id] = f"clip length {total} outside [{min_length}, {max_length})"
            continue
        try:
            lines = _read_captions(text_path)
        except (ValueError, UnicodeDecodeError) as err:
            skipped[clip_id] = f"bad text file: {err}"
            continue
        whole: list[Caption] = []
        n_tagged = 0  # the zoo's k: every tagged line counts, kept or not
        for caption, start_s, end_s in lines:
            if start_s == 0.0 and end_s == 0.0:
                whole.append(caption)
                continue
            key = subclip_key(clip_id, n_tagged)
            n_tagged += 1
            if not include_subclips:
                continue
            start, end = int(start_s * FPS), int(end_s * FPS)
            length = _slice_length(total, start, end)
            if not min_length <= length < max_length:
                skipped[key] = f"sub-clip length {length} outside [{min_length}, {max_length})"
                continue
            entries.append(TestEntry(key, clip_id, (start, end), length, (caption,)))
        if whole:
            entries.append(TestEntry(clip_id, clip_id, None, total, tuple(whole)))
    entries.sort(key=lambda e: e.length)
    if not entries:
        raise InvalidInputError(
            f"{root}: no usable test entry among {len(ids)} ids of {split_path} "
            f"(first reasons: {dict(list(skipped.items())[:5])})"
        )
    return HumanML3DTestSplit(root, split_path, entries, skipped, captions_dir)
