"""The editing page's figure (docs/editing.md): an in-between edit and a three-prompt long
motion from an artifact (the tiny test release gives random-weight output).

    python scripts/plot_edit.py ARTIFACT docs/edit_and_long.png
"""

from __future__ import annotations

import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hftrainer_mogents.pipeline import MoGenTSPipeline, decoder_reach  # noqa: E402


def _ric(m: np.ndarray) -> np.ndarray:
    return m[:, 4:67].reshape(len(m), 21, 3)


def main(model: str, out: str) -> None:
    pipe = MoGenTSPipeline.from_pretrained(model, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    reach = decoder_reach(pipe.bundle.config.vq)
    src = pipe(["a person walks forward"], [196], seed=0).motions[0]
    edited = pipe.edit(src, "a person jumps", [(0, 40), (156, 196)], seed=1).motions[0]
    tokens = (t[None] for t in pipe._encode_motion(src))
    recon = pipe.bundle.denormalize(pipe._decode_motion(*tokens))[0].numpy()
    texts, lengths = ["walks forward", "sits down", "waves"], [120, 160, 196]
    long = pipe.generate_long(texts, lengths, seed=0).motions[0]

    fig, ax = plt.subplots(1, 2, figsize=(11, 3.4))
    wrist = 19  # right wrist among the 21 root-relative joints
    ax[0].plot(_ric(recon)[:, wrist, 1], label="source (VQ reconstruction)")
    ax[0].plot(_ric(edited)[:, wrist, 1], label="edit, frames 40:156 re-generated")
    for a, b in [(0, 40), (156, 196)]:
        ax[0].axvspan(a, b, color="0.9")
    for x in (40 - reach, 156 + reach):
        ax[0].axvline(x, color="0.5", ls=":")
    ax[0].set(title="edit: right-wrist height (root-relative)", xlabel="frame", ylabel="m")
    ax[0].legend(fontsize=7)
    speed = np.linalg.norm(np.diff(_ric(long), axis=0), axis=-1).mean(-1)
    ax[1].plot(speed, lw=0.8)
    for x in (80, 120, 240, 280):  # the two cross-fades' edges
        ax[1].axvline(x, color="r", ls=":", lw=0.8)
    ax[1].set(
        title="generate_long 120+160+196: joint speed (root-relative)",
        xlabel="frame",
        ylabel="m/frame",
    )
    fig.tight_layout()
    fig.savefig(out, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
