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


def test_drop_condition_zeroes_whole_rows():
    cond = torch.ones(64, 3)
    dropped = drop_condition(cond, 0.5, Draws.seeded(0))
    rows = dropped.sum(-1)
    assert set(rows.tolist()) <= {0.0, 3.0}
    assert 10 < int((rows == 0).sum()) < 54
    assert torch.equal(drop_condition(cond, 0.0, Draws.seeded(0)), cond)


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
