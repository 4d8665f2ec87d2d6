"""The training dataset as the host builds it: ``DATASETS.build(dict(type=..., **kwargs))``.

:class:`HumanML3DTrainDataset` reads a HumanML3D-format folder
(:mod:`hftrainer_mogents.training.data`) and normalises it with the mean/std *of the artifact*
being fine-tuned (read from the artifact, never from the folder, so the VQ's codes keep their
meaning). The ``vq`` stage gets fixed 64-frame windows, the others captioned crops; the host's
runner takes :attr:`HumanML3DTrainDataset.collate_fn` for its ``DataLoader``.

**Data order through the host.** The host builds a plain ``DataLoader`` (a config can name no
sampler object) and prepares it with accelerate, whose loader calls ``dataset.set_epoch(n)``
before its ``n``-th pass (0-based, counted by the loader since it was built) when the sampler
has no ``set_epoch``. :class:`HumanML3DTrainDataset` therefore shuffles itself: with
``shuffle=True`` (and the loader's ``shuffle=False``, as the shipped configs set), position
``i`` of epoch ``e`` is item ``epoch_permutation(n, seed, e)[i]`` read with the key ``(e, item)``,
the order and the draws of an :class:`~hftrainer_mogents.training.data.EpochSampler`. So every
epoch has new crops and a new order, from ``(seed, epoch)`` only, whatever the global RNG state.

Resume: the host's iteration-based loop restarts its loader at step 0 and reads (and skips) the
batches of the steps already done, so the resumed loader counts the same passes, and the steps
after the resume point see the batches of an uninterrupted run (the price: the skipped batches
are read again). The host's epoch-based loop (``train_cfg.by_epoch=True``) restarts the
loader's pass count at 0 on resume, so a run resumed at epoch ``e > 0`` would replay epoch 0's
order and crops: add :class:`~hftrainer_mogents.training.host.hooks.DataEpochHook` then, which
gives the loader the runner's epoch (every shipped config is iteration-based and needs none). Workers see
the epoch only when they are started after ``set_epoch`` (``persistent_workers=False``, the
host's default).

:class:`HumanML3DEvalDataset` serves validation by the HumanML3D evaluator: one item per entry of
the evaluation protocol (key, caption, length, as ``mogents evaluate`` plans them), so the
trainer's ``val_step`` generates what the evaluator scores (its FID, R-precision...).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from hftrainer_mogents import artifact
from hftrainer_mogents.config import DIM_POSE
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.training.data import (
    SPLITS,
    VQ_WINDOW,
    MotionWindowDataset,
    Text2MotionDataset,
    collate_motion_windows,
    collate_text_motion,
    epoch_permutation,
)
from hftrainer_mogents.training.stages import stage_preset

__all__ = ["HumanML3DTrainDataset", "HumanML3DEvalDataset", "artifact_stats"]


def artifact_stats(
    path_or_repo_id: str | os.PathLike[str], *, verify_checksums: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The ``(mean, std)`` of an artifact, each ``(263,)`` float32.

    Args:
        path_or_repo_id: artifact folder or hub repo id.
        verify_checksums: check the two files against the artifact's recorded sha256.

    Raises:
        ArtifactNotFoundError: no artifact, or no ``Mean.npy`` / ``Std.npy`` in it.
        ArtifactFormatError: a malformed statistic.
        ChecksumMismatchError: a file differs from its recorded checksum.
    """
    folder = artifact.resolve_artifact(path_or_repo_id)
    names = [artifact.MEAN_NAME, artifact.STD_NAME]
    artifact.require_artifact_files(folder, names)
    if verify_checksums:
        artifact.verify_artifact_files(folder, names)
    mean = artifact.load_stat(folder / artifact.MEAN_NAME, DIM_POSE)
    std = artifact.load_stat(folder / artifact.STD_NAME, DIM_POSE)
    return mean, std


class HumanML3DTrainDataset(Dataset):
    """A HumanML3D-format folder served for one training stage.

    Args:
        data_root: the folder (``new_joint_vecs/``, ``texts/``, split files).
        artifact: the artifact being fine-tuned (folder or hub id): its ``Mean.npy`` /
            ``Std.npy`` normalise the data.
        split: ``train``, ``val`` or ``test``.
        stage: ``vq`` (64-frame windows) or ``mask`` / ``res`` / ``length`` (captioned crops).
        seed: seed of the crop draws (transformer stages) and of the order (None: fresh
            entropy, drawn once here, so that worker copies share it).
        window: frames per VQ window.
        shuffle: serve each epoch in its own order (see the module docstring); give the
            host's loader ``shuffle=False`` then.
        verify_checksums: check the artifact's statistics against its checksums.

    Attributes:
        inner: the :class:`~hftrainer_mogents.training.data.MotionWindowDataset` or
            :class:`~hftrainer_mogents.training.data.Text2MotionDataset`.
        mean, std: the artifact's statistics.

    Raises:
        InvalidInputError: an unknown split or stage, or a split without items.
        ArtifactNotFoundError / ArtifactFormatError: a bad folder or artifact (naming the file).
    """

    def __init__(
        self,
        data_root: str | os.PathLike[str],
        artifact: str | os.PathLike[str],
        split: str = "train",
        stage: str = "mask",
        seed: int | None = 0,
        window: int = VQ_WINDOW,
        verify_checksums: bool = True,
        shuffle: bool = False,
    ) -> None:
        if split not in SPLITS:
            raise InvalidInputError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        self.stage = stage_preset(stage).name
        self.mean, self.std = artifact_stats(artifact, verify_checksums=verify_checksums)
        self.inner: MotionWindowDataset | Text2MotionDataset
        if self.stage == "vq":
            self.inner = MotionWindowDataset(data_root, split, self.mean, self.std, window=window)
        else:
            self.inner = Text2MotionDataset(data_root, split, self.mean, self.std, seed=seed)
        self.shuffle = bool(shuffle)
        if isinstance(self.inner, Text2MotionDataset):
            self.seed = self.inner.base_seed
        else:
            self.seed = (
                int(seed) if seed is not None else int(np.random.SeedSequence().entropy % 2**63)
            )
        self.epoch = 0
        self._order: tuple[int, np.ndarray] | None = None

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next reads belong to (accelerate's loader calls it before each pass).

        Args:
            epoch: the 0-based epoch.
        """
        self.epoch = int(epoch)
        self.inner.set_epoch(self.epoch)

    def key(self, position: int) -> tuple[int, int]:
        """The ``(epoch, item)`` key served at ``position`` of the current epoch.

        Args:
            position: the loader's index, ``0 <= position < len(self)``.
        """
        if not self.shuffle:
            return self.epoch, int(position)
        if self._order is None or self._order[0] != self.epoch:
            self._order = (self.epoch, epoch_permutation(len(self), self.seed, self.epoch))
        return self.epoch, int(self._order[1][position])

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int) -> Any:
        return self.inner[self.key(index)]

    def collate_fn(self, items: list[Any]) -> dict[str, Any]:
        """The stage's collate (:func:`~hftrainer_mogents.training.data.collate_motion_windows`
        or :func:`~hftrainer_mogents.training.data.collate_text_motion`)."""
        if self.stage == "vq":
            return collate_motion_windows(items)
        return collate_text_motion(items)


class HumanML3DEvalDataset(Dataset):
    """The HumanML3D evaluation protocol's items, for validation in the host's runner.

    One item per entry (whole clip or sub-clip) of the split, with the caption and the length
    the protocol generates it from (:func:`~hftrainer_mogents.evaluation.hml263.split_generation.plan_test_split`:
    the first caption, the entry's length floored to a multiple of 4 within [40, 196]). Pair it
    with ``val_evaluator=dict(type="HumanML263Evaluator", ckpt_dir=..., dataset_root=<the same
    folder>)``, which scores the test split (the split the official VQ training selects on).

    Args:
        data_root: the HumanML3D folder.
        split: the split to read.
        max_samples: only the first ids of the split (quick validation).
        seed: the protocol's seed (caption choice is ``"first"``, so it only names the plan).

    Raises:
        ArtifactNotFoundError: a missing folder, split or file.
    """

    def __init__(
        self,
        data_root: str | os.PathLike[str],
        split: str = "test",
        max_samples: int | None = None,
        seed: int = 0,
    ) -> None:
        from hftrainer_mogents.evaluation.hml263.dataset import read_test_split
        from hftrainer_mogents.evaluation.hml263.split_generation import plan_test_split

        entries = read_test_split(data_root, split=split, max_samples=max_samples)
        plan = plan_test_split(entries, seed=seed, batch_size=1, mm_samples=0)
        self.items = [item for batch in plan.batches for item in batch.items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        return self.items[index]

    @staticmethod
    def collate_fn(items: list[Any]) -> dict[str, Any]:
        """``{"keys", "captions", "lengths" (B,) int64, "caption_indices"}``."""
        return {
            "keys": [item.key for item in items],
            "captions": [item.text for item in items],
            "lengths": torch.tensor([item.length for item in items], dtype=torch.long),
            "caption_indices": [item.caption_index for item in items],
        }
