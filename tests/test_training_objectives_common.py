"""The objectives' shared pieces (draws, tokens, condition drop) and the length objective."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.modeling.rvq_vae import motion_to_joint_grid
from hftrainer_mogents.training.objectives import OBJECTIVES, STAGES, Draws, build_objective
from hftrainer_mogents.training.objectives.common import drop_condition, encode_tokens
from hftrainer_mogents.training.objectives.length import length_objective


@pytest.fixture(scope="module")
def bundle(tiny_pipeline):
    bundle = copy.deepcopy(tiny_pipeline.bundle).float()
    bundle.length_estimator.requires_grad_(True)
    return bundle


def test_stages_and_modes():
    assert STAGES == ("vq", "mask", "res", "length")
    assert set(OBJECTIVES) == set(STAGES)
    with pytest.raises(InvalidInputError, match="generator"):
        Draws(mode="reference")
    with pytest.raises(InvalidInputError, match="default, reference"):
        Draws(mode="fast")
    with pytest.raises(InvalidInputError, match="vq, mask, res, length"):
        build_objective("lora", None)


def test_reference_draws_follow_the_global_stream():
    """A seeded Draws gives the numbers torch's global generator gives after manual_seed."""
    draws = Draws.seeded(7)
    ours = [draws.rand(3, 4), draws.bernoulli(torch.full((5,), 0.3)), draws.randint(9, (2, 6))]
    torch.manual_seed(7)
    theirs = [torch.rand(3, 4), torch.bernoulli(torch.full((5,), 0.3)), torch.randint(0, 9, (2, 6))]
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)
    torch.manual_seed(7)
    perm = torch.rand(2, 5).argsort(dim=-1)
    assert torch.equal(Draws.seeded(7).batch_randperm(2, 5), perm)


def test_drop_condition_is_the_official_mask_cond():
    """``mask_cond``: ``cond * (1 - bernoulli(ones(B) * p))`` in training mode with p > 0; in
    eval mode or with p = 0 the condition passes and nothing is drawn."""
    cond = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    draws = Draws.seeded(0)
    dropped = drop_condition(cond, 0.5, draws)
    torch.manual_seed(0)
    expected = cond * (1.0 - torch.bernoulli(torch.ones(64) * 0.5).view(64, 1))
    assert torch.equal(dropped, expected)
    rows = (dropped == 0).all(-1)
    assert 10 < int(rows.sum()) < 54 and torch.equal(dropped[~rows], cond[~rows])
    for probability, training in ((0.0, True), (0.5, False)):
        untouched = Draws.seeded(0)
        assert drop_condition(cond, probability, untouched, training=training) is cond
        assert torch.equal(untouched.generator.get_state(), Draws.seeded(0).generator.get_state())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_drop_condition_draws_on_the_generators_device():
    cond = torch.randn(16, 3, device="cuda")
    dropped = drop_condition(cond, 0.5, Draws.seeded(0, device="cpu"))
    keep = 1.0 - torch.bernoulli(torch.ones(16) * 0.5, generator=torch.Generator().manual_seed(0))
    assert dropped.device == cond.device
    assert torch.equal(dropped, cond * keep.cuda().view(16, 1))


def test_per_sample_draws_are_the_global_batchs_rows():
    """Under a shard (default mode), a per-sample draw is this process's rows of the draw one
    process makes for the whole batch; other draws are shared; reference mode ignores it."""

    def sequence(draws, rows):
        # rows: this process's samples; probabilities differ by process (the kernel's draws
        # must not depend on them)
        start = draws.rank * rows  # the other processes' rows are zeros in a shard's draw
        probabilities = torch.linspace(0.1, 0.9, 8).view(4, 2)[start : start + rows]
        return [
            draws.rand(rows, 3, per_sample=True),
            draws.rand(2),  # shared
            draws.randn(rows * 5, 2, per_sample=True),  # samples x 5 rows, sample-major
            draws.uniform_(torch.zeros(rows), 0.0, 2.0, per_sample=True),
            draws.bernoulli(probabilities, per_sample=True),
            draws.bernoulli_like(torch.zeros(rows, 7, dtype=torch.bool), 0.3, per_sample=True),
            draws.randint(11, (rows, 4), per_sample=True),
            draws.batch_randperm(rows, 6, per_sample=True),
        ]

    whole = sequence(Draws.seeded(5, mode="default"), 4)
    halves = [
        sequence(Draws.seeded(5, mode="default", rank=rank, world_size=2), 2) for rank in (0, 1)
    ]
    for index, full in enumerate(whole):
        if index == 1:
            assert torch.equal(halves[0][1], full) and torch.equal(halves[1][1], full)
        else:
            assert torch.equal(torch.cat([halves[0][index], halves[1][index]]), full), index
    # the numbers: a per-sample rand is torch.rand of the global shape
    assert torch.equal(whole[0], torch.rand(4, 3, generator=torch.Generator().manual_seed(5)))
    # reference mode: the process's own shapes, as one process would draw them
    ref = Draws.seeded(5, rank=1, world_size=2)
    assert not ref.sharded and Draws.seeded(5, mode="default", rank=1, world_size=2).sharded
    assert torch.equal(ref.rand(2, 3, per_sample=True), Draws.seeded(5).rand(2, 3))
    with pytest.raises(InvalidInputError, match="0 <= rank < world_size"):
        Draws(rank=2, world_size=2)
    with pytest.raises(InvalidInputError, match="leading"):
        Draws.seeded(5, mode="default", rank=0, world_size=2).rand(per_sample=True)


def test_tokens_are_the_vq_codes_with_pads(bundle):
    torch.manual_seed(0)
    motions = torch.randn(2, 16, 263)
    motions[0, 8:] = 0
    lengths = torch.tensor([8, 16])
    vq = bundle.vq_model
    pad_aux = bundle.mask_transformer_aux.pad_id
    pad_ts = bundle.mask_transformer_ts.pad_id
    tokens = encode_tokens(vq, motions, lengths, pad_aux=pad_aux, pad_ts=pad_ts)
    vq.eval()
    aux, ts = vq.encode(motions, motion_to_joint_grid(motions))
    assert tokens.padding.tolist() == [[False] * 2 + [True] * 2, [False] * 4]
    assert torch.equal(tokens.aux[1], aux[1]) and torch.equal(tokens.ts[1], ts[1])
    assert torch.equal(tokens.aux[0, :2], aux[0, :2])
    assert (tokens.aux[0, 2:] == pad_aux).all() and (tokens.ts[0, 2:] == pad_ts).all()
    with pytest.raises(InvalidInputError, match="multiple of 4"):
        encode_tokens(vq, motions[:, :15], lengths, pad_aux=pad_aux, pad_ts=pad_ts)


def test_length_objective_is_the_cross_entropy_of_token_counts(bundle):
    batch = {
        "captions": ["a person walks", "someone jumps"],
        "motions": torch.zeros(2, 196, 263),
        "lengths": torch.tensor([40, 196]),
    }
    out = length_objective(bundle, batch, Draws())
    assert torch.equal(
        build_objective("length", bundle)(bundle, batch, Draws())["loss"], out["loss"]
    )
    feats = bundle.encode_text(batch["captions"])
    logits = bundle.length_estimator(feats)
    expected = -(logits.log_softmax(-1)[[0, 1], [10, 49]]).mean()
    assert torch.allclose(out["loss"], expected, atol=1e-6)
    assert torch.allclose(out["loss"], F.cross_entropy(logits, torch.tensor([10, 49])))
    out["loss"].backward()
    assert bundle.length_estimator.output[-1].weight.grad is not None
    with pytest.raises(InvalidInputError, match="missing captions"):
        length_objective(
            bundle, {"motions": batch["motions"], "lengths": batch["lengths"]}, Draws()
        )
