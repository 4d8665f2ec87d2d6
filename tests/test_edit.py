"""Temporal editing (``MoGenTSPipeline.edit``) and long motions (``generate_long``) on the tiny
fixture release, and the decoding loops' editing extension."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import DEVICES

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.modeling.sampling import Draws, masked_decode, residual_decode
from hftrainer_mogents.pipeline import decoder_reach


@pytest.fixture(scope="module")
def source(tiny_pipeline) -> np.ndarray:
    return tiny_pipeline(["a man walks forward"], [120], seed=1).motions[0]


def _source_tokens(pipe, motion):
    ids_aux, ids_ts = pipe._encode_motion(motion)
    return ids_aux.numpy(), ids_ts.numpy()


# ---------------------------------------------------------------------- the decoding loops


def test_masked_decode_keeps_non_editable_tokens():
    torch.manual_seed(0)
    table = torch.randn(1, 7, 5)

    def logits_fn(ids):
        return table.expand(ids.shape[0], ids.shape[1], 5)

    init = torch.tensor([[0, 1, 2, 3, 4, 0, 1], [4, 4, 4, 4, 4, 4, 4]])
    editable = torch.tensor([[False, True, True, False, False, True, False]] * 2)
    out = masked_decode(
        logits_fn,
        torch.tensor([7, 5]),
        n_j=1,
        mask_id=5,
        pad_id=6,
        timesteps=4,
        draws=Draws.per_sample([torch.Generator().manual_seed(i) for i in range(2)]),
        init_ids=init,
        editable=editable,
    )
    keep = ~editable
    assert torch.equal(out[0][keep[0]], init[0][keep[0]])
    assert torch.equal(out[1, :5][keep[1, :5]], init[1, :5][keep[1, :5]])
    assert (out[1, 5:] == -1).all()  # padding
    assert ((out >= 0) & (out < 5))[:, :5].all()  # no mask id left in the valid positions


def test_residual_decode_keeps_every_layer():
    q, v = 3, 4

    def logits_fn(hist, layer):
        return torch.zeros(*hist.shape[:2], v)

    def embed_fn(ids, layer):
        return torch.nn.functional.one_hot(ids.clamp(min=0), v).float()

    keep_ids = torch.tensor([[[1, 2, 3], [0, 0, 0], [3, 2, 1]]])
    keep = torch.tensor([[True, False, True]])
    out = residual_decode(
        logits_fn,
        embed_fn,
        torch.tensor([[0, 0, 0]]),
        torch.zeros(1, 3, dtype=torch.bool),
        num_quantizers=q,
        pad_id=v,
        mask_id=None,
        draws=Draws.per_sample([torch.Generator().manual_seed(0)]),
        keep_ids=keep_ids,
        keep=keep,
    )
    assert torch.equal(out[0, 0], keep_ids[0, 0]) and torch.equal(out[0, 2], keep_ids[0, 2])


def test_decode_extension_needs_both_arguments():
    with pytest.raises(ValueError, match="init_ids and editable go together"):
        masked_decode(
            lambda ids: torch.zeros(*ids.shape, 3),
            torch.tensor([2]),
            n_j=1,
            mask_id=3,
            pad_id=4,
            timesteps=2,
            draws=Draws.per_sample([torch.Generator()]),
            init_ids=torch.zeros(1, 2, dtype=torch.long),
        )


# ---------------------------------------------------------------------- edit


@pytest.mark.parametrize(
    "keep",
    [[(0, 40), (80, 120)], [(0, 60)], [(64, 120)], np.arange(120) % 40 < 20],
    ids=["inbetween", "prefix", "suffix", "mask"],
)
def test_edit_keeps_tokens_in_every_layer(tiny_pipeline, source, keep):
    out = tiny_pipeline.edit(source, "a man jumps", keep, seed=3, return_tokens=True)
    assert out.motions[0].shape == source.shape and out.lengths == [120]
    src_aux, src_ts = _source_tokens(tiny_pipeline, source)
    kept = np.zeros(120, bool)
    if isinstance(keep, np.ndarray):
        kept = keep
    else:
        for a, b in keep:
            kept[a:b] = True
    kept_steps = kept.reshape(30, 4).all(1)
    tok = out.tokens[0]
    # every quantizer layer of both streams at every kept step
    np.testing.assert_array_equal(tok["ids_aux"][kept_steps], src_aux[kept_steps])
    np.testing.assert_array_equal(tok["ids_ts"][kept_steps], src_ts[kept_steps])
    # the edited span is re-generated (a different text and seed: the tokens change)
    assert (tok["ids_aux"][~kept_steps] != src_aux[~kept_steps]).any()
    assert (tok["ids_ts"][~kept_steps] != src_ts[~kept_steps]).any()


def test_edit_changes_frames_only_within_decoder_reach(tiny_pipeline, source):
    reach = decoder_reach(tiny_pipeline.bundle.config.vq)
    out = tiny_pipeline.edit(source, "a man jumps", [(0, 40), (80, 120)], seed=3)
    src_aux, src_ts = _source_tokens(tiny_pipeline, source)
    recon = tiny_pipeline.bundle.denormalize(
        tiny_pipeline._decode_motion(
            torch.from_numpy(src_aux)[None], torch.from_numpy(src_ts)[None]
        )
    )[0].numpy()
    changed = np.flatnonzero(np.abs(out.motions[0] - recon).max(-1) > 1e-5)
    assert changed.min() >= 40 - reach and changed.max() <= 79 + reach
    assert changed.min() < 40 and changed.max() > 79  # the reach is real
    blended = tiny_pipeline.edit(source, "a man jumps", [(0, 40), (80, 120)], seed=3, blend=True)
    far = np.r_[0 : max(0, 40 - reach), min(120, 80 + reach) : 120]
    np.testing.assert_array_equal(blended.motions[0][far], source[far])
    np.testing.assert_array_equal(blended.motions[0][40:80], out.motions[0][40:80])


def test_decoder_reach_matches_a_perturbed_token(tiny_pipeline, source):
    reach = decoder_reach(tiny_pipeline.bundle.config.vq)
    assert reach == 33  # depth 2, growth 3, down_t 2: 4 + 16 + 2 + 8 + 1 + 2
    src_aux, src_ts = (torch.from_numpy(a)[None] for a in _source_tokens(tiny_pipeline, source))
    y0 = tiny_pipeline._decode_motion(src_aux, src_ts)
    step = 15
    other = src_aux.clone()
    other[0, step] = (other[0, step] + 1) % tiny_pipeline.bundle.config.vq.nb_code1d
    changed = torch.nonzero((tiny_pipeline._decode_motion(other, src_ts) - y0).abs().amax(-1)[0])
    assert int(changed.min()) == 4 * step - reach and int(changed.max()) == 4 * step + 3 + reach


def test_edit_is_seeded_and_batch_independent(tiny_pipeline, source):
    keep = [(0, 40)]
    a = tiny_pipeline.edit(source, "a man jumps", keep, seed=7)
    b = tiny_pipeline.edit(source, "a man jumps", keep, seed=7)
    np.testing.assert_array_equal(a.motions[0], b.motions[0])
    other = tiny_pipeline(["someone runs"], [160], seed=2).motions[0]
    batch = tiny_pipeline.edit(
        [other, source], ["someone sits", "a man jumps"], [[(100, 160)], keep], seed=7
    )
    gens = [torch.Generator().manual_seed(5), torch.Generator().manual_seed(9)]
    alone = tiny_pipeline.edit([source], ["a man jumps"], [keep], generator=[gens[1]])
    gens = [torch.Generator().manual_seed(5), torch.Generator().manual_seed(9)]
    pair = tiny_pipeline.edit(
        [other, source], ["someone sits", "a man jumps"], [[(100, 160)], keep], generator=gens
    )
    np.testing.assert_array_equal(alone.motions[0], pair.motions[1])
    assert [len(m) for m in batch.motions] == [160, 120]
    small = tiny_pipeline.edit(
        [other, source],
        ["someone sits", "a man jumps"],
        [[(100, 160)], keep],
        generator=[torch.Generator().manual_seed(5), torch.Generator().manual_seed(9)],
        batch_size=1,
    )
    np.testing.assert_array_equal(small.motions[1], pair.motions[1])
    assert batch.settings["edit"]["keep"] == [[[100, 160]], [[0, 40]]]


@pytest.mark.parametrize(
    ("motion", "keep", "message"),
    [
        (np.zeros((120, 10), np.float32), [(0, 40)], r"must be a float \(T, 263\)"),
        (np.zeros((122, 263), np.float32), [(0, 40)], "has 122 frames"),
        (np.zeros((200, 263), np.float32), [(0, 40)], "has 200 frames"),
        (None, [(40, 20)], r"keep\[0\]\[0\] = \(40, 20\): a range needs 0 <= start < end <= 120"),
        (None, [(0, 121)], r"end <= 120"),
        (None, [(0, 120)], "keeps every frame: nothing to edit"),
        (None, [(0.5, 40)], "a pair of integer frames"),
        (None, np.ones(100, bool), r"one entry per frame \(120,\)"),
        (None, "0:40", "must be a list of"),
    ],
)
def test_edit_refuses_bad_input(tiny_pipeline, source, motion, keep, message):
    with pytest.raises(InvalidInputError, match=message):
        tiny_pipeline.edit(source if motion is None else motion, "a man jumps", keep, seed=0)


def test_edit_keep_mask_as_list_equals_ranges(tiny_pipeline, source):
    mask = [40 <= f < 80 or f >= 100 for f in range(120)]
    a = tiny_pipeline.edit(source, "a man jumps", mask, seed=4)
    b = tiny_pipeline.edit(source, "a man jumps", [(40, 80), (100, 120)], seed=4)
    np.testing.assert_array_equal(a.motions[0], b.motions[0])
    assert a.settings["edit"]["keep"] == [[[40, 80], [100, 120]]]


@pytest.mark.parametrize("device", DEVICES)
def test_edit_keeps_tokens_on_device(tiny_artifact, source, device):
    from hftrainer_mogents.pipeline import MoGenTSPipeline

    pipe = MoGenTSPipeline.from_pretrained(tiny_artifact, device=device)
    pipe.set_progress_bar_config(disable=True)
    out = pipe.edit(source, "a man jumps", [(0, 40), (80, 120)], seed=3, return_tokens=True)
    src_aux, src_ts = (a.cpu().numpy() for a in pipe._encode_motion(source))
    kept = np.r_[0:10, 20:30]
    np.testing.assert_array_equal(out.tokens[0]["ids_aux"][kept], src_aux[kept])
    np.testing.assert_array_equal(out.tokens[0]["ids_ts"][kept], src_ts[kept])
    assert out.motions[0].shape == (120, 263) and np.isfinite(out.motions[0]).all()


def test_edit_refuses_mismatched_batches_and_reference_mode(tiny_pipeline, source):
    with pytest.raises(InvalidInputError, match="got 2 motions, 1 texts and 2 keeps"):
        tiny_pipeline.edit([source, source], ["x"], [[(0, 40)], [(0, 40)]], seed=0)
    with pytest.raises(InvalidInputError, match="mode='fast' only"):
        tiny_pipeline.edit(source, "x", [(0, 40)], seed=0, mode="reference")
    with pytest.raises(InvalidInputError, match="NaN"):
        bad = source.copy()
        bad[3, 3] = np.nan
        tiny_pipeline.edit(bad, "x", [(0, 40)], seed=0)


# ---------------------------------------------------------------------- long motions


def _ric_speed(motion: np.ndarray) -> np.ndarray:
    """Joint speed of the root-relative joint positions (generate_long's docstring)."""
    ric = motion[:, 4 : 4 + 21 * 3].reshape(len(motion), 21, 3)
    return np.linalg.norm(np.diff(ric, axis=0), axis=-1).mean(-1)


def test_generate_long_three_prompts_continuous_seams(tiny_pipeline):
    texts, lengths = ["walks forward", "sits down", "waves"], [120, 160, 196]
    out = tiny_pipeline.generate_long(texts, lengths, seed=1)
    motion = out.motions[0]
    assert motion.shape == (476, 263) and out.lengths == [476]
    assert np.isfinite(motion).all()
    assert out.settings["sequence"] == [{"text": t, "frames": f} for t, f in zip(texts, lengths)]
    # each seam is a cross-fade over the transition (40 frames): check both of its edges
    seams = [79, 119, 239, 279]  # speed index t is the step from frame t to t + 1

    def seam_excess(m, at):
        v = _ric_speed(m)
        return v[at] / np.percentile(np.delete(v, at), 95)

    assert (seam_excess(motion, seams) <= 1.0).all(), seam_excess(motion, seams)
    naive = np.concatenate(
        [tiny_pipeline([t], [n], seed=i).motions[0] for i, (t, n) in enumerate(zip(texts, lengths))]
    )
    assert (seam_excess(naive, [119, 279]) > 1.0).any(), seam_excess(naive, [119, 279])
    # the same call again is identical
    again = tiny_pipeline.generate_long(texts, lengths, seed=1)
    np.testing.assert_array_equal(again.motions[0], motion)


def test_generate_long_single_long_prompt(tiny_pipeline):
    out = tiny_pipeline.generate_long("a person walks in a circle", 600, seed=1, transition=20)
    assert out.motions[0].shape == (600, 263) and np.isfinite(out.motions[0]).all()
    assert all(w["text"] == "a person walks in a circle" for w in out.settings["windows"])
    assert sum(w["new_frames"] for w in out.settings["windows"]) == 600


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lengths": [120, 30]}, r"lengths\[1\] = 30: each segment needs at least 40"),
        ({"lengths": [120]}, "got 2 texts but 1 lengths"),
        ({"lengths": [120, 120], "transition": 42}, "transition must be a multiple of 4"),
        ({"lengths": [120, 120], "transition": 0}, "transition must be"),
    ],
)
def test_generate_long_refuses_bad_input(tiny_pipeline, kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        tiny_pipeline.generate_long(["walks", "sits"], seed=0, **kwargs)


# ---------------------------------------------------------------------- command line


def test_cli_edit_writes_the_edit(tiny_pipeline, tiny_artifact, source, tmp_path):
    import json

    from click.testing import CliRunner

    from hftrainer_mogents.cli import cli

    src = tmp_path / "in.npy"
    np.save(src, source)
    out = tmp_path / "out"
    args = ["edit", str(src), "a man jumps", "--keep", "0:40", "--keep", "80:120"]
    args += ["--model", str(tiny_artifact), "--device", "cpu", "--seed", "3"]
    result = CliRunner().invoke(cli, [*args, "--out", str(out), "--format", "npy,joints"])
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert run["edit"]["keep"] == [[0, 40], [80, 120]] and run["edit"]["text"] == "a man jumps"
    assert run["settings"]["seed"] == 3
    written = np.load(out / run["items"][0]["files"]["npy"])
    expected = tiny_pipeline.edit(source, "a man jumps", [(0, 40), (80, 120)], seed=3)
    np.testing.assert_array_equal(written, expected.motions[0])
    assert np.load(out / run["items"][0]["files"]["joints"]).shape == (120, 22, 3)
    # the destination is checked again: a second run into the same folder is refused
    again = CliRunner().invoke(cli, [*args, "--out", str(out), "--format", "npy"])
    assert again.exit_code != 0 and "already holds" in again.output
    bad = CliRunner().invoke(cli, [*args[:3], "--keep", "0-40", "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "give a frame range START:END" in bad.output
    everything = ["edit", str(src), "x", "--keep", "0:120", "--model", str(tiny_artifact)]
    full = CliRunner().invoke(cli, [*everything, "--out", str(tmp_path / "c")])
    # refused before the model loads, as a usage error naming --keep
    assert full.exit_code == 2 and "keeps every frame: nothing to edit" in full.output
    assert "--keep" in full.output


def test_cli_generate_sequence(tiny_artifact, tmp_path):
    import json

    from click.testing import CliRunner

    from hftrainer_mogents.cli import cli

    out = tmp_path / "seq"
    result = CliRunner().invoke(
        cli,
        [
            "generate",
            "--sequence",
            "walks forward:80",
            "sits down: 60",
            "--model",
            str(tiny_artifact),
            "--device",
            "cpu",
            "--seed",
            "2",
            "--out",
            str(out),
            "--format",
            "npy",
        ],
    )
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert run["sequence"] == [
        {"text": "walks forward", "frames": 80},
        {"text": "sits down", "frames": 60},
    ]
    assert np.load(out / run["items"][0]["files"]["npy"]).shape == (140, 263)
    bad = CliRunner().invoke(
        cli, ["generate", "--sequence", "walks forward", "--out", str(tmp_path / "b")]
    )
    assert bad.exit_code == 2 and "TEXT:FRAMES" in bad.output
