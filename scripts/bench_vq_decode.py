"""Benchmark ``RVQVAE.forward_decoder`` at the released size (random weights).

Decodes full-length token grids (49 steps = 196 frames, all 6 layers) for a few batch sizes in
fp32 and bf16 (weights cast once), and prints the median time per call, the throughput and the
bf16 drift against fp32.

    python scripts/bench_vq_decode.py --batch-sizes 1 8 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from hftrainer_mogents.config import MAX_MOTION_LENGTH, N_JOINT_GROUPS, UNIT_LENGTH, VQConfig
from hftrainer_mogents.modeling.rvq_vae import RVQVAE


def _random_ids(config: VQConfig, batch: int, steps: int, gen: torch.Generator, device):
    q = config.num_quantizers
    ids_aux = torch.randint(config.nb_code1d, (batch, steps, q), generator=gen)
    ids_ts = torch.randint(config.nb_code2d, (batch, steps, N_JOINT_GROUPS, q), generator=gen)
    return ids_aux.to(device), ids_ts.to(device)


def _time(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = VQConfig()
    torch.manual_seed(0)
    model = RVQVAE(config).eval().to(device)
    for layer in [*model.quantizer1d.layers, *model.quantizer2d.layers]:
        layer.codebook.normal_(0.0, 0.5)
    model_bf16 = RVQVAE(config).eval()
    model_bf16.load_state_dict(model.state_dict())
    model_bf16.to(device=device, dtype=torch.bfloat16)

    steps = MAX_MOTION_LENGTH // UNIT_LENGTH
    gen = torch.Generator().manual_seed(1)
    rows = []
    with torch.inference_mode():
        for batch in args.batch_sizes:
            ids = _random_ids(config, batch, steps, gen, device)
            fp32 = _time(lambda ids=ids: model.forward_decoder(*ids), args.repeats, device)
            bf16 = _time(lambda ids=ids: model_bf16.forward_decoder(*ids), args.repeats, device)
            y32 = model.forward_decoder(*ids)[1]
            y16 = model_bf16.forward_decoder(*ids)[1].float()
            drift = ((y16 - y32).abs().max() / y32.abs().max()).item()
            rows.append(
                {
                    "device": str(device),
                    "threads": torch.get_num_threads(),
                    "batch": batch,
                    "frames": steps * UNIT_LENGTH,
                    "fp32_s": round(fp32, 4),
                    "bf16_s": round(bf16, 4),
                    "fp32_ms_per_sample": round(1e3 * fp32 / batch, 1),
                    "bf16_ms_per_sample": round(1e3 * bf16 / batch, 1),
                    "bf16_rel_max_drift": float(f"{drift:.3g}"),
                }
            )
            print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
