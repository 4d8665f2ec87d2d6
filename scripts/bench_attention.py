#!/usr/bin/env python
"""Attention kernels on MoGenTS' shapes: which one to use for which sequence length.

The 2D transformers attend over three kinds of sequences per layer: all ``(T + 1) * 6`` tokens
(joint stage, S ~ 300), the 6 joint groups of a step (spatial stage, S = 6, many sequences) and the
T + 1 steps of a joint group (temporal stage, S ~ 50). For each, at a given generation batch
(doubled by classifier-free guidance), this times ``F.scaled_dot_product_attention`` with each
backend torch offers here beside the two-matmul path of :func:`hftrainer_mogents.modeling.layers
.attention`, and reports the error of each against float64.

    python scripts/bench_attention.py [--device cuda] [--batch 256] [--dtype bfloat16]
"""

from __future__ import annotations

import argparse
import functools
import time

import torch
import torch.nn.functional as F


def shapes(batch: int, steps: int = 49, joints: int = 6, heads: int = 6, width: int = 64):
    """(name, sequences N, length S, masked) of one guided forward of the 2D mask transformer."""
    n = 2 * batch  # conditional + unconditional
    return (
        [
            ("joint (T+1)*J", n, (steps + 1) * joints, True),
            ("spatial J", n * steps, joints, False),
            ("temporal T+1", n * joints, steps + 1, True),
        ],
        heads,
        width,
    )


def matmul_attention(q, k, v, mask, *, fp32_scores: bool):
    """Two batched matmuls around a softmax (mask: (N, 1, 1, S) bool, True = may attend)."""
    n, h, s, e = q.shape
    q2, k2, v2 = (t.reshape(n * h, s, e) for t in (q, k, v))
    if fp32_scores:
        q2, k2 = q2.float(), k2.float()
    scores = torch.bmm(q2, k2.transpose(1, 2)) * e**-0.5
    if mask is not None:
        scores = scores.masked_fill(~mask.expand(n, h, 1, s).reshape(n * h, 1, s), float("-inf"))
    return torch.bmm(scores.softmax(-1).to(v2.dtype), v2).view(n, h, s, e)


def sdpa(q, k, v, mask, backend):
    """SDPA with one backend (None = torch's choice)."""
    from torch.nn.attention import sdpa_kernel

    if backend is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    with sdpa_kernel(backend):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def timed(fn, device: str, reps: int = 20) -> float:
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / reps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--dtype", default="bfloat16")
    args = parser.parse_args()
    from torch.nn.attention import SDPBackend

    dtype = getattr(torch, args.dtype)
    device = args.device
    backends = {"sdpa default": None}
    if device == "cuda":
        backends.update(
            {
                "sdpa cudnn": SDPBackend.CUDNN_ATTENTION,
                "sdpa flash": SDPBackend.FLASH_ATTENTION,
                "sdpa efficient": SDPBackend.EFFICIENT_ATTENTION,
            }
        )
    backends["sdpa math"] = SDPBackend.MATH
    rows = [["stage", "N x H", "S", "path", "ms", "max err", "vs default"]]
    table, heads, width = shapes(args.batch)
    g = torch.Generator(device="cpu").manual_seed(0)
    for name, n, s, masked in table:
        q, k, v = (torch.randn(n, heads, s, width, generator=g) for _ in range(3))
        mask = None
        if masked:
            lengths = torch.randint(s // 2, s + 1, (n,), generator=g)
            mask = (torch.arange(s)[None] < lengths[:, None])[:, None, None, :]
        exact = F.scaled_dot_product_attention(
            q.double(), k.double(), v.double(), attn_mask=mask
        ).float()
        qd, kd, vd = (t.to(device, dtype) for t in (q, k, v))
        md = None if mask is None else mask.to(device)
        results = {}
        for label, backend in backends.items():
            run = functools.partial(sdpa, qd, kd, vd, md, backend)
            try:
                out = run()
            except RuntimeError as err:
                results[label] = (float("nan"), f"n/a ({str(err).splitlines()[0][:40]})")
                continue
            results[label] = (timed(run, device), float((out.float().cpu() - exact).abs().max()))
        for fp32 in (False, True):
            label = "matmul, fp32 scores" if fp32 else "matmul"
            run = functools.partial(matmul_attention, qd, kd, vd, md, fp32_scores=fp32)
            out = run()
            results[label] = (timed(run, device), float((out.float().cpu() - exact).abs().max()))
        base = results["sdpa default"][0]
        for label, (ms, err) in results.items():
            rows.append(
                [
                    name,
                    f"{n}x{heads}",
                    str(s),
                    label,
                    f"{ms:.3f}",
                    err if isinstance(err, str) else f"{err:.2e}",
                    f"{base / ms:.2f}x" if ms == ms else "",
                ]
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"device {device}, {args.dtype}, generation batch {args.batch} (x2 for guidance)")
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
