"""MoGenTSPipeline: official parity (reference mode), fast mode, seeds, inputs."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

import hftrainer_mogents
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.generation_config import GenerationConfig
from hftrainer_mogents.modeling.sampling import Draws
from hftrainer_mogents.pipeline import MoGenTSPipeline, normalize_length, sample_seed

PROMPTS = [
    "a person walks forward and then turns around.",
    "a man jumps up and down twice.",
    "someone waves with the right hand while standing still.",
]
ESTLEN_PROMPTS = [
    "a person walks in a circle.",
    "the man kicks with his left leg.",
    "a figure crouches down, then stands back up and stretches.",
]


def _assert_matches_fixture(out, ref, name):
    for i, n in enumerate(ref["token_lens"].tolist()):
        assert out.lengths[i] == 4 * n, f"{name}[{i}]: length {out.lengths[i]} != {4 * n}"
        tok = out.tokens[i]
        assert np.array_equal(tok["ids_aux"], ref["res_ids_aux"][i, :n]), f"{name}[{i}] aux ids"
        assert np.array_equal(tok["ids_ts"], ref["res_ids_ts"][i, :n]), f"{name}[{i}] ts ids"
        assert np.array_equal(tok["ids_aux"][:, 0], ref["base_ids_aux"][i, :n])
        assert np.array_equal(tok["ids_ts"][..., 0], np.maximum(ref["base_ids_ts"][i, :n], 0))
        err = float(np.abs(out.motions[i] - ref["motion"][i, : 4 * n]).max())
        assert err <= 1e-5 * max(1.0, float(np.abs(ref["motion"]).max())), (
            f"{name}[{i}] motion {err:.3g}"
        )
        assert out.motions[i].dtype == np.float32


@pytest.mark.parametrize(
    ("fixture", "seed", "steps"),
    [("generate_ts10", 10107, 10), ("generate_ts18", 10107, 18), ("generate_ts10_alt", 10108, 10)],
)
def test_reference_mode_reproduces_official_generation(
    tiny_pipeline, tiny_root, fixture, seed, steps
):
    ref = np.load(tiny_root / f"{fixture}.npz")
    # the fixture's fp16 CLIP features (computed on its machine) for these prompts
    feats = np.load(tiny_root / "modules.npz")["clip_feat_fp16path"][:3]
    out = tiny_pipeline(
        PROMPTS,
        [120, 66, 196],
        time_steps=steps,
        seed=seed,
        mode="reference",
        text_features=feats,
        return_tokens=True,
    )
    _assert_matches_fixture(out, ref, fixture)


def test_reference_mode_reproduces_estimated_lengths(tiny_pipeline, tiny_root):
    ref = np.load(tiny_root / "generate_estlen_ts18.npz")
    out = tiny_pipeline(
        ESTLEN_PROMPTS, None, time_steps=18, seed=7, mode="reference", return_tokens=True
    )
    _assert_matches_fixture(out, ref, "generate_estlen_ts18")


def test_fast_mode_computes_the_reference_logits(tiny_pipeline, monkeypatch):
    """The fast path (text once, batched CFG, per-sample scramble/clip/decoding) with the
    reference draws: same logits at every call, hence the same tokens, for a batch of one (where
    upstream's batch coupling vanishes) and, for the mask transformers, for a padded batch."""
    b = tiny_pipeline.bundle
    records: dict[str, list[torch.Tensor]] = {}
    for attr in (
        "mask_transformer_aux",
        "mask_transformer_ts",
        "res_transformer_aux",
        "res_transformer_ts",
    ):
        module = getattr(b, attr)
        original = module.forward_with_cond_scale

        def recorder(*args, _orig=original, _name=attr, **kwargs):
            out = _orig(*args, **kwargs)
            records.setdefault(_name, []).append(out.detach().clone())
            return out

        monkeypatch.setattr(module, "forward_with_cond_scale", recorder)

    def run(reference: bool, texts, frames):
        records.clear()
        g = torch.Generator().manual_seed(3)
        tl = torch.tensor([f // 4 for f in frames])
        cond = b.encode_text(texts)
        with torch.inference_mode():
            ids = tiny_pipeline._decode_tokens(
                tl, Draws.reference(g), GenerationConfig(), lambda: cond, reference=reference
            )
        return ids, {k: list(v) for k, v in records.items()}

    for texts, frames, names in [
        (
            PROMPTS[:1],
            [120],
            (
                "mask_transformer_aux",
                "mask_transformer_ts",
                "res_transformer_aux",
                "res_transformer_ts",
            ),
        ),
        (
            PROMPTS,
            [120, 64, 196],
            ("mask_transformer_aux", "mask_transformer_ts", "res_transformer_aux"),
        ),
    ]:
        ids_ref, logits_ref = run(True, texts, frames)
        ids_fast, logits_fast = run(False, texts, frames)
        for name in names:
            assert len(logits_ref[name]) == len(logits_fast[name])
            for step, (a, c) in enumerate(zip(logits_ref[name], logits_fast[name])):
                err = (a - c).abs().max().item()
                assert err <= 1e-5 * max(1.0, a.abs().max().item()), (
                    f"{name} call {step}: {err:.3g}"
                )
        if len(texts) == 1:
            assert torch.equal(ids_ref[0], ids_fast[0]) and torch.equal(ids_ref[1], ids_fast[1])


def test_fast_mode_is_batch_independent(tiny_pipeline):
    texts = ["a person runs", "a person sits down", "a person waves"]
    together = tiny_pipeline(texts, [120, 64, 196], seed=11, return_tokens=True)
    alone = tiny_pipeline(texts, [120, 64, 196], seed=11, batch_size=1, return_tokens=True)
    other = tiny_pipeline(
        [texts[0], "someone dances wildly", texts[2]], [120, 160, 196], seed=11, return_tokens=True
    )
    for i in range(3):
        assert np.array_equal(together.tokens[i]["ids_ts"], alone.tokens[i]["ids_ts"])
        np.testing.assert_allclose(together.motions[i], alone.motions[i], atol=1e-5, rtol=0)
    for i in (0, 2):  # neighbours changed text and length: these samples do not move
        assert np.array_equal(together.tokens[i]["ids_aux"], other.tokens[i]["ids_aux"])
        assert np.array_equal(together.tokens[i]["ids_ts"], other.tokens[i]["ids_ts"])
        np.testing.assert_allclose(together.motions[i], other.motions[i], atol=1e-5, rtol=0)


def test_seeds(tiny_pipeline):
    a = tiny_pipeline.infer_t2m(["a person jumps"], [80], seed=5)
    b = tiny_pipeline.infer_t2m(["a person jumps"], [80], seed=5)
    c = tiny_pipeline.infer_t2m(["a person jumps"], [80], seed=6)
    assert np.array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    drawn = tiny_pipeline(["a person jumps"], [80])
    again = tiny_pipeline(["a person jumps"], [80], seed=drawn.seed)
    assert np.array_equal(drawn.motions[0], again.motions[0])
    ref1 = tiny_pipeline(["a person jumps"], [80], seed=5, mode="reference")
    ref2 = tiny_pipeline(["a person jumps"], [80], seed=5, mode="reference")
    assert np.array_equal(ref1.motions[0], ref2.motions[0])
    assert sample_seed(5, 0) != sample_seed(5, 1) and sample_seed(5, 0) == sample_seed(5, 0)


def test_generators(tiny_pipeline):
    texts, lengths = ["a person jumps", "a person sits down", "a person waves"], [80, 64, 120]
    seeded = tiny_pipeline(texts, lengths, seed=5, return_tokens=True)
    # one generator per text, seeded as seed=5 seeds its samples: the same motions
    gens = [torch.Generator().manual_seed(sample_seed(5, i)) for i in range(3)]
    listed = tiny_pipeline(texts, lengths, generator=gens, return_tokens=True)
    assert listed.seed is None and listed.settings["seed"] is None
    for a, b in zip(seeded.tokens, listed.tokens):
        assert np.array_equal(a["ids_ts"], b["ids_ts"])
    for a, b in zip(seeded.motions, listed.motions):
        np.testing.assert_array_equal(a, b)
    # a sample keeps its generator's motion at any index, in any batch
    moved = tiny_pipeline(
        ["someone dances", texts[2]],
        [196, 120],
        generator=[
            torch.Generator().manual_seed(1),
            torch.Generator().manual_seed(sample_seed(5, 2)),
        ],
        batch_size=1,
        return_tokens=True,
    )
    assert np.array_equal(moved.tokens[1]["ids_ts"], seeded.tokens[2]["ids_ts"])
    np.testing.assert_allclose(moved.motions[1], seeded.motions[2], atol=1e-5, rtol=0)
    # one generator seeds the call (its draw is returned) and advances between calls
    g = torch.Generator().manual_seed(3)
    first = tiny_pipeline(texts[:1], lengths[:1], generator=g)
    second = tiny_pipeline(texts[:1], lengths[:1], generator=g)
    assert first.seed != second.seed
    assert not np.array_equal(first.motions[0], second.motions[0])
    again = tiny_pipeline(texts[:1], lengths[:1], seed=first.seed)
    np.testing.assert_array_equal(again.motions[0], first.motions[0])
    # a list always means one generator per text, even of one: seeded with sample_seed(S, 0) it
    # draws what seed=S draws for text 0
    one = tiny_pipeline(
        texts[:1],
        lengths[:1],
        generator=[torch.Generator().manual_seed(sample_seed(first.seed, 0))],
    )
    np.testing.assert_array_equal(one.motions[0], first.motions[0])
    with pytest.raises(InvalidInputError, match="2 texts but 1 generators"):
        tiny_pipeline(texts[:2], lengths[:2], generator=[torch.Generator()])


def test_reference_mode_takes_the_official_generator(tiny_pipeline):
    texts, lengths = ["a person jumps", "a person waves"], [80, 120]
    seeded = tiny_pipeline(texts, lengths, seed=10107, mode="reference", return_tokens=True)
    g = torch.Generator().manual_seed(10107)
    given = tiny_pipeline(texts, lengths, generator=g, mode="reference", return_tokens=True)
    for a, b in zip(seeded.tokens, given.tokens):
        assert np.array_equal(a["ids_ts"], b["ids_ts"])
    for a, b in zip(seeded.motions, given.motions):
        np.testing.assert_array_equal(a, b)
    # the caller's generator runs on across batches; seed= re-seeds each batch
    alone = [
        tiny_pipeline([t], [n], seed=10107, mode="reference").motions[0]
        for t, n in zip(texts, lengths)
    ]
    kwargs = dict(batch_size=1, mode="reference")
    split = tiny_pipeline(texts, lengths, generator=torch.Generator().manual_seed(10107), **kwargs)
    np.testing.assert_array_equal(split.motions[0], alone[0])
    assert not np.array_equal(split.motions[1], alone[1])
    reseeded = tiny_pipeline(texts, lengths, seed=10107, **kwargs)
    np.testing.assert_array_equal(reseeded.motions[1], alone[1])


def test_outputs_are_physical_units(tiny_pipeline):
    out = tiny_pipeline(["a person walks"], [40], seed=0, return_tokens=True)
    motion = out.motions[0]
    assert motion.shape == (40, 263) and motion.dtype == np.float32
    # decode the same tokens independently and denormalise with Mean/Std
    b = tiny_pipeline.bundle
    tok = out.tokens[0]
    with torch.no_grad():
        _, y = b.vq_model.forward_decoder(
            torch.from_numpy(tok["ids_aux"])[None], torch.from_numpy(tok["ids_ts"])[None]
        )
    expected = y[0].numpy() * b.std.numpy() + b.mean.numpy()
    np.testing.assert_allclose(motion, expected, atol=1e-5)
    motions, lengths = tiny_pipeline(["a person walks"], [40], seed=0, return_dict=False)
    assert lengths == [40] and np.array_equal(motions[0], motion)


def test_estimated_lengths_fast_mode(tiny_pipeline):
    out = tiny_pipeline(ESTLEN_PROMPTS, None, seed=3)
    for motion, n in zip(out.motions, out.lengths):
        assert motion.shape[0] == n and n % 4 == 0 and 40 <= n <= 196


def test_zero_token_estimate_is_guarded(tiny_artifact, caplog):
    pipe = MoGenTSPipeline.from_pretrained(tiny_artifact, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    with torch.no_grad():
        pipe.bundle.length_estimator.output[11].bias[0] = 1e4  # always predicts 0 tokens
    with caplog.at_level(logging.WARNING):
        fast = pipe(["a person walks"], None, seed=0)
        ref = pipe(["a person walks"], None, seed=0, mode="reference")
    assert fast.lengths == [40] and ref.lengths == [4]
    assert "0 tokens -> 10" in caplog.text and "0 tokens -> 1" in caplog.text


@pytest.mark.parametrize(
    ("frames", "expected"),
    [(120, 120), (66, 64), (300, 196), (197.9, 196), (np.int64(44), 44), (40.0, 40)],
)
def test_length_rules(frames, expected, caplog):
    with caplog.at_level(logging.WARNING):
        assert normalize_length(frames) == expected
    if frames != expected:
        assert f"{frames} frames -> {expected}" in caplog.text


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        (0, r"length = 0 frames is below the model's minimum of 40 .*clamp=True"),
        (39.9, "below the model's minimum"),
        (True, "must be a number of frames at 20 fps, got bool True"),
        ("80", "must be a number of frames at 20 fps, got str '80'"),
        (None, "must be a number of frames"),
        (-4, "finite, non-negative"),
        (float("nan"), "finite, non-negative"),
    ],
)
def test_lengths_that_are_not_motion_lengths_are_refused(frames, match):
    with pytest.raises(InvalidInputError, match=match):
        normalize_length(frames)


def test_clamp_true_raises_short_lengths_and_clamp_false_takes_numbers_only(caplog):
    with caplog.at_level(logging.WARNING):
        assert normalize_length(10, raise_short=True) == 40
    assert "10 frames -> 40" in caplog.text
    with pytest.raises(InvalidInputError, match="must be a number"):
        normalize_length(True, raise_short=True)
    from hftrainer_mogents.pipeline import _check_lengths

    assert _check_lengths([44, 196.0], 2, clamp=False) == [44, 196]
    for bad in ("80", True):
        with pytest.raises(InvalidInputError, match=r"lengths\[0\] must be a number"):
            _check_lengths([bad], 1, clamp=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(texts=[]), "texts is empty"),
        (dict(texts=["ok", "  "]), r"texts\[1\] is empty"),
        (dict(texts=["ok", 3]), r"texts\[1\] must be a string"),
        (dict(texts=["a", "b"], lengths=[80]), "2 texts but 1 lengths"),
        (dict(lengths=[-4]), "non-negative"),
        (dict(lengths=[math.nan]), "finite"),
        (dict(lengths=["long"]), "number of frames"),
        (dict(time_steps=0), "time_steps must be an integer >= 1"),
        (dict(cond_scale=-1.0), "cond_scale must be a finite number >= 0"),
        (dict(res_cond_scale=math.inf), "res_cond_scale"),
        (dict(topkr=1.0), "topkr must be in"),
        (dict(temperature=0.0), "temperature must be"),
        (dict(batch_size=0), "batch_size"),
        (dict(mode="turbo"), "mode must be one of"),
        (dict(seed=1, generator=torch.Generator()), "seed or generator, not both"),
        (dict(seed="7"), "seed must be an integer"),
        (dict(seed=2**63), r"seed must be in \[0, 2\*\*63\), got 9223372036854775808"),
        (dict(seed=-1), r"seed must be in \[0, 2\*\*63\), got -1"),
        (dict(texts=["\x07\x08"]), r"texts\[0\] .* has no words"),
        (dict(texts=["a person walks", "\ufeff\x00\x1b\x7f"]), r"texts\[1\] .* has no words"),
        (dict(generator=[torch.Generator(), 3]), r"generator\[1\] must be a torch.Generator"),
        (
            dict(texts=["a", "b", "c"], lengths=None, generator=[torch.Generator()] * 2),
            "3 texts but 2 generators",
        ),
        (
            dict(
                texts=["a", "b"], lengths=None, generator=[torch.Generator()] * 2, mode="reference"
            ),
            "draws from one generator",
        ),
        (
            dict(text_features=np.zeros((2, 512), dtype=np.float32)),
            r"text_features must be a float \(1, 512\)",
        ),
    ],
)
def test_bad_input_is_refused_before_any_compute(tiny_pipeline, kwargs, match):
    call = dict(texts=["a person walks"], lengths=[80])
    call.update(kwargs)
    texts = call.pop("texts")
    lengths = call.pop("lengths")
    with pytest.raises(InvalidInputError, match=match):
        tiny_pipeline(texts, lengths, **call)


def test_unavailable_device(tiny_artifact):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(InvalidInputError, match="CUDA is not available"):
        MoGenTSPipeline.from_pretrained(tiny_artifact, device="cuda")
    with pytest.raises(InvalidInputError, match="not a device name"):
        MoGenTSPipeline.from_pretrained(tiny_artifact, device="gpu-ish")


def test_needs_lengths_without_estimator(tiny_artifact):
    pipe = MoGenTSPipeline.from_pretrained(tiny_artifact, device="cpu", load_length_estimator=False)
    with pytest.raises(InvalidInputError, match="length estimator"):
        pipe(["a person walks"])


def test_bf16_pipeline_runs(tiny_artifact, tiny_pipeline):
    pipe = MoGenTSPipeline.from_pretrained(tiny_artifact, device="cpu", dtype=torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(PROMPTS, [120, 64, 196], seed=1)
    assert all(np.isfinite(m).all() and m.dtype == np.float32 for m in out.motions)
    assert [m.shape[0] for m in out.motions] == [120, 64, 196]


def test_zoo_load_returns_the_pipeline(tiny_artifact):
    pipe = hftrainer_mogents.load("mogents", str(tiny_artifact), device="cpu")
    assert isinstance(pipe, MoGenTSPipeline)
    assert isinstance(hftrainer_mogents.MoGenTSPipeline, type)


def test_zoo_generation_defaults_are_the_pipeline_defaults(tiny_pipeline):
    from hftrainer_mogents.zoo.plugin import MODELS

    assert dict(MODELS[0].generation_kwargs) == GenerationConfig().to_dict()
    assert tiny_pipeline.generation_config == GenerationConfig()


def test_generation_config_and_keyword_settings_are_one(tiny_pipeline):
    """A config, keyword overrides and the pipeline's own default config give the same draws."""
    texts, lengths = PROMPTS[:2], [64, 80]
    config = GenerationConfig(time_steps=3, cond_scale=2.0)
    by_config = tiny_pipeline(texts, lengths, generation_config=config, seed=5)
    by_keywords = tiny_pipeline(texts, lengths, time_steps=3, cond_scale=2.0, seed=5)
    overridden = tiny_pipeline(
        texts, lengths, generation_config=config.replace(time_steps=10), time_steps=3, seed=5
    )
    for a, b, c in zip(by_config.motions, by_keywords.motions, overridden.motions):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert by_config.generation_config == config
    assert by_config.settings["time_steps"] == 3 and by_config.settings["cond_scale"] == 2.0
    default = tiny_pipeline(texts, lengths, seed=5)
    assert default.generation_config == GenerationConfig()
    assert not all(np.array_equal(a, b) for a, b in zip(default.motions, by_config.motions))


def test_a_caption_longer_than_clip_is_cut_with_a_warning(tiny_pipeline, caplog):
    long = "a person walks forward " + "and turns around " * 30
    with caplog.at_level(logging.WARNING, logger="hftrainer_mogents.modeling.tokenizer"):
        tiny_pipeline([long], [40], seed=0, time_steps=1)
    assert "texts[0] is longer than CLIP's 77 tokens and is cut to: 'a person walks forward" in (
        caplog.text
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hftrainer_mogents.modeling.tokenizer"):
        tiny_pipeline(["a person walks forward"], [40], seed=0, time_steps=1)
    assert "cut to" not in caplog.text


def test_infer_t2m_takes_the_zoo_positional_order_and_clamp(tiny_pipeline, caplog):
    """The zoo's call: infer_t2m(captions, lengths, cond_scale, time_steps, topkr, temperature,
    res_cond_scale, res_temperature, gumbel_sample, clamp)."""
    texts, lengths = PROMPTS[:2], [64, 80]
    settings = GenerationConfig(
        cond_scale=2.5,
        time_steps=3,
        topkr=0.8,
        temperature=1.2,
        res_cond_scale=3.0,
        res_temperature=0.9,
        gumbel_sample=True,
    )
    positional = tiny_pipeline.infer_t2m(
        texts, lengths, 2.5, 3, 0.8, 1.2, 3.0, 0.9, True, True, seed=7
    )
    by_config = tiny_pipeline.infer_t2m(texts, lengths, generation_config=settings, seed=7)
    out = tiny_pipeline(texts, lengths, 2.5, 3, 0.8, 1.2, 3.0, 0.9, True, seed=7)
    assert out.generation_config == settings
    for a, b, c in zip(positional, by_config, out.motions):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    # clamp=True (the zoo's clamp_length) raises short lengths to the minimum, with a warning;
    # without it a length below the minimum is refused
    with caplog.at_level(logging.WARNING):
        clamped = tiny_pipeline.infer_t2m(
            ["a person walks"], [30], time_steps=2, clamp=True, seed=0
        )
    assert clamped[0].shape[0] == 40 and "-> 40" in caplog.text
    with pytest.raises(InvalidInputError, match="below the model's minimum of 40"):
        tiny_pipeline.infer_t2m(["a person walks"], [30], time_steps=2, seed=0)
    # clamp=False uses valid lengths as given and refuses the others, naming the fix
    exact = tiny_pipeline.infer_t2m(["a person walks"], [44], time_steps=2, clamp=False, seed=0)
    assert exact[0].shape[0] == 44
    for bad in (30, 41, 200):
        with pytest.raises(InvalidInputError, match=r"lengths\[0\] = .*clamp=True"):
            tiny_pipeline.infer_t2m(["a person walks"], [bad], clamp=False, seed=0)
    with pytest.raises(InvalidInputError, match="clamp must be None, True or False"):
        tiny_pipeline.infer_t2m(["a person walks"], [44], clamp="no", seed=0)
