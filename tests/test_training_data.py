"""The training data of hftrainer_mogents.training.data, over a small HumanML3D-format folder
built here: which clips and sub-clips become items, normalisation with the artifact's
statistics, the drawn crops, seeding, VQ windows, collates and the typed errors."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from training_helpers import write_folder

from hftrainer_mogents.errors import ArtifactFormatError, ArtifactNotFoundError, InvalidInputError
from hftrainer_mogents.training.data import (
    HumanML3DFolder,
    MotionWindowDataset,
    Text2MotionDataset,
    collate_motion_windows,
    collate_text_motion,
    seed_worker,
)

LENGTHS = {"a": 30, "b": 64, "c": 120, "d": 210}
CAPTIONS = {
    # 30 frames: too short, skipped whole
    "a": ["a person waves#a/DET person/NOUN#0.0#0.0"],
    # 64 frames: whole clip (an untagged and a NaN-tagged caption) + frames 10:50
    "b": [
        "a person walks#a/DET person/NOUN walk/VERB#0.0#0.0",
        "a person jumps#a/DET#0.5#2.5",
        "someone runs#someone/PRON#0.0#nan",
    ],
    # 120 frames: tagged only -> 0:60 kept, 20:50 (30 frames) dropped, 40:200 clipped to 80 kept;
    # no whole-clip item; one malformed line
    "c": [
        "a person kicks#a/DET#0.0#3.0",
        "a person turns#a/DET#1.0#2.5",
        "a person sits#a/DET#2.0#10.0",
        "a line without its tags",
    ],
    # 210 frames: too long, skipped whole (its sub-clip too); one malformed time tag
    "d": ["a person dances#a/DET#0.0#0.0", "a person bows#a/DET#0.0#3.0", "bad#x#abc#1.0"],
}


@pytest.fixture()
def folder(tmp_path):
    raw = write_folder(tmp_path / "h3d", LENGTHS, CAPTIONS)
    return tmp_path / "h3d", raw


@pytest.fixture()
def stats():
    rng = np.random.default_rng(11)
    return rng.normal(size=263), rng.uniform(0.5, 2.0, size=263)


def _dataset(root, stats, seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Text2MotionDataset(root, "train", *stats, seed=seed)


def test_items_follow_the_official_rules(folder, stats):
    root, raw = folder
    ds = _dataset(root, stats)
    # by hand: sub-clips frames [int(s*20), int(e*20)) kept when 40 <= len < 200, ids with
    # T < 40 or T >= 200 dropped, whole clip only with an untagged caption; sorted by length
    expected = [
        ("b@10-50", 40, ("a person jumps",)),
        ("c@0-60", 60, ("a person kicks",)),
        ("b", 64, ("a person walks", "someone runs")),
        ("c@40-200", 80, ("a person sits",)),
    ]
    assert [(c.key, c.length, c.captions) for c in ds.clips] == expected
    assert len(ds) == 4
    np.testing.assert_array_equal(ds.clips[0].motion, raw["b"][10:50])
    np.testing.assert_array_equal(ds.clips[3].motion, raw["c"][40:120])


def test_malformed_lines_skipped_with_one_counting_warning(folder, stats):
    root, _ = folder
    with pytest.warns(UserWarning) as record:
        Text2MotionDataset(root, "train", *stats, seed=0)
    messages = [str(w.message) for w in record if "malformed" in str(w.message)]
    assert len(messages) == 1
    assert "skipped 2 malformed caption line(s) in 2 file(s)" in messages[0]
    assert "c.txt" in messages[0] and "d.txt" in messages[0]
    captions, bad = HumanML3DFolder(root).read_captions("c")
    assert bad == 1 and [c.text for c in captions][:1] == ["a person kicks"]
    nan_tagged = HumanML3DFolder(root).read_captions("b")[0][2]
    assert (nan_tagged.start, nan_tagged.end, nan_tagged.tagged) == (0.0, 0.0, False)


def _find_start(window, source, mean, std):
    normalised = ((source.astype(np.float64) - mean) / std).astype(np.float32)
    m = window.shape[0]
    return [
        s
        for s in range(source.shape[0] - m + 1)
        if np.allclose(window, normalised[s : s + m], atol=1e-6)
    ]


def test_crops_normalised_with_the_given_stats_and_padded(folder, stats):
    root, _ = folder
    mean, std = stats
    ds = _dataset(root, stats, seed=3)
    seen_m = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        for index, clip in enumerate(ds.clips):
            caption, motion, m = ds[index]
            assert caption in clip.captions
            assert motion.shape == (196, 263) and motion.dtype == np.float32
            assert m % 4 == 0 and 36 <= m <= 196
            assert m in (clip.length // 4 * 4, (clip.length // 4 - 1) * 4)
            assert not motion[m:].any()
            # an independent normalisation finds the crop at a valid start
            assert _find_start(motion[:m], clip.motion, mean, std)
            seen_m.add((index, m))
    # both single and double crops occur
    assert {(0, 40), (0, 36)} <= seen_m
    # the folder's own statistics are not used
    clip = ds.clips[2]
    _, motion, m = ds[2]
    folder_mean, folder_std = clip.motion.mean(0), clip.motion.std(0)
    assert not _find_start(motion[:m], clip.motion, folder_mean, folder_std)


def test_same_seed_same_items_other_seed_different(folder, stats):
    root, _ = folder

    def draws(seed):
        ds = _dataset(root, stats, seed=seed)
        return [
            (c, m, mo.tobytes()) for _ in range(5) for c, mo, m in (ds[i] for i in range(len(ds)))
        ]

    assert draws(0) == draws(0)
    assert draws(0) != draws(1)
    ds = _dataset(root, stats, seed=0)
    first = [ds[i][2] for i in range(len(ds))]
    ds.seed(0)
    assert [ds[i][2] for i in range(len(ds))] == first


def test_vq_windows_count_and_starts(folder, stats):
    root, raw = folder
    mean, std = stats
    ds = MotionWindowDataset(root, "train", mean, std)
    assert ds.ids == ["b", "c", "d"]  # T >= 64
    # counts T - 64 = [0, 56, 146]; k = 0 -> (0, 0), else motion searchsorted - 1, start
    # k - cum[i] - 1: b's lone window at k = 0, c's starts 0..55, d's starts 0..144
    expected = [(0, 0)] + [(1, s) for s in range(56)] + [(2, s) for s in range(145)]
    assert len(ds) == 202 == len(expected)
    assert [ds.locate(k) for k in range(len(ds))] == expected
    window = ds[57]
    assert window.shape == (64, 263) and window.dtype == np.float32
    np.testing.assert_allclose(window, (raw["d"][0:64] - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ds[56], (raw["c"][55:119] - mean) / std, rtol=1e-5, atol=1e-5)
    with pytest.raises(IndexError):
        ds.locate(202)


def test_collates_with_a_dataloader(folder, stats):
    root, _ = folder
    ds = _dataset(root, stats, seed=0)
    batch = next(iter(DataLoader(ds, batch_size=3, collate_fn=collate_text_motion)))
    assert len(batch["captions"]) == 3
    assert batch["motions"].shape == (3, 196, 263) and batch["motions"].dtype == torch.float32
    assert batch["lengths"].dtype == torch.long and batch["lengths"].shape == (3,)
    for row, m in enumerate(batch["lengths"].tolist()):
        assert not batch["motions"][row, m:].any()
    vq = MotionWindowDataset(root, "train", *stats)
    batch = next(iter(DataLoader(vq, batch_size=4, collate_fn=collate_motion_windows)))
    assert batch["motions"].shape == (4, 64, 263)
    assert batch["lengths"].tolist() == [64] * 4
    ragged = collate_motion_windows([np.ones((5, 263), np.float32), np.ones((3, 263), np.float32)])
    assert ragged["motions"].shape == (2, 5, 263) and ragged["lengths"].tolist() == [5, 3]
    assert not ragged["motions"][1, 3:].any()


def test_typed_errors_name_the_file(tmp_path, stats):
    missing = tmp_path / "nowhere"
    with pytest.raises(ArtifactNotFoundError, match=re.escape(str(missing))):
        HumanML3DFolder(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactNotFoundError, match="new_joint_vecs"):
        HumanML3DFolder(tmp_path / "empty")

    root = tmp_path / "h3d"
    write_folder(root, LENGTHS, CAPTIONS)
    (root / "val.txt").unlink()
    with pytest.raises(ArtifactNotFoundError, match=re.escape(str(root / "val.txt"))):
        MotionWindowDataset(root, "val", *stats)

    bad = root / "new_joint_vecs" / "c.npy"
    np.save(bad, np.zeros((120, 262), np.float32))
    with pytest.raises(ArtifactFormatError, match=re.escape(str(bad)) + r".*\(120, 262\)"):
        MotionWindowDataset(root, "train", *stats)
    nan = np.zeros((120, 263), np.float32)
    nan[17, 5] = np.nan
    np.save(bad, nan)
    with pytest.raises(ArtifactFormatError, match=re.escape(str(bad)) + ".*frame 17"):
        _dataset(root, stats)
    nan[17, 5] = np.inf
    np.save(bad, nan)
    with pytest.raises(ArtifactFormatError, match=re.escape(str(bad))):
        _dataset(root, stats)

    (root / "train.txt").write_text("b\nghost\n")
    with pytest.raises(
        ArtifactNotFoundError, match=re.escape(str(root / "new_joint_vecs" / "ghost.npy"))
    ):
        MotionWindowDataset(root, "train", *stats)
    (root / "train.txt").write_text("b\n")
    (root / "texts" / "b.txt").unlink()
    with pytest.raises(ArtifactNotFoundError, match=re.escape(str(root / "texts" / "b.txt"))):
        _dataset(root, stats)
    # the VQ needs no captions; b (64 frames, first) gives one window, d 146 - 1 (the last loses one)
    (root / "train.txt").write_text("b\nd\n")
    assert len(MotionWindowDataset(root, "train", *stats)) == 146


def test_bad_stats_and_empty_splits(folder, stats):
    root, _ = folder
    mean, std = stats
    with pytest.raises(InvalidInputError, match="shape"):
        MotionWindowDataset(root, "train", mean[:10], std)
    with pytest.raises(InvalidInputError, match="non-positive"):
        MotionWindowDataset(root, "train", mean, np.zeros(263))
    with pytest.raises(InvalidInputError, match="unknown split"):
        HumanML3DFolder(root).split_ids("dev")
    (root / "test.txt").write_text("a\n")
    with pytest.raises(InvalidInputError, match="no clip"):
        _dataset_split(root, stats, "test")
    with pytest.raises(InvalidInputError, match="no motion"):
        MotionWindowDataset(root, "test", mean, std)


def _dataset_split(root, stats, split):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Text2MotionDataset(root, split, *stats, seed=0)


def test_seeded_workers_reproduce_a_run(folder, stats):
    root, _ = folder

    def run():
        ds = _dataset(root, stats, seed=None)
        loader = DataLoader(
            ds,
            batch_size=2,
            num_workers=2,
            collate_fn=collate_text_motion,
            worker_init_fn=seed_worker,
            generator=torch.Generator().manual_seed(5),
            shuffle=True,
        )
        return [(b["captions"], b["lengths"].tolist(), b["motions"].sum().item()) for b in loader]

    assert run() == run()
