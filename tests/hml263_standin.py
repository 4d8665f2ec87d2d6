"""Test helpers for the HumanML3D-263 protocol: a small HumanML3D-layout folder and a STAND-IN
generator.

``GroundTruthPlusNoise`` is not a model: it returns the ground-truth clip of the caption it is
given plus seeded noise, so the protocol layer (planning, sharding, resuming, evaluation) can be
tested without the MoGenTS pipeline. The end-to-end test with the real tiny pipeline lives with
the pipeline.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np

WORDS = [
    ("person", "NOUN"),
    ("man", "NOUN"),
    ("figure", "NOUN"),
    ("walk", "VERB"),
    ("run", "VERB"),
    ("jump", "VERB"),
    ("turn", "VERB"),
    ("forward", "ADV"),
    ("left", "ADV"),
    ("slowly", "ADV"),
    ("quickly", "ADV"),
    ("the", "DET"),
    ("with", "ADP"),
    ("arm", "NOUN"),
    ("leg", "NOUN"),
]


def _caption(rng: np.random.Generator, n_words: int) -> tuple[str, str]:
    picks = [WORDS[i] for i in rng.integers(0, len(WORDS), n_words)]
    text = "a " + " ".join(w for w, _ in picks) + "."
    tokens = " ".join(["a/DET"] + [f"{w}/{p}" for w, p in picks])
    return text, tokens


def make_humanml3d(
    root: Path, mean: np.ndarray, std: np.ndarray, n_clips: int = 60, seed: int = 0
) -> Path:
    """Write a small HumanML3D folder (``split/test.txt`` layout) with random smooth motions,
    two captions per clip (unique sentences), a few time-tagged sub-clips, one clip too short and
    one id without files."""
    rng = np.random.default_rng(seed)
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    (root / "split").mkdir()
    ids = []
    for i in range(n_clips):
        clip_id = f"{i:06d}"
        ids.append(clip_id)
        length = 30 if i == 7 else int(rng.integers(40, 200))
        steps = rng.normal(size=(length, 263)).astype(np.float32)
        smooth = np.cumsum(steps, axis=0) / np.sqrt(np.arange(1, length + 1))[:, None]
        np.save(
            root / "new_joint_vecs" / f"{clip_id}.npy", (mean + std * smooth).astype(np.float32)
        )
        lines = []
        for k in range(2):
            text, tokens = _caption(rng, int(rng.integers(3, 12)))
            lines.append(f"{text[:-1]} {clip_id} {k}.#{tokens}#0.0#0.0")
        if i % 10 == 3 and length > 120:
            text, tokens = _caption(rng, 5)
            lines.append(f"{text[:-1]} {clip_id} sub.#{tokens}#0.5#3.5")
        (root / "texts" / f"{clip_id}.txt").write_text("\n".join(lines) + "\n")
    ids.append("999999")  # listed, no files
    (root / "split" / "test.txt").write_text("\n".join(ids) + "\n")
    return root


class GroundTruthPlusNoise:
    """STAND-IN generator (not a model): the ground-truth clip of each caption, cut to the
    requested length, plus Gaussian noise drawn from ``default_rng([seed, i])`` for sample ``i``
    of the call (so outputs depend on the call's seed and position, like the pipeline's).

    Args:
        root: the HumanML3D folder written by :func:`make_humanml3d`.
        noise: noise scale, in units of the clip's per-channel spread.
        kill_after: SIGKILL this process when this many calls have completed (restart tests).
        fail_texts: captions whose batch raises (failure tests).
    """

    def __init__(
        self,
        root: Path,
        noise: float = 0.3,
        kill_after: int | None = None,
        fail_texts: tuple[str, ...] = (),
    ):
        from hftrainer_mogents.evaluation.hml263.dataset import read_test_split

        split = read_test_split(root)
        self.by_text = {}
        for entry in split.entries:
            for caption in entry.captions:
                self.by_text[caption.text] = split.load_motion(entry)
        self.noise = noise
        self.kill_after = kill_after
        self.fail_texts = set(fail_texts)
        self.calls: list[dict] = []

    def infer_t2m(self, texts, lengths, *, seed=None, batch_size=32, **kwargs):
        if self.kill_after is not None and len(self.calls) >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.fail_texts & set(texts):
            raise RuntimeError("stand-in failure for this batch")
        self.calls.append({"texts": list(texts), "lengths": list(lengths), "seed": seed, **kwargs})
        out = []
        for i, (text, length) in enumerate(zip(texts, lengths)):
            gt = self.by_text[text]
            clip = gt[:length]
            if len(clip) < length:  # the length rule may round a clip up to 40 frames
                clip = np.concatenate([clip, np.repeat(clip[-1:], length - len(clip), 0)])
            rng = np.random.default_rng([int(seed or 0), i])
            out.append(clip + self.noise * gt.std(0) * rng.normal(size=clip.shape))
        return [m.astype(np.float32) for m in out]
