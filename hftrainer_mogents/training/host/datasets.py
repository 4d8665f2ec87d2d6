"""The training dataset as the host builds it: ``DATASETS.build(dict(type=..., **kwargs))``.

:class:`HumanML3DTrainDataset` reads a HumanML3D-format folder
(:mod:`hftrainer_mogents.training.data`) and normalises it with the mean/std *of the artifact*
being fine-tuned (read from the artifact, never from the folder, so the VQ's codes keep their
meaning). The ``vq`` stage gets fixed 64-frame windows, the others captioned crops; the host's
runner takes :attr:`HumanML3DTrainDataset.collate_fn` for its ``DataLoader``.

:class:`HumanML3DEvalDataset` serves validation by the HumanML3D evaluator: one item per entry of
the evaluation protocol (key, caption, length, as ``mogents evaluate`` plans them), so the
trainer's ``val_step`` generates what the evaluator scores (its FID, R-precision...).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

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
        seed: seed of the crop draws (transformer stages; None: fresh entropy).
        window: frames per VQ window.
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
    ) -> None:
        if split not in SPLITS:
            raise InvalidInputError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        self.stage = stage_preset(stage).name
        self.mean, self.std = artifact_stats(artifact, verify_checksums=verify_checksums)
        self.inner: MotionWindowDataset | Text2MotionDataset
        self._worker: tuple[int, int] | None = None
        if self.stage == "vq":
            self.inner = MotionWindowDataset(data_root, split, self.mean, self.std, window=window)
        else:
            self.inner = Text2MotionDataset(data_root, split, self.mean, self.std, seed=seed)

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int) -> Any:
        # the host builds its DataLoader without a worker_init_fn: each worker's copy of the
        # crop generator is reseeded here, once, from the worker's seed (which the loader derives
        # from the seeded main process), so workers do not repeat each other's draws
        info = get_worker_info()
        if info is not None and isinstance(self.inner, Text2MotionDataset):
            key = (info.id, info.seed)
            if self._worker != key:
                self.inner.seed(info.seed % 2**63)
                self._worker = key
        return self.inner[index]

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
