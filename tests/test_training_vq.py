"""The RVQ-VAE's training objective (hftrainer_mogents.training.objectives.vq) and its training
quantiser (ema_quantizer): the loss against the official forward written out here, the EMA
update and dead-code reset by hand, quantizer dropout, eval mode, an overfit run, gradients and
the statistics' round trip."""

from __future__ import annotations

import copy
import math
import os
import random
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from training_helpers import free_port

from hftrainer_mogents.config import VQConfig
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.modeling.rvq_vae import motion_to_joint_grid
from hftrainer_mogents.training.objectives import Draws, VQObjective, build_objective
from hftrainer_mogents.training.objectives.ema_quantizer import EMAResidualQuantizer
from hftrainer_mogents.training.objectives.vq import finetune_initial_counts

FRAMES = 64


@pytest.fixture()
def bundle(tiny_pipeline):
    """A trainable float32 copy of the tiny bundle, network dropout off (its masks come from
    torch's global generator, not from Draws)."""
    bundle = copy.deepcopy(tiny_pipeline.bundle).float()
    bundle.vq_model.requires_grad_(True).train()
    for module in bundle.vq_model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return bundle


def _motions(b: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, FRAMES, 263, generator=g)


def _batch(x: torch.Tensor) -> dict:
    return {"motions": x, "lengths": torch.full((x.shape[0],), x.shape[1])}


def _seed_where(condition) -> int:
    return next(s for s in range(1000) if condition(random.Random(s)))


# ----------------------------------------------------------------------------- the official, by hand


class _OfficialQuantizer:
    """MoGenTS ``ResidualVQ.forward`` over MoMask's ``QuantizeEMAReset`` (training mode), on
    torch's global generator and Python's global ``random``, written out with torch ops."""

    def __init__(self, codebooks, *, init: bool, mu: float = 0.99, p: float = 0.2) -> None:
        self.codebooks = [c.clone() for c in codebooks]
        self.init = not init  # "already initialised" when fine-tuning
        self.inits = [self.init] * len(codebooks)
        self.sums = [c.clone() for c in self.codebooks]
        self.counts = [torch.ones(c.shape[0]) for c in self.codebooks]
        self.mu, self.p = mu, p

    def _tile(self, x, k):
        n, d = x.shape
        if n >= k:
            return x
        out = x.repeat((k + n - 1) // n, 1)
        return out + torch.randn_like(out) * (0.01 / math.sqrt(d))

    def _layer(self, i, x_nct):
        n, d, t = x_nct.shape
        x = x_nct.permute(0, 2, 1).reshape(-1, d)  # (n t) c
        k = self.codebooks[i].shape[0]
        if not self.inits[i]:
            self.codebooks[i] = self._tile(x.detach(), k)[:k].clone()
            self.sums[i] = self.codebooks[i].clone()
            self.counts[i] = torch.ones(k)
            self.inits[i] = True
        c = self.codebooks[i]
        dist = (x**2).sum(-1, keepdim=True) - 2 * x @ c.t() + (c.t() ** 2).sum(0, keepdim=True)
        u = torch.zeros_like(dist).uniform_(0, 1)
        gumbel = -torch.log((-torch.log(u.clamp(min=1e-20))).clamp(min=1e-20))
        idx = (-dist / 0.5 + gumbel).argmax(-1)
        x_d = F.embedding(idx, c)
        with torch.no_grad():
            onehot = torch.zeros(k, x.shape[0])
            onehot.scatter_(0, idx.view(1, -1), 1)
            batch_sum, batch_count = onehot @ x, onehot.sum(-1)
            rand = self._tile(x, k)[:k]
            self.sums[i] = self.mu * self.sums[i] + (1.0 - self.mu) * batch_sum
            self.counts[i] = self.mu * self.counts[i] + (1.0 - self.mu) * batch_count
            used = (self.counts[i].view(k, 1) >= 1.0).float()
            self.codebooks[i] = (
                used * (self.sums[i] / self.counts[i].view(k, 1)) + (1 - used) * rand
            )
            prob = batch_count / batch_count.sum()
            ppl = torch.exp(-torch.sum(prob * torch.log(prob + 1e-7)))
        commit = F.mse_loss(x, x_d.detach())
        x_d = x + (x_d - x).detach()
        return x_d.view(n, t, -1).permute(0, 2, 1), idx.view(n, t), commit, ppl

    def __call__(self, x_nct):
        q = len(self.codebooks)
        drop = random.random() < self.p
        start = random.randrange(0, q) if drop else q
        out, residual, ids, commits, ppls = 0.0, x_nct, [], [], []
        for i in range(q):
            if drop and i > start:
                ids.append(torch.full(x_nct.shape[::2], -1))
                continue
            quantized, idx, commit, ppl = self._layer(i, residual)
            residual = residual - quantized.detach()
            out = out + quantized
            ids.append(idx)
            commits.append(commit)
            ppls.append(ppl)
        return out, torch.stack(ids, -1), sum(commits) / len(commits), sum(ppls) / len(ppls)


def _official_losses(vq, q1, q2, x):
    """``RVQVAE.forward`` and ``RVQTokenizerTrainer.forward``, official layout (22 joints)."""
    b, t0, _ = x.shape
    # the dataset's joint grid, built from the normalised vector
    grid = torch.zeros(b, t0, 22, 12)
    grid[:, :, 1:, 0:3] = x[..., 4:67].reshape(b, t0, 21, 3)
    grid[:, :, 1:, 3:9] = x[..., 67:193].reshape(b, t0, 21, 6)
    grid[:, :, :, 9:12] = x[..., 193:259].reshape(b, t0, 22, 3)

    z1 = vq.encoder1d(x.permute(0, 2, 1))
    x1, _, c1, p1 = q1(z1)
    y1 = vq.decoder1d(x1).permute(0, 2, 1)

    z2 = vq.encoder2d(F.pad(grid, (0, 0, 1, 1)).permute(0, 3, 1, 2))  # b d t j
    _, d, t, j = z2.shape
    x2, _, c2, p2 = q2(z2.permute(0, 3, 1, 2).reshape(b * j, d, t))  # (b j) d t
    x2 = x2.reshape(b, j * d, t)
    x2 = vq.linear_merge(x2.permute(0, 2, 1).reshape(b * t, j * d)).reshape(b, t, j * d)
    x2 = x2.permute(0, 2, 1).reshape(b, j, d, t).permute(0, 2, 3, 1)  # b d t j
    out = vq.decoder2d(x2).permute(0, 2, 3, 1)[:, :, 1:-1]  # (b, t0, 22, 12)
    jm = torch.zeros(b, t0, 263)
    jm[..., :4] = out[:, :, 0, :4]
    jm[..., -4:] = out[:, :, 0, 4:8]
    jm[..., 4:67] = out[:, :, 1:, :3].reshape(b, t0, -1)
    jm[..., 67:193] = out[:, :, 1:, 3:9].reshape(b, t0, -1)
    jm[..., 193:259] = out[:, :, :, 9:12].reshape(b, t0, -1)
    y = vq.linear_out(torch.cat([y1, jm], 2))

    target = torch.zeros(b, t0, 263)  # the trainer's jmotion of the input grid
    target[..., 4:259] = x[..., 4:259]
    s = F.smooth_l1_loss
    loss1 = s(y1, x) + 0.5 * s(y1[..., 4:67], x[..., 4:67]) + 0.02 * c1
    loss2 = s(jm, target) + 0.5 * s(jm[..., 4:67], x[..., 4:67]) + 0.02 * c2
    loss = s(y, x) + 0.5 * s(y[..., 4:67], x[..., 4:67]) + 0.02 * (c1 + c2) / 2
    return {
        "loss": loss1 + loss2 + loss,
        "loss_fused": loss,
        "loss_rec": s(y, x),
        "loss_commit": c2,
        "perplexity": p2,
        "perplexity_aux": p1,
    }


@pytest.mark.parametrize(
    ("b", "init_from_batch", "fires"),
    [(3, False, False), (3, False, True), (1, True, True), (1, False, False)],
    ids=["finetune", "finetune-qdropout", "scratch-tiled", "finetune-tiled"],
)
def test_loss_equals_the_official_forward(bundle, b, init_from_batch, fires):
    """Two steps: loss, parts, updated codebooks and statistics equal the official forward run
    after torch.manual_seed(s) + random.seed(s), with the same weights (B=1: 16 aux rows < 32
    codes, so the tiling noise is drawn)."""
    seed = _seed_where(lambda r: (r.random() < 0.2) == fires)
    vq = bundle.vq_model
    official1 = _OfficialQuantizer(vq.quantizer1d.codebooks, init=init_from_batch)
    official2 = _OfficialQuantizer(vq.quantizer2d.codebooks, init=init_from_batch)
    theirs_vq = copy.deepcopy(vq)
    objective = VQObjective(bundle, init_from_batch=init_from_batch, initial_count=1.0)
    draws = Draws.seeded(seed)
    torch.manual_seed(seed)
    random.seed(seed)
    for step in range(2):
        x = _motions(b, seed=step)
        ours = objective(bundle, _batch(x), draws)
        theirs = _official_losses(theirs_vq, official1, official2, x)
        for key, value in theirs.items():
            torch.testing.assert_close(ours[key], value.detach(), rtol=1e-5, atol=1e-6, msg=key)
        for ours_q, theirs_q in ((vq.quantizer1d, official1), (vq.quantizer2d, official2)):
            for layer, codebook in enumerate(ours_q.codebooks):
                torch.testing.assert_close(codebook, theirs_q.codebooks[layer])
        stats = objective.quantizer1d
        torch.testing.assert_close(stats.code_count, torch.stack(official1.counts))
        torch.testing.assert_close(stats.code_sum, torch.stack(official1.sums))
    # the drawn numbers were the same ones, in the same order
    assert torch.equal(draws.generator.get_state(), torch.get_rng_state())
    assert draws.python.random() == random.random()


def test_backward_matches_the_official_gradients(bundle):
    seed = _seed_where(lambda r: r.random() >= 0.2)
    vq = bundle.vq_model
    theirs_vq = copy.deepcopy(vq)
    official1 = _OfficialQuantizer(vq.quantizer1d.codebooks, init=False)
    official2 = _OfficialQuantizer(vq.quantizer2d.codebooks, init=False)
    x = _motions(2)
    VQObjective(bundle)(bundle, _batch(x), Draws.seeded(seed))["loss"].backward()
    torch.manual_seed(seed)
    random.seed(seed)
    _official_losses(theirs_vq, official1, official2, x)["loss"].backward()
    theirs = dict(theirs_vq.named_parameters())
    for name, param in vq.named_parameters():
        torch.testing.assert_close(param.grad, theirs[name].grad, rtol=1e-4, atol=1e-6, msg=name)


# ----------------------------------------------------------------------------- the quantiser


def test_ema_update_and_dead_code_reset_by_hand():
    """Codes far apart: the Gumbel choice is the nearest code whatever the noise (gaps of
    >= 100 / 0.5 against noise within [-4, 17]), so the update can be written by hand."""
    codebook = torch.tensor([[0.0, 0.0], [10.0, 10.0], [100.0, -100.0]])
    quantizer = EMAResidualQuantizer([codebook], mu=0.99, dropout_prob=0.0)
    x = torch.tensor([[0.1, 0.0], [9.0, 10.0], [0.0, 0.2], [11.0, 11.0]])
    out = quantizer(x, [codebook], Draws.seeded(0), training=True)
    assert out.ids[:, 0].tolist() == [0, 1, 0, 1]
    # sum <- 0.99 sum + 0.01 sum(x), count <- 0.99 count + 0.01 n; code 2 unused: count 0.99 < 1,
    # so it becomes row 2 of the batch (4 rows >= 3 codes: no tiling)
    sum0 = 0.99 * torch.tensor([0.0, 0.0]) + 0.01 * torch.tensor([0.1, 0.2])
    sum1 = 0.99 * torch.tensor([10.0, 10.0]) + 0.01 * torch.tensor([20.0, 21.0])
    expected = torch.stack([sum0 / 1.01, sum1 / 1.01, x[2]])
    torch.testing.assert_close(codebook, expected)
    torch.testing.assert_close(quantizer.code_count[0], torch.tensor([1.01, 1.01, 0.99]))
    torch.testing.assert_close(quantizer.code_sum[0, 2], torch.tensor([99.0, -99.0]))
    # commitment against the codes before the update; perplexity of this batch's usage (2 x 2)
    torch.testing.assert_close(
        out.commit_loss, F.mse_loss(x, torch.tensor([[0.0, 0], [10, 10]])[[0, 1, 0, 1]])
    )
    torch.testing.assert_close(out.perplexity, torch.tensor(2.0), rtol=1e-5, atol=0)
    # straight-through: the value is the code, the gradient the identity
    torch.testing.assert_close(out.quantized, torch.tensor([[0.0, 0], [10, 10], [0, 0], [10, 10]]))

    # a second step, every row near code 1: codes 0 (count 1.01 * 0.99 < 1) and 2 (0.99 * 0.99)
    # are dead, keep their statistics and become rows 0 and 2 of this batch
    y = torch.tensor([[10.0, 10.0], [10.0, 11.0], [11.0, 10.0], [9.0, 9.0]])
    out = quantizer(y, [codebook], Draws.seeded(1), training=True)
    assert out.ids[:, 0].tolist() == [1, 1, 1, 1]
    count = torch.tensor([1.01 * 0.99, 1.01 * 0.99 + 0.04, 0.99 * 0.99])
    torch.testing.assert_close(quantizer.code_count[0], count)
    sum1 = 0.99 * sum1 + 0.01 * torch.tensor([40.0, 40.0])
    torch.testing.assert_close(quantizer.code_sum[0, 1], sum1)
    torch.testing.assert_close(codebook, torch.stack([y[0], sum1 / count[1], y[2]]))
    torch.testing.assert_close(out.perplexity, torch.tensor(1.0))


def test_first_batch_init_tiles_with_noise():
    """init_from_batch: the codebook becomes the first K rows of the batch tiled with noise of
    std 0.01 / sqrt(D) (a randn of the tiled shape, drawn before the Gumbel uniforms; the
    dead-code reset draws another after them)."""
    codebook = torch.full((5, 4), 7.0)
    quantizer = EMAResidualQuantizer([codebook], dropout_prob=0.0, init_from_batch=True)
    assert not bool(quantizer.initialised[0])
    x = torch.tensor([[0.0, 0.0, 0.0, 0.0], [5.0, 5.0, 5.0, 5.0]])
    quantizer(x, [codebook], Draws.seeded(3), training=False)  # eval: no init
    assert torch.equal(codebook, torch.full((5, 4), 7.0))
    out = quantizer(x, [codebook], Draws.seeded(3), training=True)
    torch.manual_seed(3)
    tiled = (x.repeat(3, 1) + torch.randn(6, 4) * (0.01 / 2.0))[:5]
    torch.rand(2, 5)  # the Gumbel uniforms
    replacement = (x.repeat(3, 1) + torch.randn(6, 4) * (0.01 / 2.0))[:5]
    assert bool(quantizer.initialised[0])
    # rows 100 apart: each row picks a noisy copy of itself (codes 0, 2, 4 or 1, 3)
    assert out.ids[0, 0] % 2 == 0 and out.ids[1, 0] % 2 == 1
    onehot = F.one_hot(out.ids[:, 0], 5).float().t()  # (K, N)
    code_sum = 0.99 * tiled + 0.01 * (onehot @ x)
    code_count = 0.99 * torch.ones(5) + 0.01 * onehot.sum(-1)
    torch.testing.assert_close(quantizer.code_sum[0], code_sum)
    torch.testing.assert_close(quantizer.code_count[0], code_count)
    used = (code_count >= 1.0)[:, None].float()
    torch.testing.assert_close(
        codebook, used * code_sum / code_count[:, None] + (1 - used) * replacement
    )


def test_finetuning_counts_are_the_official_stationary_counts(bundle):
    """256 windows x 16 steps (x 6 joint groups) per official step, over the codes."""
    assert finetune_initial_counts(VQConfig()) == (256 * 16 / 512, 256 * 16 * 6 / 256)
    config = bundle.vq_model.config
    steps = 64 // config.stride_t**config.down_t
    objective = VQObjective(bundle)
    aux, ts = objective.quantizer1d, objective.quantizer2d
    assert aux.initial_count == max(1.0, 256 * steps / config.nb_code1d)
    assert ts.initial_count == max(1.0, 256 * steps * 6 / config.nb_code2d)
    # sum / count is the codebook: the statistics continue the trained codes
    for quantizer in (aux, ts):
        assert bool((quantizer.code_count == quantizer.initial_count).all())
    for layer, codebook in enumerate(bundle.vq_model.quantizer1d.codebooks):
        slot = aux.slots[layer]
        torch.testing.assert_close(aux.code_sum[slot] / aux.code_count[slot][:, None], codebook)
    with pytest.raises(InvalidInputError, match="initial_count"):
        VQObjective(bundle, initial_count=0.0)
    assert VQObjective(bundle, init_from_batch=True).quantizer1d.initial_count == 1.0


def test_a_finetuning_step_keeps_the_codes_the_batch_misses(bundle):
    """A small fine-tuning batch (5 rows): with the default count the codes it does not choose
    stay as trained (their count decays to c0 mu); with the official count 1 they become batch
    rows at once."""
    codebooks = bundle.vq_model.quantizer1d.codebooks
    trained = codebooks[0].clone()
    rows = torch.randn(5, trained.shape[1], generator=torch.Generator().manual_seed(3))
    seed = _seed_where(lambda r: r.random() >= 0.2)  # no quantizer dropout (all layers run)
    objective = VQObjective(bundle)
    c0 = objective.quantizer1d.initial_count
    assert c0 > 1
    out = objective.quantizer1d(rows, codebooks, Draws.seeded(seed, mode="default"), training=True)
    chosen = out.ids[:, 0].unique()
    missed = torch.ones(trained.shape[0], dtype=torch.bool)
    missed[chosen] = False
    assert int(missed.sum()) >= trained.shape[0] - 5
    torch.testing.assert_close(codebooks[0][missed], trained[missed], rtol=0, atol=1e-6)
    torch.testing.assert_close(
        objective.quantizer1d.code_count[0][missed], torch.full((int(missed.sum()),), c0 * 0.99)
    )
    # the official count 1: every missed code is reset to a (tiled) batch row
    codebooks[0].copy_(trained)
    official = VQObjective(bundle, initial_count=1.0)
    draws = Draws.seeded(seed, mode="default")
    out = official.quantizer1d(rows, codebooks, draws, training=True)
    missed = torch.ones(trained.shape[0], dtype=torch.bool)
    missed[out.ids[:, 0].unique()] = False
    moved = (codebooks[0][missed] - trained[missed]).abs().amax(-1) > 1e-3
    assert bool(moved.all())


def _sharded_quantizer_run(rank, world, port, mode, prefix):
    """Three training calls of a 2-layer quantizer (16 codes, quantizer dropout 0.5) on this
    process's rows of 8 global rows (fewer than the codes: the reset rows are tiled with
    noise); ``world == 1`` takes them all. Saves codebooks, counts and ids to
    ``<prefix>-<rank>.pt``."""
    if world > 1:
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        os.environ["MASTER_PORT"] = str(port)
        torch.set_num_threads(1)
        dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        g = torch.Generator().manual_seed(0)
        codebooks = [torch.randn(16, 3, generator=g) for _ in range(2)]
        quantizer = EMAResidualQuantizer(codebooks, dropout_prob=0.5)
        ids = []
        # seed 13's quantizer dropout keeps one layer (10: no dropout, 11: both layers kept)
        for seed in (10, 13, 11):
            rows = torch.randn(8, 3, generator=g)
            local = rows.view(world, -1, 3)[rank]
            draws = Draws.seeded(seed, mode=mode, rank=rank, world_size=world)
            if mode == "reference":  # each process its own generator, as the loop seeds them
                draws.generator.manual_seed(100 * seed + rank)
            ids.append(quantizer(local, codebooks, draws, training=True).ids)
        result = {"codebooks": codebooks, "count": quantizer.code_count, "ids": ids}
        torch.save(result, f"{prefix}-{rank}.pt")
    finally:
        if world > 1:
            dist.destroy_process_group()


def test_two_processes_keep_one_processs_codebooks(tmp_path):
    """Default mode: 2 gloo processes x 4 rows choose the codes and keep the codebooks and
    counts of one process x 8 rows (Gumbel rows, summed statistics, the global batch's tiled
    reset rows). Reference mode (per-process draws): both processes keep the same codebooks."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {}
        for mode in ("default", "reference"):
            prefix = tmp_path / mode
            mp.start_processes(
                _sharded_quantizer_run,
                args=(2, free_port(), mode, prefix),
                nprocs=2,
                start_method="fork",
            )
            runs[mode] = [torch.load(f"{prefix}-{r}.pt", weights_only=True) for r in (0, 1)]
        _sharded_quantizer_run(0, 1, 0, "default", tmp_path / "one")
    finally:
        torch.set_num_threads(threads)
    one = torch.load(tmp_path / "one-0.pt", weights_only=True)
    two = runs["default"]
    for step in range(3):
        assert torch.equal(torch.cat([two[0]["ids"][step], two[1]["ids"][step]]), one["ids"][step])
    assert bool((one["ids"][1][:, 1] == -1).all()) and bool((one["ids"][0] >= 0).all())
    for rank in (0, 1):
        for ours, theirs in zip(two[rank]["codebooks"], one["codebooks"], strict=True):
            torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
        torch.testing.assert_close(two[rank]["count"], one["count"], rtol=0, atol=1e-6)
    ref = runs["reference"]
    for a, b in zip(ref[0]["codebooks"], ref[1]["codebooks"], strict=True):
        assert torch.equal(a, b)
    assert torch.equal(ref[0]["count"], ref[1]["count"])


def test_shared_codebook_shares_its_statistics():
    """Layers sharing one codebook (shared_codebook) share one statistics slot, updated by
    each active layer in turn, as the official shared module is."""
    codebook = torch.tensor([[0.0, 0.0], [10.0, 10.0], [100.0, -100.0]])
    quantizer = EMAResidualQuantizer([codebook, codebook], dropout_prob=0.0)
    assert quantizer.code_sum.shape == (1, 3, 2) and quantizer.slots == (0, 0)
    x = torch.tensor([[10.0, 10.0], [10.0, 10.0], [0.0, 0.0], [0.0, 0.0]])
    out = quantizer(x, [codebook, codebook], Draws(), training=True)  # default mode, global RNG
    assert out.ids[:, 0].tolist() == [1, 1, 0, 0]
    hits = [torch.bincount(out.ids[:, layer], minlength=3).float() for layer in (0, 1)]
    count = 0.99 * (0.99 * torch.ones(3) + 0.01 * hits[0]) + 0.01 * hits[1]
    torch.testing.assert_close(quantizer.code_count[0], count)


def test_quantizer_dropout_skips_the_upper_layers(bundle):
    objective = VQObjective(bundle)
    vq = bundle.vq_model
    layers = len(vq.quantizer1d.codebooks)
    seed = _seed_where(lambda r: r.random() < 0.2 and r.randrange(0, layers) < layers - 2)
    expect = random.Random(seed)
    expect.random()
    keep = expect.randrange(0, layers) + 1
    before = [c.clone() for c in vq.quantizer1d.codebooks]
    counts = objective.quantizer1d.code_count.clone()
    rows = torch.randn(40, before[0].shape[1], generator=torch.Generator().manual_seed(1))
    draws = Draws.seeded(seed)
    out = objective.quantizer1d(rows, vq.quantizer1d.codebooks, draws, training=True)
    assert out.active == keep
    assert bool((out.ids[:, keep:] == -1).all()) and bool((out.ids[:, :keep] >= 0).all())
    # commitment and output from the active layers only, the codes read before the update
    residual, commits, total = rows, [], 0.0
    for layer in range(keep):
        code = before[layer][out.ids[:, layer]]
        commits.append(F.mse_loss(residual, code))
        residual = residual - code
        total = total + code
    torch.testing.assert_close(out.commit_loss, sum(commits) / keep)
    torch.testing.assert_close(out.quantized, total, rtol=1e-5, atol=1e-5)
    # skipped layers: codebooks and statistics untouched
    for layer in range(keep, layers):
        assert torch.equal(vq.quantizer1d.codebooks[layer], before[layer])
        assert torch.equal(objective.quantizer1d.code_count[layer], counts[layer])
    assert not torch.equal(objective.quantizer1d.code_count[0], counts[0])
    assert draws.python.getstate() == expect.getstate()


def test_eval_mode_is_the_nearest_code_and_draws_nothing(bundle):
    vq = bundle.vq_model.eval()
    objective = VQObjective(bundle)
    x = _motions(2)
    ids_aux, ids_ts = vq.encode(x, motion_to_joint_grid(x))
    codebooks = [c.clone() for c in vq.quantizer1d.codebooks + vq.quantizer2d.codebooks]
    state = {k: v.clone() for k, v in objective.state_dict().items()}
    draws = Draws.seeded(0)
    python_state = draws.python.getstate()
    with torch.no_grad():
        z1 = vq.encoder1d(x.transpose(1, 2)).transpose(1, 2)  # (B, T, D1)
        ours = objective.quantizer1d(
            z1.reshape(-1, z1.shape[-1]), vq.quantizer1d.codebooks, draws, training=False
        )
        out = objective(bundle, _batch(x), draws)
    assert torch.equal(ours.ids.view(ids_aux.shape), ids_aux)
    # the eval loss is the reconstruction of the nearest codes (RVQVAE.encode -> forward_decoder)
    with torch.no_grad():
        y_aux, y = vq.forward_decoder(ids_aux, ids_ts)
    torch.testing.assert_close(out["loss_rec"], F.smooth_l1_loss(y, x))
    torch.testing.assert_close(out["loss_vel"], F.smooth_l1_loss(y[..., 4:67], x[..., 4:67]))
    # nothing drawn, nothing updated
    assert torch.equal(draws.generator.get_state(), Draws.seeded(0).generator.get_state())
    assert draws.python.getstate() == python_state
    for before, after in zip(
        codebooks, vq.quantizer1d.codebooks + vq.quantizer2d.codebooks, strict=True
    ):
        assert torch.equal(before, after)
    for key, value in objective.state_dict().items():
        assert torch.equal(value, state[key])


# ----------------------------------------------------------------------------- training


def test_gradients_reach_every_network_and_statistics_round_trip(bundle, tmp_path):
    vq = bundle.vq_model
    objective = build_objective("vq", bundle)
    assert isinstance(objective, VQObjective)
    out = objective(bundle, _batch(_motions(2)), Draws.seeded(0))
    out["loss"].backward()
    for name, param in vq.named_parameters():
        assert param.grad is not None and bool(param.grad.abs().sum() > 0), name
    assert set(out) == {
        "loss",
        "loss_fused",
        "loss_aux",
        "loss_ts",
        "loss_rec",
        "loss_vel",
        "loss_commit",
        "loss_commit_aux",
        "perplexity",
        "perplexity_aux",
    }
    assert all(not v.requires_grad for k, v in out.items() if k != "loss")

    # save after one step, restore into a fresh bundle + objective, step on: identical
    torch.save({"vq": vq.state_dict(), "objective": objective.state_dict()}, tmp_path / "ckpt.pt")
    saved = torch.load(tmp_path / "ckpt.pt")
    restored_bundle = copy.deepcopy(bundle)
    restored_bundle.vq_model.load_state_dict(saved["vq"])
    restored = VQObjective(restored_bundle, init_from_batch=True)  # flags travel too
    restored.load_state_dict(saved["objective"])
    fresh_bundle = copy.deepcopy(restored_bundle)
    fresh = VQObjective(fresh_bundle)  # statistics restarted: the codes move differently
    runs = []
    for b, obj in ((bundle, objective), (restored_bundle, restored), (fresh_bundle, fresh)):
        losses = [
            obj(b, _batch(_motions(3, seed=s)), Draws.seeded(s))["loss"].item() for s in (5, 6, 7)
        ]
        runs.append((losses, [c.clone() for c in b.vq_model.quantizer1d.codebooks]))
    assert runs[0][0] == runs[1][0]
    for a, c in zip(runs[0][1], runs[1][1], strict=True):
        assert torch.equal(a, c)
    assert any(not torch.equal(a, c) for a, c in zip(runs[0][1], runs[2][1], strict=True))


def _smooth_motions(n: int, seed: int, *, rank: int = 3, amplitude: float = 0.35) -> torch.Tensor:
    """``n`` random smooth 64-frame motions: ``rank`` sinusoids (0.5-1.5 cycles per window,
    random phases) mixed into 263 dims by one random matrix (poses move together, as joints do)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(float(FRAMES))[None, :, None]
    freq = (torch.rand(n, 1, rank, generator=g) + 0.5) * 2 * math.pi / FRAMES
    phase = torch.rand(n, 1, rank, generator=g) * 2 * math.pi
    mix = torch.randn(rank, 263, generator=g) / math.sqrt(rank)
    return amplitude * torch.sin(freq * t + phase) @ mix


def test_overfits_eight_motions(bundle):
    """AdamW (official betas, a 10-step warm-up) on 8 smooth motions: the eval-mode loss falls
    more than 5x and ends below the loss of the all-zero output (so the network reconstructs
    the motions, not just their mean). The networks' dropout is off (speed); the objective's
    own randomness (Gumbel choice, quantizer dropout, dead-code reset) is on."""
    vq = bundle.vq_model
    # the tiny model's codebooks are random, not trained: their EMA statistics start as the
    # official code's do (count 1), not with the counts that protect a trained codebook
    objective = VQObjective(bundle, initial_count=1.0)
    batch = _batch(_smooth_motions(8, seed=0))
    x = batch["motions"]
    draws = Draws.seeded(0)

    def eval_loss() -> float:
        with torch.no_grad():
            vq.eval()
            loss = objective(bundle, batch, draws)["loss"].item()
            vq.train()
        return loss

    s = F.smooth_l1_loss
    zero, target_ts = torch.zeros_like(x), x.clone()
    target_ts[..., :4] = 0
    target_ts[..., -4:] = 0
    positions = 0.5 * s(zero[..., 4:67], x[..., 4:67])
    zero_loss = (2 * (s(zero, x) + positions) + s(zero, target_ts) + positions).item()

    lr, steps, warm_up = 3e-3, 60, 10
    optimizer = torch.optim.AdamW(vq.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    before = eval_loss()
    start = time.perf_counter()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warm_up)
        loss = objective(bundle, batch, draws)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    after = eval_loss()
    print(
        f"VQ overfit: eval loss {before:.4f} -> {after:.4f} in {steps} steps ({seconds:.1f} s); "
        f"all-zero output {zero_loss:.4f}"
    )
    assert before / after > 5.0
    assert after < 0.9 * zero_loss


def test_bfloat16_model_keeps_float32_statistics(tiny_pipeline):
    """A bf16 VQ trains: codes are chosen and averaged in float32, the statistics stay
    float32, the bf16 codebooks receive the update."""
    bundle = copy.deepcopy(tiny_pipeline.bundle).to(torch.bfloat16)
    bundle.vq_model.requires_grad_(True).train()
    objective = VQObjective(bundle)
    before = bundle.vq_model.quantizer2d.codebooks[0].clone()
    out = objective(bundle, _batch(_motions(1)), Draws.seeded(0))
    out["loss"].backward()
    assert out["loss"].dtype == torch.float32 and bool(torch.isfinite(out["loss"]))
    assert objective.quantizer2d.code_sum.dtype == torch.float32
    after = bundle.vq_model.quantizer2d.codebooks[0]
    assert after.dtype == torch.bfloat16 and not torch.equal(after, before)
    assert bundle.vq_model.encoder2d.model[0].weight.grad.dtype == torch.bfloat16


def test_bad_windows_are_rejected(bundle):
    objective = VQObjective(bundle)
    with pytest.raises(InvalidInputError, match=r"\(B, T0, 263\).*multiple of 4"):
        objective(bundle, _batch(torch.zeros(2, 62, 263)), Draws.seeded(0))
    with pytest.raises(InvalidInputError, match="motions"):
        objective(bundle, {"lengths": torch.zeros(2)}, Draws.seeded(0))
