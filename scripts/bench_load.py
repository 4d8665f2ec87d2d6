#!/usr/bin/env python
"""Load time: ``MoGenTSBundle.from_pretrained`` against loading the same weights the official way.

The script writes, from one set of full-size random weights: our artifact (safetensors, CLIP once)
and the official release layout (pickled ``.tar`` files + a full OpenAI-layout CLIP checkpoint,
fp16). The official loading path is reproduced step by step in a separate process: every network
built by its constructor (random init, as upstream), state dicts read with ``torch.load``
(``weights_only=False``, the torch 2.2 default upstream ran with), and the CLIP model built and
loaded four times (once per transformer: ``clip.load`` rebuilds the visual and text towers from
the checkpoint, casts to fp32 on CPU, then ``convert_weights`` casts to fp16). Each path runs in
its own process; the table gives seconds to ready, peak memory and the ratio.

    python scripts/bench_load.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn


def write_both(folder: Path) -> tuple[Path, Path, Path]:
    from hftrainer_mogents.bundle import MoGenTSBundle

    torch.manual_seed(0)
    bundle = MoGenTSBundle.from_config()
    artifact = bundle.save_pretrained(folder / "artifact")
    logs = folder / "logs" / "humanml3d"
    for name in ("pretrain_vq", "pretrain_mtrans", "pretrain_rtrans"):
        (logs / name / "model").mkdir(parents=True)
    torch.save(
        {"vq_model": bundle.vq_model.state_dict(), "ep": 1, "value": 0.1},
        logs / "pretrain_vq/model/net_best_fid.tar",
    )
    torch.save(
        {
            "t2m_transformer_aux": bundle.mask_transformer_aux.state_dict(),
            "t2m_transformer_ts": bundle.mask_transformer_ts.state_dict(),
            "ep": 1,
            "best_value": 0.1,
        },
        logs / "pretrain_mtrans/model/net_best_fid.tar",
    )
    torch.save(
        {
            "res_transformer_aux": bundle.res_transformer_aux.state_dict(),
            "res_transformer_ts": bundle.res_transformer_ts.state_dict(),
            "ep": 1,
            "best_value": 0.1,
        },
        logs / "pretrain_rtrans/model/net_best_fid.tar",
    )
    length = folder / "checkpoints/humanml3d/length_estimator/model"
    length.mkdir(parents=True)
    torch.save(
        {"estimator": bundle.length_estimator.state_dict(), "epoch": 1, "niter": 1},
        length / "finest.tar",
    )
    clip = {k: v.half() for k, v in bundle.text_encoder.state_dict().items()}
    clip.update({k: v.half() for k, v in _visual_state().items()})
    torch.save(clip, folder / "ViT-B-32.pt")
    return artifact, folder, folder / "ViT-B-32.pt"


def _visual_state() -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in VisualTower().state_dict().items()} | {
        "logit_scale": torch.ones(())
    }


class _Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, width // 64)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, 4 * width))
        self.mlp.add_module("c_proj", nn.Linear(4 * width, width))
        self.ln_2 = nn.LayerNorm(width)


class VisualTower(nn.Module):
    """The parameter layout of OpenAI's ViT-B/32 visual tower (for the official-path emulation:
    upstream builds and initialises it inside ``clip.load``)."""

    def __init__(
        self,
        width: int = 768,
        layers: int = 12,
        patch: int = 32,
        resolution: int = 224,
        out: int = 512,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width))
        self.positional_embedding = nn.Parameter(torch.randn((resolution // patch) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = nn.Module()
        self.transformer.resblocks = nn.Sequential(*[_Block(width) for _ in range(layers)])
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, out))

    def state_dict(self, *args, **kwargs):
        return {f"visual.{k}": v for k, v in super().state_dict(*args, **kwargs).items()}


def official_load(root: Path, clip_path: Path) -> nn.Module:
    """The official loading sequence (demo_mogen.py), on our module classes."""
    from hftrainer_mogents.config import MoGenTSConfig
    from hftrainer_mogents.modeling.length_estimator import LengthEstimator
    from hftrainer_mogents.modeling.mask_transformer import MaskTransformer, MaskTransformer2D
    from hftrainer_mogents.modeling.residual_transformer import (
        ResidualTransformer,
        ResidualTransformer2D,
    )
    from hftrainer_mogents.modeling.rvq_vae import RVQVAE
    from hftrainer_mogents.modeling.text_encoder import CLIPTextEncoder, select_text_state_dict

    cfg = MoGenTSConfig()
    vq = cfg.vq
    logs = root / "logs" / "humanml3d"

    def clip_copy() -> nn.Module:  # clip.load(jit=False) + convert_weights, per transformer
        state = torch.load(clip_path, map_location="cpu", weights_only=False)
        model = nn.Module()
        model.text = CLIPTextEncoder(cfg.text_encoder.replace(dtype="float32"))
        model.visual = VisualTower()
        model.text.load_state_dict(select_text_state_dict(state))
        model.visual.load_state_dict(
            {k[len("visual.") :]: v for k, v in state.items() if k.startswith("visual.")}
        )
        model.float()
        model.half()
        return model

    out = nn.Module()
    out.vq = RVQVAE(vq)
    out.vq.load_state_dict(
        torch.load(logs / "pretrain_vq/model/net_best_fid.tar", weights_only=False)["vq_model"]
    )
    mask = torch.load(logs / "pretrain_mtrans/model/net_best_fid.tar", weights_only=False)
    out.mask_aux = MaskTransformer(cfg.mask, vq.code_dim1d, vq.nb_code1d)
    out.mask_aux.clip = clip_copy()
    out.mask_aux.load_state_dict(mask["t2m_transformer_aux"], strict=False)
    out.mask_ts = MaskTransformer2D(cfg.mask, vq.code_dim2d, vq.nb_code2d)
    out.mask_ts.clip = clip_copy()
    out.mask_ts.load_state_dict(mask["t2m_transformer_ts"], strict=False)
    res = torch.load(logs / "pretrain_rtrans/model/net_best_fid.tar", weights_only=False)
    out.res_aux = ResidualTransformer(cfg.res, vq.code_dim1d, vq.nb_code1d, vq.num_quantizers)
    out.res_aux.clip = clip_copy()
    out.res_aux.load_state_dict(res["res_transformer_aux"], strict=False)
    out.res_ts = ResidualTransformer2D(cfg.res, vq.code_dim2d, vq.nb_code2d, vq.num_quantizers)
    out.res_ts.clip = clip_copy()
    out.res_ts.load_state_dict(res["res_transformer_ts"], strict=False)
    out.length = LengthEstimator(cfg.length)
    out.length.load_state_dict(
        torch.load(
            root / "checkpoints/humanml3d/length_estimator/model/finest.tar", weights_only=False
        )["estimator"]
    )
    return out.eval()


def worker(kind: str, artifact: Path, root: Path, clip: Path) -> None:
    start = time.perf_counter()
    if kind == "ours":
        from hftrainer_mogents.bundle import MoGenTSBundle

        model = MoGenTSBundle.from_pretrained(artifact)
    else:
        model = official_load(root, clip)
    seconds = time.perf_counter() - start
    n_clip = sum(1 for name, _ in model.named_modules() if name.endswith(("clip", "text_encoder")))
    params = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "clip_copies": n_clip,
                "weights_mb": params,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", choices=["ours", "official"], help=argparse.SUPPRESS)
    parser.add_argument("--paths", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, *args.paths)
        return
    with tempfile.TemporaryDirectory(prefix="mogents-bench-load-") as tmp:
        print("writing full-size random weights in both layouts ...", flush=True)
        artifact, root, clip = write_both(Path(tmp))
        results: dict[str, list[dict]] = {"official": [], "ours": []}
        for _ in range(args.repeats):
            for kind in ("official", "ours"):
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--worker",
                        kind,
                        "--paths",
                        str(artifact),
                        str(root),
                        str(clip),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = {k: min(v, key=lambda r: r["seconds"]) for k, v in results.items()}
    print(f"\n{'path':<40}{'seconds':>9}{'peak MB':>10}{'weights MB':>12}{'CLIP copies':>13}")
    labels = {
        "official": "official way (pickled .tar, CLIP x4)",
        "ours": "from_pretrained (safetensors, CLIP x1)",
    }
    for kind in ("official", "ours"):
        r = best[kind]
        print(
            f"{labels[kind]:<40}{r['seconds']:>9.2f}{r['peak_rss_mb']:>10.0f}{r['weights_mb']:>12.0f}{r['clip_copies']:>13}"
        )
    print(
        f"\nspeed-up {best['official']['seconds'] / best['ours']['seconds']:.1f}x (target >= 3x), best of {args.repeats}"
    )


if __name__ == "__main__":
    main()
