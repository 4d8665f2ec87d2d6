#!/usr/bin/env python
"""Training speed: samples/s and peak memory per stage, fp32 and bf16 autocast, the official
(reference-order) draws beside the default ones, measured in one run.

Each configuration runs in its own process (so each peak memory is its own) on a full-size
random-weight bundle built from the default (released HumanML3D) config, or on ``--artifact``.
A step is what a training iteration costs: the stage's objective (forward), backward and an
optimiser step of the stage's preset, on a synthetic batch (normalised motions of random lengths,
distinct captions). With ``--device cuda`` it times the same on the GPU and adds the mask stage at
the official per-process batch of 64.

    python scripts/bench_train.py [--stages vq,mask,res,length] [--steps 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from bench_generate import cpu_description, table  # this folder's shared report helpers

STAGES = ("vq", "mask", "res", "length")
PRECISIONS = ("fp32", "bf16")
MODES = ("default", "reference")
# per-stage CPU batch (the official ones are 256 / 64 / 64 / 64: too slow on 2 cores)
CPU_BATCH = {"vq": 32, "mask": 8, "res": 8, "length": 64}


def build_bundle(artifact: Path | None, device: str):
    """A full-size random bundle (residual tables given upstream's N(0, 0.02) init), or the
    artifact's."""
    from hftrainer_mogents.bundle import MoGenTSBundle

    if artifact is not None:
        return MoGenTSBundle.from_pretrained(artifact).to(device)
    torch.manual_seed(0)
    bundle = MoGenTSBundle.from_config()
    with torch.no_grad():
        for name, param in bundle.named_parameters():
            if (
                name.startswith(("res_transformer_aux.", "res_transformer_ts."))
                and param.dim() == 3
            ):
                param.normal_(0.0, 0.02)
    return bundle.to(device)


def synthetic_batch(stage: str, batch: int, device: str, seed: int = 0) -> dict:
    """Normalised motions with random lengths (multiples of 4 in [40, 196], 64-frame windows for
    the VQ) and distinct captions."""
    g = torch.Generator().manual_seed(seed)
    if stage == "vq":
        return {
            "motions": torch.randn(batch, 64, 263, generator=g).to(device),
            "lengths": torch.full((batch,), 64, dtype=torch.long, device=device),
        }
    lengths = torch.randint(10, 50, (batch,), generator=g) * 4
    motions = torch.randn(batch, 196, 263, generator=g)
    motions[torch.arange(196)[None, :] >= lengths[:, None]] = 0.0
    return {
        "captions": [f"a person walks forward then turns around, take {i}" for i in range(batch)],
        "motions": motions.to(device),
        "lengths": lengths.to(device),
    }


def worker(args: argparse.Namespace) -> None:
    """One (stage, precision, mode, batch) configuration: seconds per step, in its own process."""
    from hftrainer_mogents.training.objectives import Draws, build_objective
    from hftrainer_mogents.training.stages import apply_stage

    device = args.device
    bundle = build_bundle(args.artifact, device)
    preset = apply_stage(bundle, args.stage)
    objective = build_objective(args.stage, bundle).to(device)
    options = {k: v for k, v in preset.optimizer.items() if k != "type"}
    optimizer = getattr(torch.optim, preset.optimizer["type"])(
        bundle.trainable_parameters(), **options
    )
    batch = synthetic_batch(args.stage, args.batch, device)
    use_bf16 = args.precision == "bf16"

    def step(seed: int) -> float:
        draws = Draws.seeded(seed, mode=args.mode, device=device)
        with torch.autocast(
            device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=use_bf16
        ):
            out = objective(bundle, batch, draws)
        out["loss"].backward()
        if preset.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(bundle.trainable_parameters(), preset.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(out["loss"])

    step(0)  # warm-up (allocations, autotuning, lazy init)
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    loss = float("nan")
    for i in range(args.steps):
        start = time.perf_counter()
        loss = step(i + 1)
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    seconds = min(times)
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "loss": loss}))


def run_worker(script: Path, args: argparse.Namespace, **config) -> dict:
    cmd = [sys.executable, str(script), "--worker", "--device", args.device, "--steps"]
    cmd.append(str(args.steps))
    for key, value in config.items():
        cmd += [f"--{key}", str(value)]
    if args.artifact is not None:
        cmd += ["--artifact", str(args.artifact)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--artifact", type=Path, help="artifact folder (default: full-size random)")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--steps", type=int, default=3, help="timed steps (the fastest is kept)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--batch", type=int, help="batch for every stage (default: per stage, see CPU_BATCH)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    script = Path(__file__).resolve()
    stages = args.stages.split(",")
    precisions = args.precisions.split(",")
    modes = args.modes.split(",")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
        f"CPU {cpu_description()}",
        flush=True,
    )
    jobs = []
    for stage in stages:
        batch = args.batch or CPU_BATCH[stage]
        for precision in precisions:
            for mode in modes:
                jobs.append((stage, batch, precision, mode))
    if args.device.startswith("cuda") and "mask" in stages and args.batch is None:
        jobs.append(("mask", 64, "fp32", "default"))
        jobs.append(("mask", 64, "bf16", "default"))
    results = {}
    for stage, batch, precision, mode in jobs:
        print(f"timing {stage} batch {batch} {precision} {mode} ...", flush=True)
        results[(stage, batch, precision, mode)] = run_worker(
            script, args, stage=stage, batch=batch, precision=precision, mode=mode
        )

    rows = [["stage", "batch", "precision", "draws", "s/step", "samples/s", "peak MB", "x fp32"]]
    for (stage, batch, precision, mode), r in results.items():
        if "error" in r:
            rows.append([stage, str(batch), precision, mode, "error", r["error"][:40], "", ""])
            continue
        base = results.get((stage, batch, "fp32", mode), {})
        ratio = base.get("seconds", float("nan")) / r["seconds"]
        rows.append(
            [
                stage,
                str(batch),
                precision,
                mode,
                f"{r['seconds']:.3f}",
                f"{batch / r['seconds']:.1f}",
                f"{r['peak_mb']:.0f}",
                f"{ratio:.2f}x",
            ]
        )
    print()
    print(
        f"full-size {'artifact' if args.artifact else 'random'} model, {args.device}; a step = "
        "forward + backward + optimiser step; fastest of "
        f"{args.steps}; peak MB: {'CUDA allocated' if args.device.startswith('cuda') else 'RSS'}"
    )
    print(table(rows))
    if args.json:
        args.json.write_text(
            json.dumps({"|".join(map(str, k)): v for k, v in results.items()}, indent=2)
        )


if __name__ == "__main__":
    main()
