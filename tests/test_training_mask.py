"""The mask transformers' objective: the official masks for a seed (against the official draws
written out here with torch's global generator), the loss against an independent computation,
the masking statistics, an overfit run on a tiny HumanML3D-format folder, and what the gradients
reach."""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import DEVICES
from training_helpers import write_folder

from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.modeling.rvq_vae import motion_to_joint_grid
from hftrainer_mogents.training.data import Text2MotionDataset, collate_text_motion
from hftrainer_mogents.training.objectives import Draws, build_objective
from hftrainer_mogents.training.objectives.mask import mask_objective, masked_cross_entropy
from hftrainer_mogents.training.objectives.masking import (
    cosine_schedule,
    mask_tokens_1d,
    mask_tokens_2d,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: a second intra-op thread only contends on a busy 2-core runner (the loss
    tests take 0.5 s with one thread, 10 s with two under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- the official draws, spelled out with torch's global generator (transformer_aux.py and
# transformer_ts.py ``forward``, momask's ``uniform`` / ``cosine_schedule`` /
# ``get_mask_subset_prob``)


def _official_1d(ids, non_pad, k):
    b, n = ids.shape
    r = torch.zeros((b,)).float().uniform_(0, 1)
    p = torch.cos(r * math.pi * 0.5)
    count = (n * p).round().clamp(min=1)
    mask = torch.rand((b, n)).argsort(dim=-1) < count.unsqueeze(-1)
    mask &= non_pad
    labels = torch.where(mask, ids, k)
    x = ids.clone()
    rid = torch.bernoulli(mask, p=0.1) & mask
    x = torch.where(rid, torch.randint_like(x, high=k), x)
    mid = torch.bernoulli(mask & ~rid, p=0.88) & (mask & ~rid)
    x = torch.where(mid, k, x)
    return x, labels


def _official_2d(ids, non_pad, k):
    b, t, j = ids.shape
    non_pad3 = non_pad[..., None].repeat(1, 1, j)
    r = torch.zeros((b,)).float().uniform_(0, 1)
    p = torch.cos(r * math.pi * 0.5)
    # whole steps
    mask = torch.rand((b, t)).argsort(dim=-1) < (t * p).round().clamp(min=1).unsqueeze(-1)
    mask = mask & non_pad
    labels = torch.where(mask[..., None].repeat(1, 1, j), ids, k)
    x = ids.clone()
    rid = torch.bernoulli(mask, p=0.1) & mask
    x = torch.where(rid[..., None].repeat(1, 1, j), torch.randint_like(x, high=k), x)
    mid = torch.bernoulli(mask & ~rid, p=0.88) & (mask & ~rid)
    x = torch.where(mid[..., None].repeat(1, 1, j), k, x)
    step_mask = mask[..., None].repeat(1, 1, j)
    # single tokens
    n = t * j
    mask = torch.rand((b, n)).argsort(dim=-1) < (n * p).round().clamp(min=1).unsqueeze(-1)
    mask = mask & non_pad3.reshape(b, -1) & ~step_mask.reshape(b, -1)
    labels = torch.where(mask, x.reshape(b, -1), labels.reshape(b, -1))
    x = x.reshape(b, -1)
    rid = torch.bernoulli(mask, p=0.1) & mask
    x = torch.where(rid, torch.randint_like(x, high=k), x)
    mid = torch.bernoulli(mask & ~rid, p=0.88) & (mask & ~rid)
    x = torch.where(mid, k, x)
    return x.reshape(b, t, j), labels.reshape(b, t, j)


def _official_cond(cond, p):
    drop = torch.bernoulli(torch.ones(cond.shape[0]) * p).view(-1, 1)
    return cond * (1.0 - drop)


def _tokens(b, t, j, k, lengths, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shape = (b, t) if j is None else (b, t, j)
    ids = torch.randint(0, k, shape, generator=gen)
    non_pad = torch.arange(t)[None, :] < torch.as_tensor(lengths)[:, None]
    fill = non_pad if j is None else non_pad[..., None]
    return torch.where(fill, ids, k + 1), non_pad


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reference_masks_are_the_official_draws(seed):
    ids, non_pad = _tokens(5, 49, None, 32, [49, 9, 20, 1, 40], seed)
    torch.manual_seed(seed)
    expected = _official_1d(ids, non_pad, 32)
    after = torch.rand(3)
    got = mask_tokens_1d(ids, ~non_pad, mask_id=32, num_tokens=32, draws=(d := Draws.seeded(seed)))
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert torch.equal(d.rand(3), after)  # the same numbers drawn, no more

    ids, non_pad = _tokens(5, 49, 6, 16, [49, 9, 20, 1, 40], seed)
    torch.manual_seed(seed)
    expected = _official_2d(ids, non_pad, 16)
    after = torch.rand(3)
    got = mask_tokens_2d(ids, ~non_pad, mask_id=16, num_tokens=16, draws=(d := Draws.seeded(seed)))
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert torch.equal(d.rand(3), after)


@pytest.mark.parametrize("device", DEVICES)
def test_masks_follow_the_generator_not_the_tokens_device(device):
    """A CPU-seeded Draws gives the same masks for tokens on any device (it draws on its own
    generator's device, then moves the numbers)."""
    ids, non_pad = _tokens(3, 10, 6, 16, [10, 4, 7])
    cpu = mask_tokens_2d(ids, ~non_pad, mask_id=16, num_tokens=16, draws=Draws.seeded(4))
    moved = mask_tokens_2d(
        ids.to(device), (~non_pad).to(device), mask_id=16, num_tokens=16, draws=Draws.seeded(4)
    )
    assert moved[0].device.type == device
    assert torch.equal(moved[0].cpu(), cpu[0]) and torch.equal(moved[1].cpu(), cpu[1])
    # without a generator it draws from the global one of the tokens' device
    inputs, labels = mask_tokens_1d(
        ids[..., 0].to(device), (~non_pad).to(device), mask_id=16, num_tokens=16, draws=Draws()
    )
    assert inputs.device.type == device and labels.device.type == device


def test_padding_is_never_hidden_and_the_schedule():
    ids, non_pad = _tokens(64, 12, 6, 16, torch.randint(1, 13, (64,)).tolist())
    inputs, labels = mask_tokens_2d(ids, ~non_pad, mask_id=16, num_tokens=16, draws=Draws.seeded(3))
    assert torch.equal(inputs[~non_pad], ids[~non_pad])  # pads stay pads
    assert (labels[~non_pad] == 16).all()
    hidden = labels != 16
    assert torch.equal(labels[hidden], ids[hidden])
    assert torch.allclose(
        cosine_schedule(torch.tensor([0.0, 2 / 3, 1.0])), torch.tensor([1.0, 0.5, 0.0]), atol=1e-6
    )


def test_masking_statistics():
    """Hidden share of valid tokens: E[cos(r pi / 2)] = 2 / pi (1D); p + p(1 - p) with the same
    p at both levels, E = 4 / pi - 1 / 2 (2D). Of the hidden: 10 % random (true id with
    probability 1 / K), 79.2 % [MASK], 10.8 % unchanged."""
    k = 16
    ids, non_pad = _tokens(16000, 49, None, k, [49] * 16000)
    inputs, labels = mask_tokens_1d(ids, ~non_pad, mask_id=k, num_tokens=k, draws=Draws.seeded(5))
    ids2, non_pad2 = _tokens(4000, 49, 6, k, [49] * 4000)
    inputs2, labels2 = mask_tokens_2d(
        ids2, ~non_pad2, mask_id=k, num_tokens=k, draws=Draws.seeded(6)
    )
    cases = ((ids, inputs, labels, 2 / math.pi), (ids2, inputs2, labels2, 4 / math.pi - 0.5))
    for original, x, y, share in cases:
        hidden = y != k
        assert abs(hidden.float().mean().item() - share) < 0.01  # 4 standard errors
        n = hidden.sum().item()
        masked = (x[hidden] == k).sum().item() / n
        same = (x[hidden] == y[hidden]).sum().item() / n
        assert abs(masked - 0.9 * 0.88) < 0.006
        assert abs(same - (0.9 * 0.12 + 0.1 / k)) < 0.006
        assert abs((1 - masked - same) - 0.1 * (1 - 1 / k)) < 0.006
        assert torch.equal(x[~hidden], original[~hidden])


# --- the objective on the tiny model


@pytest.fixture(scope="module")
def bundle(tiny_pipeline):
    bundle = copy.deepcopy(tiny_pipeline.bundle).float()
    bundle.mask_transformer_aux.requires_grad_(True)
    bundle.mask_transformer_ts.requires_grad_(True)
    return bundle


def _set_dropout(module, p):
    for m in module.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = p


def _set_cond_drop(bundle, p):
    for net in (bundle.mask_transformer_aux, bundle.mask_transformer_ts):
        net.config = dataclasses.replace(net.config, cond_drop_prob=p)


def _batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([196, 40, 100, 64])
    motions = torch.randn(4, 196, 263, generator=gen)
    motions[torch.arange(196)[None, :] >= lengths[:, None]] = 0
    captions = ["a person walks", "someone jumps high", "a man waves", "a person sits"]
    return {"captions": captions, "motions": motions, "lengths": lengths}


def _official_losses(bundle, batch, seed, training):
    """The official step, independently: tokens, masks, condition drop, logits, CE."""
    aux, ts, vq = bundle.mask_transformer_aux, bundle.mask_transformer_ts, bundle.vq_model
    m = batch["lengths"] // 4
    with torch.no_grad():
        vq.eval()
        ids1d, ids2d = vq.encode(batch["motions"], motion_to_joint_grid(batch["motions"]))
        cond = bundle.encode_text(batch["captions"]).float()
    non_pad = torch.arange(49)[None, :] < m[:, None]
    ids1d = torch.where(non_pad, ids1d[..., 0], aux.pad_id)
    ids2d = torch.where(non_pad[..., None], ids2d[..., 0], ts.pad_id)
    torch.manual_seed(seed)
    out = {}
    for name, net, ids, official in (
        ("aux", aux, ids1d, _official_1d),
        ("ts", ts, ids2d, _official_2d),
    ):
        x, labels = official(ids, non_pad, net.num_tokens)
        c = _official_cond(cond, net.config.cond_drop_prob) if training else cond
        logits = net(x, c, ~non_pad)  # (B, n, K)
        logits = logits.transpose(1, 2)  # (B, K, n), upstream's layout
        labels = labels.reshape(labels.shape[0], -1)
        out[f"loss_{name}"] = F.cross_entropy(logits, labels, ignore_index=net.mask_id)
        scored = labels != net.mask_id
        out[f"acc_{name}"] = (logits.argmax(1) == labels)[scored].float().mean()
    return out


@pytest.mark.parametrize("training", [True, False])
def test_loss_equals_the_official_computation(bundle, training):
    _set_cond_drop(bundle, 0.5)  # drops some of the 4 conditions
    nets = (bundle.mask_transformer_aux, bundle.mask_transformer_ts)
    for net in nets:
        net.train(training)
        _set_dropout(net, 0.0)  # dropout masks depend on kernels: compared without
    try:
        batch = _batch()
        got = build_objective("mask", bundle)(bundle, batch, Draws.seeded(11))
        expected = _official_losses(bundle, batch, 11, training)
        for key, value in expected.items():
            assert torch.allclose(got[key], value, atol=1e-5), key
        assert torch.allclose(got["loss"], got["loss_aux"] + got["loss_ts"])
        assert got["loss"].requires_grad and not got["loss_aux"].requires_grad
        # default mode draws the same way, from the global generator when given none
        torch.manual_seed(11)
        default = mask_objective(bundle, batch, Draws())
        assert torch.allclose(default["loss"], got["loss"])
        # with p = 0 upstream makes no draw: the ts masks follow the aux ones directly
        _set_cond_drop(bundle, 0.0)
        got = mask_objective(bundle, batch, Draws.seeded(11))
        expected = _official_losses(bundle, batch, 11, training=False)
        assert torch.allclose(got["loss_ts"], expected["loss_ts"], atol=1e-5)
    finally:
        _set_cond_drop(bundle, 0.1)
        for net in nets:
            net.eval()
            _set_dropout(net, 0.2)


def test_dropout_acts_in_training_mode_only(tiny_pipeline, bundle):
    """The official training dropout (0.2 in the encoders and after the positional tables)
    exists without state and is the identity in eval mode, so inference is unchanged."""
    reference = tiny_pipeline.bundle
    for name in ("mask_transformer_aux", "mask_transformer_ts"):
        net, inference = getattr(bundle, name), getattr(reference, name)
        assert net.config.dropout == 0.2
        assert list(net.state_dict()) == list(inference.state_dict())
        drops = [m for m in net.modules() if isinstance(m, torch.nn.Dropout)]
        assert drops and all(m.p == 0.2 for m in drops)
        two_d = name.endswith("ts")
        ids = torch.randint(0, net.num_tokens, (2, 12, 6) if two_d else (2, 12))
        cond = torch.randn(2, 512)
        padding = torch.zeros(2, 12, dtype=torch.bool)
        padding[1, 7:] = True
        with torch.no_grad():
            net.eval()
            assert torch.equal(net(ids, cond, padding), inference(ids, cond, padding))
            net.train()
            torch.manual_seed(0)
            first = net(ids, cond, padding)
            second = net(ids, cond, padding)
            assert not torch.allclose(first, second)
            assert not torch.allclose(first, inference(ids, cond, padding))
            _set_dropout(net, 0.0)
            assert torch.allclose(net(ids, cond, padding), inference(ids, cond, padding), atol=1e-6)
            _set_dropout(net, 0.2)
            net.eval()


def test_masked_cross_entropy_and_errors(bundle):
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0]]])
    labels = torch.tensor([[0, 3, 1]])
    loss, acc = masked_cross_entropy(logits, labels, 3)
    expected = -(logits[0, 0].log_softmax(-1)[0] + logits[0, 2].log_softmax(-1)[1]) / 2
    assert torch.allclose(loss, expected) and acc.item() == 0.5
    # nothing scored: 0 (upstream: NaN), still differentiable
    loss, acc = masked_cross_entropy(logits.requires_grad_(), torch.full((1, 3), 3), 3)
    loss.backward()
    assert loss.item() == 0.0 and acc.item() == 0.0 and torch.all(logits.grad == 0)
    with pytest.raises(InvalidInputError, match="missing captions"):
        mask_objective(bundle, {"motions": torch.zeros(1, 196, 263), "lengths": [40]}, Draws())
    broken = copy.copy(bundle)
    broken.mask_transformer_ts = None
    with pytest.raises(InvalidInputError, match="lacks mask_transformer_ts"):
        mask_objective(broken, _batch(), Draws())


def test_gradients_reach_the_two_transformers_only(tiny_pipeline):
    bundle = copy.deepcopy(tiny_pipeline.bundle).float()
    bundle.requires_grad_(True)  # everything could learn: only the transformers may get grads
    bundle.mask_transformer_aux.train()
    bundle.mask_transformer_ts.train()
    out = mask_objective(bundle, _batch(), Draws.seeded(0))
    out["loss"].backward()
    for name, p in bundle.named_parameters():
        if name.startswith(("mask_transformer_aux.", "mask_transformer_ts.")):
            continue
        assert p.grad is None, name
    for net in (bundle.mask_transformer_aux, bundle.mask_transformer_ts):
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None for g in grads)
        assert net.output_process.poseFinal.weight.grad.abs().sum() > 0
        assert net.cond_emb.weight.grad.abs().sum() > 0
        assert net.seqTransEncoder.layers[0].linear1.weight.grad.abs().sum() > 0


# --- overfit

OVERFIT_CAPTIONS = [
    "a person walks forward",
    "someone jumps in place",
    "a man waves his right hand",
    "a person sits down slowly",
    "the person turns around",
    "a woman kicks with her left leg",
    "someone crawls on the floor",
    "a person bows deeply",
]


@pytest.mark.slow
def test_overfits_eight_captioned_motions(tiny_pipeline, tmp_path):
    """Eight motions of a HumanML3D-format folder, each repeating its first frame (so its tokens
    are nearly one code and the captions carry what must be learned), one fixed batch of crops:
    the loss at fixed masks falls by at least 5x, and nothing but the two transformers moves."""
    torch.manual_seed(0)
    bundle = copy.deepcopy(tiny_pipeline.bundle).float()
    aux, ts = bundle.mask_transformer_aux, bundle.mask_transformer_ts
    lengths = {f"m{i}": 40 + i for i in range(8)}
    captions = {f"m{i}": [f"{c}#a/DET#0.0#0.0"] for i, c in enumerate(OVERFIT_CAPTIONS)}
    raw = write_folder(tmp_path / "h3d", lengths=lengths, captions=captions)
    for motion_id, motion in raw.items():
        still = np.repeat(motion[:1], len(motion), axis=0)
        np.save(tmp_path / "h3d" / "new_joint_vecs" / f"{motion_id}.npy", still)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = Text2MotionDataset(
            tmp_path / "h3d", "train", bundle.mean.numpy(), bundle.std.numpy(), seed=0
        )
    assert len(data) == 8
    batch = collate_text_motion([data[i] for i in range(8)])  # one fixed batch of crops

    frozen = {
        name: t.clone()
        for name, t in bundle.state_dict().items()
        if not name.startswith(("mask_transformer_aux.", "mask_transformer_ts."))
    }
    _set_cond_drop(bundle, 0.0)  # a dropped caption cannot be memorised
    _set_dropout(bundle, 0.0)
    objective = build_objective("mask", bundle)

    def fixed_loss():
        with torch.no_grad():
            return np.mean(
                [objective(bundle, batch, Draws.seeded(100 + s))["loss"].item() for s in range(4)]
            )

    params = [*aux.parameters(), *ts.parameters()]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=3e-3, betas=(0.9, 0.99), weight_decay=1e-5)
    before = fixed_loss()
    aux.train()
    ts.train()
    draws = Draws.seeded(0)
    start = time.perf_counter()
    for _ in range(OVERFIT_STEPS):
        out = objective(bundle, batch, draws)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    after = fixed_loss()
    print(
        f"mask overfit: loss {before:.3f} -> {after:.3f} in {OVERFIT_STEPS} steps, {seconds:.1f} s"
    )
    assert after < before / 5, (before, after)
    for name, t in bundle.state_dict().items():
        if name in frozen:
            assert torch.equal(t, frozen[name]), name


OVERFIT_STEPS = 120
