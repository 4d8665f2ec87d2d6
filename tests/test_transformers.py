"""The four transformers reproduce the official code's outputs (fixture modules.npz)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import DEVICES

from hftrainer_mogents.config import MaskTransformerConfig, ResidualTransformerConfig
from hftrainer_mogents.convert.safe_pickle import torch_load_weights_only
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.modeling.mask_transformer import MaskTransformer, MaskTransformer2D
from hftrainer_mogents.modeling.residual_transformer import (
    ResidualTransformer,
    ResidualTransformer2D,
    scrambled_spatial_index,
)

ATOL = 1e-5  # absolute, on values of order 1; scaled by max(1, max|ref|) for larger values
TINY_MASK = MaskTransformerConfig(latent_dim=32, ff_size=64, n_layers=2, n_heads=2)
TINY_RES = ResidualTransformerConfig(latent_dim=32, ff_size=64, n_layers=2, n_heads=2)
# fixture VQ: nb_code1d 32 / code_dim1d 16, nb_code2d 16 / code_dim2d 24, Q = 4


@pytest.fixture(scope="module")
def tiny(fixtures_dir):
    root = fixtures_dir / "mogents_tiny"
    mtrans = torch_load_weights_only(root / "logs/humanml3d/pretrain_mtrans/model/net_best_fid.tar")
    rtrans = torch_load_weights_only(root / "logs/humanml3d/pretrain_rtrans/model/net_best_fid.tar")
    models = {
        "mask_aux": MaskTransformer(TINY_MASK, code_dim=16, num_tokens=32),
        "mask_ts": MaskTransformer2D(TINY_MASK, code_dim=24, num_tokens=16),
        "res_aux": ResidualTransformer(TINY_RES, code_dim=16, num_tokens=32, num_quantizers=4),
        "res_ts": ResidualTransformer2D(TINY_RES, code_dim=24, num_tokens=16, num_quantizers=4),
    }
    states = {
        "mask_aux": mtrans["t2m_transformer_aux"],
        "mask_ts": mtrans["t2m_transformer_ts"],
        "res_aux": rtrans["res_transformer_aux"],
        "res_ts": rtrans["res_transformer_ts"],
    }
    for name, model in models.items():
        model.load_state_dict(states[name], strict=True)
        model.eval()
    ref = dict(np.load(root / "modules.npz"))
    return models, ref


def _close(ours: torch.Tensor, ref: np.ndarray, name: str, atol: float = ATOL) -> None:
    ours = ours.detach().float().numpy()
    assert ours.shape == ref.shape, f"{name}: shape {ours.shape} != {ref.shape}"
    err = float(np.abs(ours - ref).max())
    bound = atol * max(1.0, float(np.abs(ref).max()))
    assert err <= bound, f"{name}: max abs diff {err:.3g} > {bound:.3g}"


def _t(a):
    return torch.from_numpy(a)


@pytest.mark.parametrize("batched", [False, True], ids=["two-pass", "batched-cfg"])
def test_mask_aux_logits(tiny, batched):
    models, ref = tiny
    model = models["mask_aux"]
    ids, pad, cond = _t(ref["mask_aux_ids"]), _t(ref["mask_aux_padding_mask"]), _t(ref["cond"])
    with torch.no_grad():
        _close(model(ids, cond, pad).transpose(1, 2), ref["mask_aux_logits_cond"], "cond")
        _close(
            model(ids, torch.zeros_like(cond), pad).transpose(1, 2),
            ref["mask_aux_logits_uncond"],
            "uncond",
        )
        cfg = model.forward_with_cond_scale(ids, cond, pad, 4, batched=batched)
        _close(cfg.transpose(1, 2), ref["mask_aux_logits_cfg4"], "cfg4")


@pytest.mark.parametrize("batched", [False, True], ids=["two-pass", "batched-cfg"])
def test_mask_ts_logits(tiny, batched):
    models, ref = tiny
    model = models["mask_ts"]
    ids, pad, cond = _t(ref["mask_ts_ids"]), _t(ref["mask_ts_padding_mask"]), _t(ref["cond"])
    with torch.no_grad():
        _close(model(ids, cond, pad).transpose(1, 2), ref["mask_ts_logits_cond"], "cond")
        _close(
            model(ids, torch.zeros_like(cond), pad).transpose(1, 2),
            ref["mask_ts_logits_uncond"],
            "uncond",
        )
        cfg = model.forward_with_cond_scale(ids, cond, pad, 4, batched=batched)
        _close(cfg.transpose(1, 2), ref["mask_ts_logits_cfg4"], "cfg4")


def _history(model, ids: torch.Tensor) -> list[torch.Tensor]:
    """history_i = sum_{k<i} table_k[ids[..., k]], for i = 1 .. Q-1."""
    out, acc = [], None
    for layer in range(1, ids.shape[-1]):
        emb = model.embed_ids(ids[..., layer - 1], layer - 1)
        acc = emb if acc is None else acc + emb
        out.append(acc)
    return out


@pytest.mark.parametrize("batched", [False, True], ids=["two-pass", "batched-cfg"])
def test_res_aux_logits(tiny, batched):
    models, ref = tiny
    model = models["res_aux"]
    ids, pad, cond = _t(ref["res_aux_ids"]), _t(ref["res_aux_padding_mask"]), _t(ref["cond"])
    with torch.no_grad():
        history = _history(model, ids)
        for i, hist in enumerate(history):
            _close(hist, ref["res_aux_history"][i], f"history {i + 1}")
            layer = i + 1
            c1 = model.forward_with_cond_scale(hist, layer, cond, pad, 1, batched=batched)
            _close(c1.transpose(1, 2), ref["res_aux_logits_cond"][i], f"cond layer {layer}")
            c5 = model.forward_with_cond_scale(hist, layer, cond, pad, 5, batched=batched)
            _close(c5.transpose(1, 2), ref["res_aux_logits_cfg5"][i], f"cfg5 layer {layer}")


@pytest.mark.parametrize("batched", [False, True], ids=["two-pass", "batched-cfg"])
def test_res_ts_logits(tiny, batched):
    models, ref = tiny
    model = models["res_ts"]
    ids = _t(ref["res_ts_ids"])  # (B, T, J, Q)
    b, t, j, q = ids.shape
    pad, cond = _t(ref["res_ts_padding_mask"]), _t(ref["cond"])
    flat_pad = pad.reshape(b, t * j)
    with torch.no_grad():
        history = _history(model, ids.reshape(b, t * j, q))
        for i, hist in enumerate(history):
            _close(hist, ref["res_ts_history"][i], f"history {i + 1}")
            layer = i + 1
            c1 = model.forward_with_cond_scale(
                hist, layer, cond, flat_pad, 1, batched=batched, joints=j
            )
            _close(c1.transpose(1, 2), ref["res_ts_logits_cond"][i], f"cond layer {layer}")
            c5 = model.forward_with_cond_scale(
                hist, layer, cond, flat_pad, 5, batched=batched, joints=j
            )
            _close(c5.transpose(1, 2), ref["res_ts_logits_cfg5"][i], f"cfg5 layer {layer}")


def test_scrambled_index_matches_memory_reinterpretation():
    # independent computation: upstream's (J, B*T) tensor read as (T, B, J)
    b, t, j = 3, 5, 6
    grid = torch.arange(b * t * j).view(b, t, j)  # entry id of (b, t, j)
    upstream = grid.permute(2, 0, 1).reshape(j, b * t)  # (J, B*T), column b*T + t
    expected = upstream.reshape(t, b, j).permute(1, 0, 2).reshape(b, t * j)
    got = scrambled_spatial_index(torch.tensor([5, 3, 4]), t, j, batch_coupled=True)
    assert torch.equal(got, expected)
    # the documented example: slot (t=0, j=1, b=0) reads (b=0, t=1, j=0)
    assert int(got[0, 1]) == int(grid[0, 1, 0])


def test_per_sample_scramble_equals_a_batch_of_one():
    t, j = 7, 6
    lengths = torch.tensor([7, 4, 2])
    got = scrambled_spatial_index(lengths, t, j, batch_coupled=False)
    for b, n in enumerate(lengths.tolist()):
        alone = scrambled_spatial_index(torch.tensor([n]), n, j, batch_coupled=True)[0]  # (n*J,)
        # map the lone sample's indices into the padded batch layout
        src_t, src_j = alone // j, alone % j
        expected = (b * t + src_t) * j + src_j
        assert torch.equal(got[b, : n * j], expected), b
        pad_slots = torch.arange(n * j, t * j)
        assert torch.equal(got[b, n * j :], b * t * j + pad_slots)


def test_res_ts_batch_independent_with_per_sample_scramble(tiny):
    models, ref = tiny
    model = models["res_ts"]
    ids = _t(ref["res_ts_ids"])
    b, t, j, q = ids.shape
    pad = _t(ref["res_ts_padding_mask"])[..., 0]  # (B, T)
    lengths = (~pad).sum(1)
    cond = _t(ref["cond"])
    with torch.no_grad():
        hist = _history(model, ids.reshape(b, t * j, q))[0]
        index = scrambled_spatial_index(lengths, t, j, batch_coupled=False)
        batched = model.forward_with_cond_scale(
            hist, 1, cond, pad, 5, joints=j, scramble_index=index
        )
        for k in range(b):
            n = int(lengths[k])
            alone = model.forward_with_cond_scale(
                hist[k : k + 1, : n * j], 1, cond[k : k + 1], pad[k : k + 1, :n], 5, joints=j
            )
            err = (batched[k, : n * j] - alone[0]).abs().max().item()
            bound = ATOL * max(1.0, alone.abs().max().item())
            assert err < bound, f"sample {k}: {err} >= {bound}"


def _res_nets(tiny, name):
    """The fixture network (shared tables) and a fresh one with per-layer tables and a random
    output bias (the ``2 * out + bias`` rule)."""
    models, _ = tiny
    net = models[f"res_{name}"]
    torch.manual_seed(0)
    config = dataclasses.replace(TINY_RES, share_weight=False)
    fresh = type(net)(config, net.code_dim, net.num_tokens, net.num_quantizers).eval()
    fresh.output_proj_bias.data.normal_()
    return [net, fresh]


@pytest.mark.parametrize("name", ["aux", "ts"])
def test_res_layer_tensor_equals_each_sample_with_its_int_layer(tiny, name):
    """A (B,) layer tensor gives each sample what its int layer gives it when run alone (2D: with
    the per-sample scramble; upstream's batch-coupled one mixes samples, and the residual
    objective's test checks it against the official formula)."""
    _, ref = tiny
    j = 6 if name == "ts" else 1
    t, lengths = 7, torch.tensor([7, 5, 6, 2, 7])
    layers = torch.tensor([3, 1, 2, 1, 2])
    b = len(layers)
    pad = torch.arange(t)[None] >= lengths[:, None]
    gen = torch.Generator().manual_seed(1)
    cond = torch.randn(b, 512, generator=gen)
    for net in _res_nets(tiny, name):
        kwargs = {"joints": j} if name == "ts" else {}
        history = torch.randn(b, t * j, net.code_dim, generator=gen)
        with torch.no_grad():
            if name == "ts":
                index = scrambled_spatial_index(lengths, t, j, batch_coupled=False)
                mixed = net(history, layers, cond, pad, scramble_index=index, **kwargs)
            else:
                mixed = net(history, layers, cond, pad)
            for k in range(b):
                n, layer = int(lengths[k]), int(layers[k])
                alone = net(
                    history[k : k + 1, : n * j],
                    layer,
                    cond[k : k + 1],
                    pad[k : k + 1, :n],
                    **kwargs,
                )
                assert torch.allclose(mixed[k, : n * j], alone[0], atol=1e-5), (k, layer)
    # one layer for all samples as a tensor: upstream's logits (fixture)
    net = _res_nets(tiny, name)[0]
    ids = _t(ref[f"res_{name}_ids"])
    b, q = ids.shape[0], ids.shape[-1]
    ids = ids.reshape(b, -1, q)
    pad, cond = _t(ref[f"res_{name}_padding_mask"]), _t(ref["cond"])
    with torch.no_grad():
        for i, hist in enumerate(_history(net, ids)):
            out = net(hist, torch.full((b,), i + 1), cond, pad.reshape(b, -1), **kwargs)
            _close(out.transpose(1, 2), ref[f"res_{name}_logits_cond"][i], f"layer {i + 1}")
    with pytest.raises(InvalidInputError, match=r"\(B,\) = \(2,\) int64"):
        net(hist, torch.ones(3, dtype=torch.int64), cond, pad.reshape(b, -1), **kwargs)


@pytest.mark.parametrize("seq", [6, 50, 120], ids=["spatial", "temporal", "joint-stage"])
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
@pytest.mark.parametrize("device", DEVICES)
def test_reduced_precision_attention_matches_fp32(seq, masked, device):
    import torch.nn.functional as F

    from hftrainer_mogents.modeling.layers import attention

    g = torch.Generator().manual_seed(seq)
    q, k, v = (torch.randn(3, 2, seq, 16, generator=g).to(device) for _ in range(3))
    mask = None
    if masked:
        mask = torch.ones(3, 1, 1, seq, dtype=torch.bool, device=device)
        mask[1, ..., seq // 2 :] = False
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.equal(attention(q, k, v, mask), expected)  # fp32: the fused kernel itself
    low = attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), mask)
    assert low.dtype == torch.bfloat16 and low.shape == expected.shape
    err = (low.float() - expected).abs().max().item()
    assert err < 0.05, err  # bf16 rounding of inputs and scores


@pytest.mark.parametrize("device", DEVICES)
def test_encode_valid_rows_runs_the_valid_rows_and_fills_the_rest(device):
    from hftrainer_mogents.modeling.layers import TransformerEncoder, encode_valid_rows

    torch.manual_seed(0)
    encoder = TransformerEncoder(16, 2, 32, 2).eval().to(device)
    x = torch.randn(5, 6, 16, device=device)
    valid = torch.tensor([True, False, True, True, False], device=device)
    fill = torch.full_like(x, 7.0)
    with torch.inference_mode():
        out = encode_valid_rows(encoder, x, valid, fill)
        for row in range(5):
            expected = encoder(x[row : row + 1])[0] if valid[row] else fill[row]
            torch.testing.assert_close(out[row], expected, atol=1e-5, rtol=1e-5)
