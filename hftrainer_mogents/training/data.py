"""Training data: a HumanML3D-format folder, read, checked and served as the official training does.

The folder holds ``new_joint_vecs/<id>.npy`` (frames x 263 features), ``texts/<id>.txt`` (one
``caption#tokens#start#end`` line per caption, times in seconds, a NaN time meaning 0) and the
split files ``train.txt`` / ``val.txt`` / ``test.txt`` (one id per line).

- :class:`HumanML3DFolder` reads it; a bad folder raises a typed error naming the file
  (:class:`~hftrainer_mogents.errors.ArtifactNotFoundError`,
  :class:`~hftrainer_mogents.errors.ArtifactFormatError`); malformed caption lines are skipped
  one by one, with one warning per read that counts them.
- :class:`Text2MotionDataset` serves the transformers: time-tagged captions cut into sub-clips,
  a caption and a crop to a multiple of 4 drawn per item from a generator keyed by
  ``(seed, epoch, index)``, so an item does not depend on which items were read before it (nor in
  which worker process): a resumed or multi-process run sees the items of an uninterrupted one.
- :class:`MotionWindowDataset` serves the VQ: fixed windows of 64 frames, no text.
- :class:`EpochSampler` gives each epoch's order from ``(seed, epoch)`` only
  (:func:`epoch_permutation`) and yields ``(epoch, index)`` keys, which both datasets accept, so
  a resumed run sees the batches of an uninterrupted one, persistent loader workers included.

Both normalise with the *artifact's* mean/std (``(x - mean) / std``), never the folder's, so the
VQ codes the transformers learn stay those of the artifact. numpy does the work; torch only
appears in the collates and the ``Dataset`` / ``Sampler`` bases.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from hftrainer_mogents.config import (
    DIM_POSE,
    FPS,
    MAX_MOTION_LENGTH,
    MIN_MOTION_LENGTH,
    UNIT_LENGTH,
)
from hftrainer_mogents.errors import (
    ArtifactFormatError,
    ArtifactNotFoundError,
    InvalidInputError,
)

__all__ = [
    "SPLITS",
    "MAX_CLIP_LENGTH",
    "VQ_WINDOW",
    "Caption",
    "CaptionedClip",
    "HumanML3DFolder",
    "Text2MotionDataset",
    "MotionWindowDataset",
    "collate_text_motion",
    "collate_motion_windows",
    "seed_worker",
    "ItemKey",
    "EpochSampler",
    "epoch_permutation",
]

ItemKey = int | tuple[int, int]  # an index, or (epoch, index)

SPLITS = ("train", "val", "test")
MAX_CLIP_LENGTH = 200  # a clip (or sub-clip) of this many frames or more is left out
VQ_WINDOW = 64  # frames per VQ training window
# Seeds are SeedSequence entropy of 4 words, the last one naming the stream: an item's draws
# (seed, epoch, index) (padded with 0), an epoch's order (seed, epoch, 0, 1); the training loop
# uses 2 and up. SeedSequence pads short entropy with zeros, so a shorter key would collide.
_ORDER_STREAM = 1


@dataclass(frozen=True)
class Caption:
    """One line of a ``texts/<id>.txt`` file.

    Attributes:
        text: the caption.
        tokens: the ``word/POS`` tokens.
        start: start time in seconds (0 when untagged or NaN).
        end: end time in seconds (0 when untagged or NaN).
    """

    text: str
    tokens: tuple[str, ...]
    start: float
    end: float

    @property
    def tagged(self) -> bool:
        """Whether the caption describes a sub-clip (any time tag non-zero)."""
        return not (self.start == 0.0 and self.end == 0.0)


@dataclass(frozen=True)
class CaptionedClip:
    """A transformer training item before cropping: a (sub-)clip and the captions describing it.

    Attributes:
        key: ``<id>`` for a whole clip, ``<id>@<first>-<stop>`` (frames) for a sub-clip.
        motion: the raw (unnormalised) frames, shape ``(T, 263)``.
        captions: the captions that may be drawn for it.
    """

    key: str
    motion: np.ndarray
    captions: tuple[str, ...]

    @property
    def length(self) -> int:
        """Number of frames ``T``."""
        return int(self.motion.shape[0])


def _parse_caption_line(line: str) -> Caption | None:
    """One caption line, or ``None`` when it is malformed (too few fields, empty caption,
    a time that is not a number, infinite or negative)."""
    parts = line.split("#")
    if len(parts) < 4 or not parts[0].strip():
        return None
    try:
        start, end = float(parts[2]), float(parts[3])
    except ValueError:
        return None
    start = 0.0 if math.isnan(start) else start
    end = 0.0 if math.isnan(end) else end
    if math.isinf(start) or math.isinf(end) or start < 0 or end < 0:
        return None
    return Caption(parts[0].strip(), tuple(parts[1].split()), start, end)


class HumanML3DFolder:
    """Reader of a HumanML3D-format folder.

    Args:
        root: the folder holding ``new_joint_vecs/``, ``texts/`` and the split files.

    Raises:
        ArtifactNotFoundError: ``root`` or ``root/new_joint_vecs`` is not a folder.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ArtifactNotFoundError(
                f"HumanML3D folder {self.root} does not exist: pass the folder holding "
                "new_joint_vecs/, texts/ and train.txt/val.txt/test.txt."
            )
        if not self.motion_dir.is_dir():
            raise ArtifactNotFoundError(
                f"{self.motion_dir} is missing: a HumanML3D folder keeps one (T, {DIM_POSE}) "
                "array per id there."
            )

    @property
    def motion_dir(self) -> Path:
        """``root/new_joint_vecs``."""
        return self.root / "new_joint_vecs"

    @property
    def text_dir(self) -> Path:
        """``root/texts``."""
        return self.root / "texts"

    def split_ids(self, split: str) -> list[str]:
        """The ids listed in a split file, in file order (blank lines skipped).

        Args:
            split: ``"train"``, ``"val"`` or ``"test"``.

        Returns:
            The ids.

        Raises:
            InvalidInputError: an unknown split name.
            ArtifactNotFoundError: the split file is missing.
        """
        if split not in SPLITS:
            raise InvalidInputError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
        path = self.root / f"{split}.txt"
        if not path.is_file():
            raise ArtifactNotFoundError(
                f"split file {path} is missing: write one id per line (the names of "
                f"new_joint_vecs/<id>.npy)."
            )
        return [
            line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]

    def load_motion(self, motion_id: str) -> np.ndarray:
        """One motion, checked.

        Args:
            motion_id: the id (file stem in ``new_joint_vecs/``).

        Returns:
            The array, shape ``(T, 263)``, as stored.

        Raises:
            ArtifactNotFoundError: the id has no motion file.
            ArtifactFormatError: the file is unreadable, not ``(T, 263)``, or holds NaN/inf.
        """
        path = self.motion_dir / f"{motion_id}.npy"
        if not path.is_file():
            raise ArtifactNotFoundError(
                f"motion file {path} is missing, but {motion_id!r} is listed in a split file: "
                "add the file or remove the id from the split."
            )
        try:
            motion = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ArtifactFormatError(f"motion file {path} is not a readable .npy: {exc}") from exc
        if motion.ndim != 2 or motion.shape[1] != DIM_POSE:
            raise ArtifactFormatError(
                f"motion file {path} has shape {tuple(motion.shape)}, expected (T, {DIM_POSE}) "
                "HumanML3D features."
            )
        if not np.issubdtype(motion.dtype, np.floating):
            raise ArtifactFormatError(
                f"motion file {path} has dtype {motion.dtype}, expected float"
            )
        finite = np.isfinite(motion)
        if not finite.all():
            frame = int(np.argwhere(~finite)[0, 0])
            raise ArtifactFormatError(
                f"motion file {path} holds {int((~finite).sum())} NaN/inf values "
                f"(first at frame {frame}): fix or drop the clip."
            )
        return motion

    def read_captions(self, motion_id: str) -> tuple[list[Caption], int]:
        """The captions of one id; malformed lines are skipped (and counted), blank ones ignored.

        Args:
            motion_id: the id (file stem in ``texts/``).

        Returns:
            The captions, in file order, and the number of malformed lines skipped.

        Raises:
            ArtifactNotFoundError: the id has no caption file.
        """
        path = self.text_dir / f"{motion_id}.txt"
        if not path.is_file():
            raise ArtifactNotFoundError(
                f"caption file {path} is missing: the transformers need captions for every id "
                "of the split."
            )
        captions: list[Caption] = []
        bad = 0
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            caption = _parse_caption_line(line.strip())
            if caption is None:
                bad += 1
            else:
                captions.append(caption)
        return captions, bad

    def captioned_clips(self, split: str) -> list[CaptionedClip]:
        """The transformer items of a split, built as the official ``Text2MotionDataset`` does.

        An id is skipped whole (sub-clips included) when ``T < 40`` or ``T >= 200``. A caption
        with both tags 0 describes the whole clip; any other caption gives its own item,
        ``motion[int(start * 20):int(end * 20)]``, kept when ``40 <= len < 200``. The whole clip
        is an item only when at least one caption is untagged. Items are ordered by length
        (stable: split order, an id's sub-clips in caption order before its whole clip). One
        warning counts every malformed caption line of the split.

        Args:
            split: ``"train"``, ``"val"`` or ``"test"``.

        Returns:
            The items.

        Raises:
            ArtifactNotFoundError: a missing split, motion or caption file.
            ArtifactFormatError: a bad motion file.
        """
        clips: list[CaptionedClip] = []
        bad_lines = 0
        bad_files: list[str] = []
        for motion_id in self.split_ids(split):
            motion = self.load_motion(motion_id)
            captions, bad = self.read_captions(motion_id)
            if bad:
                bad_lines += bad
                bad_files.append(str(self.text_dir / f"{motion_id}.txt"))
            length = motion.shape[0]
            if length < MIN_MOTION_LENGTH or length >= MAX_CLIP_LENGTH:
                continue
            whole: list[str] = []
            for caption in captions:
                if not caption.tagged:
                    whole.append(caption.text)
                    continue
                first, stop = int(caption.start * FPS), int(caption.end * FPS)
                sub = motion[first:stop]
                if MIN_MOTION_LENGTH <= sub.shape[0] < MAX_CLIP_LENGTH:
                    clips.append(CaptionedClip(f"{motion_id}@{first}-{stop}", sub, (caption.text,)))
            if whole:
                clips.append(CaptionedClip(motion_id, motion, tuple(whole)))
        if bad_lines:
            named = ", ".join(bad_files[:2]) + (", ..." if len(bad_files) > 2 else "")
            warnings.warn(
                f"skipped {bad_lines} malformed caption line(s) in {len(bad_files)} file(s) of "
                f"the {split} split ({named}): each line must read caption#tokens#start#end.",
                stacklevel=2,
            )
        clips.sort(key=lambda clip: clip.length)
        return clips

    def motions(self, split: str) -> list[tuple[str, np.ndarray]]:
        """Every motion of a split, checked, in split order (no captions read).

        Args:
            split: ``"train"``, ``"val"`` or ``"test"``.

        Returns:
            ``(id, motion)`` pairs.

        Raises:
            ArtifactNotFoundError: a missing split or motion file.
            ArtifactFormatError: a bad motion file.
        """
        return [(motion_id, self.load_motion(motion_id)) for motion_id in self.split_ids(split)]


def _check_stats(mean: Any, std: Any) -> tuple[np.ndarray, np.ndarray]:
    """The artifact's mean/std as float64 arrays of shape (263,), checked."""
    mean_arr = np.asarray(mean, dtype=np.float64)
    std_arr = np.asarray(std, dtype=np.float64)
    for name, arr in (("mean", mean_arr), ("std", std_arr)):
        if arr.shape != (DIM_POSE,):
            raise InvalidInputError(
                f"{name} has shape {arr.shape}, expected ({DIM_POSE},): pass the artifact's "
                "Mean/Std."
            )
        if not np.isfinite(arr).all():
            raise InvalidInputError(f"{name} holds NaN/inf values")
    if (std_arr <= 0).any():
        raise InvalidInputError(f"std has {int((std_arr <= 0).sum())} non-positive entries")
    return mean_arr, std_arr


class _Normalised(Dataset):
    """Shared part: the folder and split read, the artifact's mean/std and ``(x - mean) / std``
    in float64, cast to float32."""

    def __init__(
        self, folder: HumanML3DFolder | str | Path, split: str, mean: Any, std: Any
    ) -> None:
        self.mean, self.std = _check_stats(mean, std)
        self.folder = folder if isinstance(folder, HumanML3DFolder) else HumanML3DFolder(folder)
        self.split = split
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose draws a plain index gets (as ``DistributedSampler.set_epoch``). Worker
        processes only see it when the loader's iterator is created after the call; an
        :class:`EpochSampler`'s ``(epoch, index)`` keys need no call.

        Args:
            epoch: the 0-based epoch.
        """
        self.epoch = int(epoch)

    def _key(self, key: ItemKey) -> tuple[int, int]:
        """``(epoch, index)`` of an item key: an index (the current epoch) or a pair."""
        if isinstance(key, tuple):
            epoch, index = key
            return int(epoch), int(index)
        return self.epoch, int(key)

    def normalise(self, motion: np.ndarray) -> np.ndarray:
        """``(motion - mean) / std`` with the artifact's statistics.

        Args:
            motion: raw frames, shape ``(T, 263)``.

        Returns:
            The normalised frames, float32.
        """
        return ((np.asarray(motion, dtype=np.float64) - self.mean) / self.std).astype(np.float32)


class Text2MotionDataset(_Normalised):
    """Captioned crops for the mask and residual transformers (the official
    ``Text2MotionDataset`` without the grid, which the objectives build from the motion).

    Each ``__getitem__`` draws, in this order: a caption; ``single`` or ``double`` (probabilities
    2/3, 1/3); sets ``m = floor(T/4)*4`` (double: ``(floor(T/4) - 1)*4``, so ``m`` is in
    [36, 196]); a crop start in ``[0, T - m]``. The crop is normalised and zero-padded to 196 rows.

    The draws of item ``index`` come from a ``numpy.random.Generator`` seeded with
    ``(seed, epoch, index)`` (:meth:`item_generator`): reading an item twice in one epoch gives
    the same crop, another epoch another one. The epoch is the one set with :meth:`set_epoch`,
    or comes with the key: ``dataset[(epoch, index)]``, what :class:`EpochSampler` yields, so
    that (persistent) worker processes need not be told. The official code draws from global
    streams instead, whose state depends on every item read before; keyed draws make a resumed
    run and an N-process run see the items of an uninterrupted one-process run.

    Args:
        folder: the HumanML3D folder (or its path).
        split: ``"train"``, ``"val"`` or ``"test"``.
        mean: the artifact's feature mean, shape ``(263,)``.
        std: the artifact's feature std, shape ``(263,)``.
        seed: the seed of the per-item draws (``None``: fresh entropy, replaced by the
            loader's base seed in workers started with :func:`seed_worker`).

    Raises:
        ArtifactNotFoundError: a missing folder, split, motion or caption file.
        ArtifactFormatError: a bad motion file.
        InvalidInputError: a bad mean/std, or a split without any item.
    """

    def __init__(
        self,
        folder: HumanML3DFolder | str | Path,
        split: str,
        mean: Any,
        std: Any,
        seed: int | None = None,
    ) -> None:
        super().__init__(folder, split, mean, std)
        self.clips = self.folder.captioned_clips(split)
        if not self.clips:
            raise InvalidInputError(
                f"the {split} split of {self.folder.root} has no clip of {MIN_MOTION_LENGTH} to "
                f"{MAX_CLIP_LENGTH - 1} frames with a caption."
            )
        self.seed(seed)

    def seed(self, seed: int | None) -> None:
        """Set the seed of the per-item draws.

        Args:
            seed: the seed (``None``: fresh entropy; :func:`seed_worker` may replace it).
        """
        self.seeded = seed is not None
        self.base_seed = int(seed) if seed is not None else _fresh_seed()

    def item_generator(self, key: ItemKey) -> np.random.Generator:
        """The generator of an item's draws.

        Args:
            key: the item's index (in the current epoch) or ``(epoch, index)``.

        Returns:
            ``numpy.random.default_rng((seed, epoch, index))``.
        """
        epoch, index = self._key(key)
        return np.random.default_rng((self.base_seed, epoch, index))

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key: ItemKey) -> tuple[str, np.ndarray, int]:
        """One drawn training item.

        Args:
            key: the clip's index (in the current epoch) or ``(epoch, index)``.

        Returns:
            The caption, the normalised crop zero-padded to ``(196, 263)`` (float32), and the
            crop length ``m``.
        """
        rng = self.item_generator(key)
        clip = self.clips[self._key(key)[1]]
        caption = clip.captions[int(rng.integers(len(clip.captions)))]
        double = ("single", "single", "double")[int(rng.integers(3))] == "double"
        units = clip.length // UNIT_LENGTH - (1 if double else 0)
        m = units * UNIT_LENGTH
        start = int(rng.integers(0, clip.length - m, endpoint=True))
        motion = np.zeros((MAX_MOTION_LENGTH, DIM_POSE), dtype=np.float32)
        motion[:m] = self.normalise(clip.motion[start : start + m])
        return caption, motion, m


class MotionWindowDataset(_Normalised):
    """Fixed 64-frame windows for the VQ, over the motions with ``T >= 64``; no text.

    Item ``k`` maps as the official ``MotionDataset`` does: with ``counts[i] = T_i - 64`` and
    ``cum = [0, cumsum(counts)]``, motion ``i = searchsorted(cum, k) - 1`` and start
    ``k - cum[i] - 1``, and ``k = 0`` gives ``(0, 0)``. So starts run ``0 .. T - 65``; ``k = 0``
    and ``k = 1`` both give the first motion's first window; a motion of exactly 64 frames gives
    no item unless it comes first. Nothing is drawn.

    Args:
        folder: the HumanML3D folder (or its path).
        split: ``"train"``, ``"val"`` or ``"test"``.
        mean: the artifact's feature mean, shape ``(263,)``.
        std: the artifact's feature std, shape ``(263,)``.
        window: frames per window.

    Raises:
        ArtifactNotFoundError: a missing folder, split or motion file.
        ArtifactFormatError: a bad motion file.
        InvalidInputError: a bad mean/std or window, or a split without any window.
    """

    def __init__(
        self,
        folder: HumanML3DFolder | str | Path,
        split: str,
        mean: Any,
        std: Any,
        window: int = VQ_WINDOW,
    ) -> None:
        if window < 1:
            raise InvalidInputError(f"window must be at least 1 frame, got {window}")
        super().__init__(folder, split, mean, std)
        self.window = window
        pairs = [(i, m) for i, m in self.folder.motions(split) if m.shape[0] >= window]
        self.ids = [motion_id for motion_id, _ in pairs]
        self.motions = [motion for _, motion in pairs]
        counts = [motion.shape[0] - window for motion in self.motions]
        self.cumsum = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        if len(self) == 0:
            raise InvalidInputError(
                f"the {split} split of {self.folder.root} has no motion longer than {window} "
                "frames."
            )

    def __len__(self) -> int:
        return int(self.cumsum[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """The motion and start frame of an item.

        Args:
            index: the item, ``0 <= index < len(self)``.

        Returns:
            ``(motion index, start frame)``.

        Raises:
            IndexError: ``index`` out of range.
        """
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        if index == 0:
            return 0, 0
        motion_index = int(np.searchsorted(self.cumsum, index)) - 1
        return motion_index, int(index - self.cumsum[motion_index] - 1)

    def __getitem__(self, key: ItemKey) -> np.ndarray:
        """One normalised window (nothing is drawn: the epoch of a key is ignored).

        Args:
            key: the item's index, or ``(epoch, index)``.

        Returns:
            The window, shape ``(window, 263)``, float32.
        """
        motion_index, start = self.locate(self._key(key)[1])
        return self.normalise(self.motions[motion_index][start : start + self.window])


def collate_text_motion(items: list[tuple[str, np.ndarray, int]]) -> dict[str, Any]:
    """Batch :class:`Text2MotionDataset` items (for ``DataLoader(collate_fn=...)``).

    Args:
        items: ``(caption, padded motion, m)`` triples.

    Returns:
        ``{"captions": list[str], "motions": float32 tensor (B, L, 263), "lengths": int64
        tensor (B,)}``, with ``L`` the common padded length (196).
    """
    captions = [caption for caption, _, _ in items]
    motions = torch.from_numpy(
        np.stack([np.asarray(motion, dtype=np.float32) for _, motion, _ in items])
    )
    lengths = torch.tensor([int(m) for _, _, m in items], dtype=torch.long)
    return {"captions": captions, "motions": motions, "lengths": lengths}


def collate_motion_windows(items: list[np.ndarray]) -> dict[str, torch.Tensor]:
    """Batch VQ windows, zero-padding to the longest (for ``DataLoader(collate_fn=...)``).

    Args:
        items: windows, each ``(T_i, 263)``.

    Returns:
        ``{"motions": float32 tensor (B, max T_i, 263), "lengths": int64 tensor (B,)}``.
    """
    longest = max(item.shape[0] for item in items)
    motions = np.zeros((len(items), longest, items[0].shape[1]), dtype=np.float32)
    for row, item in enumerate(items):
        motions[row, : item.shape[0]] = item
    lengths = torch.tensor([item.shape[0] for item in items], dtype=torch.long)
    return {"motions": torch.from_numpy(motions), "lengths": lengths}


def epoch_permutation(num_items: int, seed: int, epoch: int) -> np.ndarray:
    """The order of one epoch: a permutation of ``range(num_items)`` that depends on
    ``(seed, epoch)`` only.

    Args:
        num_items: the dataset's length.
        seed: the run's seed (non-negative).
        epoch: the 0-based epoch.

    Returns:
        int64 array of shape ``(num_items,)``.
    """
    if seed < 0 or epoch < 0:
        raise InvalidInputError(f"seed and epoch must be non-negative, got {seed} and {epoch}")
    return np.random.default_rng((int(seed), int(epoch), 0, _ORDER_STREAM)).permutation(num_items)


class EpochSampler(Sampler):
    """A resumable sampler: each epoch visits every item once, in the order
    :func:`epoch_permutation` gives for ``(seed, epoch)`` (or in index order without
    ``shuffle``), and yields ``(epoch, index)`` keys, so the datasets of this module draw an
    item's crop for that epoch in any process, persistent loader workers included.

    Call :meth:`set_epoch` before each epoch (as with ``DistributedSampler``); a run resumed at
    epoch ``e`` sees the order and the items of an uninterrupted one.

    Args:
        num_items: the dataset's length (or the dataset).
        seed: the run's seed.
        shuffle: permute each epoch (False: index order, the epoch still in the keys).
    """

    def __init__(self, num_items: int | Sized, *, seed: int = 0, shuffle: bool = True) -> None:
        self.num_items = num_items if isinstance(num_items, int) else len(num_items)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration visits.

        Args:
            epoch: the 0-based epoch.
        """
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_items

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            order = epoch_permutation(self.num_items, self.seed, self.epoch)
        else:
            order = np.arange(self.num_items)
        return iter([(self.epoch, int(index)) for index in order])


def seed_worker(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=seed_worker)``: give an unseeded :class:`Text2MotionDataset`
    the loader's base seed, the same in every worker (its draws are keyed by item, so workers
    need one seed, not one stream each), so that a loader with a seeded ``generator`` gives a
    reproducible run. A dataset built with a seed keeps it.

    Args:
        worker_id: the worker's index (``info.seed`` is the base seed plus it).
    """
    info = torch.utils.data.get_worker_info()
    dataset = None if info is None else info.dataset
    if isinstance(dataset, Text2MotionDataset) and not dataset.seeded:
        dataset.base_seed = (info.seed - worker_id) % 2**63


def _fresh_seed() -> int:
    """A seed from fresh OS entropy."""
    return int(np.random.SeedSequence().entropy % 2**63)
