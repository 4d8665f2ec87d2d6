#!/usr/bin/env python
"""Generation speed: reference mode vs fast mode (fp32, bf16), measured in one run.

Writes a full-size random-weight artifact from the default (released HumanML3D) config unless
``--artifact`` is given (no hub), then times each configuration in its own process (so each peak
memory is its own): seconds per sentence, sentences/s, achieved GFLOP/s (FLOPs counted with
``torch.utils.flop_counter`` on the same call), peak memory, and the ratios. Also measures the
numerical drift of bf16 against fp32 (max logit error, mean KL divergence of the per-position token
distributions) on the tiny official fixture when found, and on the full-size model. With a GPU it
adds batch-1 latency and batch-256 throughput in bf16.

    python scripts/bench_generate.py [--batches 1,8] [--length 196] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from hftrainer_mogents.utils.precision import cpu_bf16_instructions

TEXT = "a person walks forward then turns around"

CONFIGS = {
    "reference": ("reference", "float32"),
    "fast-fp32": ("fast", "float32"),
    "fast-bf16": ("fast", "bfloat16"),
}


def make_artifact(folder: Path) -> Path:
    from hftrainer_mogents.bundle import MoGenTSBundle

    torch.manual_seed(0)
    bundle = MoGenTSBundle.from_config()
    with torch.no_grad():  # the residual tables start at zero: give them upstream's init
        for name, param in bundle.named_parameters():
            if (
                name.startswith(("res_transformer_aux.", "res_transformer_ts."))
                and param.dim() == 3
            ):
                param.normal_(0.0, 0.02)
    bundle.save_pretrained(folder)
    return folder


def best_time(run, repeats: int) -> float:
    """Fastest of ``repeats`` timed calls of ``run`` (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def count_flops(run) -> float:
    """FLOPs of one call of ``run``, by ``torch.utils.flop_counter`` (eager ops only)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        run()
    return counter.get_total_flops()


def worker(args: argparse.Namespace) -> None:
    """One CPU configuration, in its own process (so its peak memory is its own)."""
    from hftrainer_mogents.pipeline import MoGenTSPipeline

    mode, dtype = CONFIGS[args.config]
    if not args.plain_malloc:
        # as the mogents commands do on CPU (the same for every configuration)
        from hftrainer_mogents.utils.memory import keep_freed_memory

        keep_freed_memory()
    pipe = MoGenTSPipeline.from_pretrained(args.artifact, device="cpu", dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    # distinct prompts: the pipeline encodes each distinct text once
    texts = [f"{TEXT}, take {i}" for i in range(args.batch)]
    lengths = [args.length] * args.batch

    def run():
        pipe(texts, lengths, time_steps=args.steps, seed=0, mode=mode, batch_size=args.batch)

    pipe(["warm up"], [40], time_steps=2, seed=0, mode=mode)
    result = {
        "seconds": best_time(run, args.repeats),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if args.count_flops:
        result["flops"] = count_flops(run)
    print(json.dumps(result))


def run_worker(
    script: Path, artifact: Path, config: str, batch: int, args, count_flops: bool
) -> dict:
    cmd = [
        sys.executable,
        str(script),
        "--worker",
        "--artifact",
        str(artifact),
        "--config",
        config,
        "--batch",
        str(batch),
        "--length",
        str(args.length),
        "--steps",
        str(args.steps),
        "--repeats",
        str(args.repeats),
    ]
    if count_flops:
        cmd.append("--count-flops")
    if args.plain_malloc:
        cmd.append("--plain-malloc")
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"worker {config} batch {batch} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_description() -> str:
    """CPU model and its bf16 instruction sets (AMX or AVX512-BF16 decide the bf16 speed-up;
    torch's own view of them: :func:`hftrainer_mogents.utils.precision.cpu_bf16_instructions`)."""
    info = Path("/proc/cpuinfo")
    if not info.exists():
        return "unknown"
    text = info.read_text()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")),
        "?",
    )
    isa = [flag for flag in ("amx_bf16", "avx512_bf16", "avx512f") if f" {flag}" in text]
    return f"{model} ({', '.join(isa) or 'no bf16 instructions'})"


def sgemm_peak(device: str) -> float:
    """A practical fp32 peak: GFLOP/s of a large square matmul on this device."""
    n = 2048
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    start = time.perf_counter()
    reps = 5
    for _ in range(reps):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


@torch.no_grad()
def drift(bundle_fp32, bundle_bf16, *, steps: int = 49, seed: int = 0) -> dict[str, float]:
    """bf16 vs fp32 guided logits of the four transformers on the same random inputs."""
    g = torch.Generator().manual_seed(seed)
    cfg = bundle_fp32.config
    b = 2
    cond = torch.randn(b, cfg.mask.clip_dim, generator=g)
    pad = torch.zeros(b, steps, dtype=torch.bool)
    pad[1, steps // 2 :] = True
    out = {}
    pairs = []
    for name in ("mask_transformer_aux", "mask_transformer_ts"):
        m32, m16 = getattr(bundle_fp32, name), getattr(bundle_bf16, name)
        shape = (b, steps) if name.endswith("aux") else (b, steps, 6)
        ids = torch.randint(0, m32.num_tokens, shape, generator=g)
        ids[torch.rand(shape, generator=g) < 0.5] = m32.mask_id
        pairs.append(
            (
                name,
                m32.forward_with_cond_scale(ids, cond, pad, 4.0),
                m16.forward_with_cond_scale(ids, cond, pad, 4.0),
            )
        )
    for name in ("res_transformer_aux", "res_transformer_ts"):
        m32, m16 = getattr(bundle_fp32, name), getattr(bundle_bf16, name)
        n = steps if name.endswith("aux") else steps * 6
        hist = torch.randn(b, n, m32.code_dim, generator=g) * 0.5
        pairs.append(
            (
                name,
                m32.forward_with_cond_scale(hist, 1, cond, pad, 5.0),
                m16.forward_with_cond_scale(hist.bfloat16(), 1, cond, pad, 5.0),
            )
        )
    for name, a, c in pairs:
        a, c = a.float(), c.float()
        logp, logq = a.log_softmax(-1), c.log_softmax(-1)
        kl = (logp.exp() * (logp - logq)).sum(-1).mean()
        out[name] = {
            "max_logit_err": float((a - c).abs().max()),
            "logit_scale": float(a.abs().max()),
            "mean_kl": float(kl),
        }
    return out


def fixture_drift(fixtures: Path | None) -> dict | None:
    if fixtures is None or not (fixtures / "mogents_tiny").is_dir():
        return None
    from hftrainer_mogents.bundle import MoGenTSBundle
    from hftrainer_mogents.convert.official import OfficialLayout, convert_official

    root = fixtures / "mogents_tiny"
    with tempfile.TemporaryDirectory() as tmp:
        convert_official(
            OfficialLayout(weights_root=root / "logs", length_root=root / "checkpoints"),
            Path(tmp) / "a",
            clip=root / "clip" / "ViT-B-32-tiny.pt",
        )
        b32 = MoGenTSBundle.from_pretrained(Path(tmp) / "a")
        b16 = MoGenTSBundle.from_pretrained(Path(tmp) / "a", dtype="bfloat16")
        return drift(b32, b16, steps=12)


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---------------------------------------------------------------------- GPU


GPU_PLAN = [
    # (label, mode, dtype, batch, cuda graphs)
    ("reference fp32", "reference", "float32", 1, False),
    ("fast fp32", "fast", "float32", 1, True),
    ("fast bf16 eager", "fast", "bfloat16", 1, False),
    ("fast bf16", "fast", "bfloat16", 1, True),
    ("reference fp32", "reference", "float32", 256, False),
    ("fast fp32", "fast", "float32", 256, True),
    ("fast bf16 eager", "fast", "bfloat16", 256, False),
    ("fast bf16", "fast", "bfloat16", 256, True),
]


def gpu_bench(artifact: Path, args: argparse.Namespace) -> dict:
    """Batch-1 latency and batch-256 throughput on the GPU, reference mode beside fast mode (fp32
    and bf16, with and without CUDA graphs), measured in this process one after the other."""
    from hftrainer_mogents.pipeline import MoGenTSPipeline

    device = args.device if args.device.startswith("cuda") else "cuda"
    print(f"\nGPU: {torch.cuda.get_device_name(device)}, torch {torch.__version__}", flush=True)
    pipes: dict[str, MoGenTSPipeline] = {}
    results = {}
    flops: dict[tuple[str, int], float] = {}
    for label, mode, dtype, batch, graphs in GPU_PLAN:
        if dtype not in pipes:
            pipes[dtype] = MoGenTSPipeline.from_pretrained(artifact, device=device, dtype=dtype)
            pipes[dtype].set_progress_bar_config(disable=True)
        pipe = pipes[dtype]
        pipe.cuda_graphs.enabled = graphs
        texts = [f"{TEXT}, take {i}" for i in range(batch)]
        lengths = [args.length] * batch

        def run(pipe=pipe, texts=texts, lengths=lengths, mode=mode, batch=batch):
            pipe(texts, lengths, time_steps=args.steps, seed=0, mode=mode, batch_size=batch)
            torch.cuda.synchronize(device)

        run()  # warm-up at this shape (captures the graphs)
        torch.cuda.reset_peak_memory_stats(device)
        seconds = best_time(run, max(args.repeats, 3 if batch <= 8 else 2))
        if (mode, batch) not in flops:
            pipe.cuda_graphs.enabled = False  # replays are invisible to the counter
            flops[(mode, batch)] = count_flops(run)
            pipe.cuda_graphs.enabled = graphs
        key = f"{label}@{batch}"
        results[key] = {
            "seconds": seconds,
            "peak_cuda_mb": torch.cuda.max_memory_allocated(device) / 2**20,
            "flops": flops[(mode, batch)],
            "graphs": len(pipe.cuda_graphs),
        }
        print(f"  {key}: {seconds * 1000:.1f} ms", flush=True)
    rows = [["config", "batch", "ms/call", "sentences/s", "TFLOP/s", "peak MB", "x reference"]]
    for label, _, _, batch, _ in GPU_PLAN:
        r = results[f"{label}@{batch}"]
        ref = results[f"reference fp32@{batch}"]
        rows.append(
            [
                label,
                str(batch),
                f"{r['seconds'] * 1000:.1f}",
                f"{batch / r['seconds']:.1f}",
                f"{r['flops'] / r['seconds'] / 1e12:.1f}",
                f"{r['peak_cuda_mb']:.0f}",
                f"{ref['seconds'] / r['seconds']:.2f}x",
            ]
        )
    print(
        f"\nGPU, length {args.length} frames, {args.steps} steps (reference = official order, fp32)"
    )
    print(table(rows))
    b1 = results["fast bf16@1"]["seconds"] * 1000
    b256 = 256 / results["fast bf16@256"]["seconds"]
    print(f"batch 1 latency, bf16: {b1:.1f} ms (target < 50 ms)")
    print(f"batch 256 throughput, bf16: {b256:.0f} sentences/s (target > 200)")
    if args.profile:
        profile_gpu(pipes["bfloat16"], device, args)
    return results


def profile_gpu(pipe, device: str, args: argparse.Namespace) -> None:
    """Where the time goes, bf16: kernel times at batch 256 (eager, one kernel per op) and host
    times at batch 1 (with CUDA graphs)."""
    from torch.profiler import ProfilerActivity, profile

    for batch, graphs, sort in ((256, False, "cuda_time_total"), (1, True, "cpu_time_total")):
        pipe.cuda_graphs.enabled = graphs
        texts = [f"{TEXT}, take {i}" for i in range(batch)]
        pipe(texts, [args.length] * batch, time_steps=args.steps, seed=0, batch_size=batch)
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            pipe(texts, [args.length] * batch, time_steps=args.steps, seed=0, batch_size=batch)
            torch.cuda.synchronize(device)
        print(f"\nprofile, bf16, batch {batch}, CUDA graphs {graphs}, sorted by {sort}:")
        print(prof.key_averages().table(sort_by=sort, row_limit=20, max_name_column_width=50))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--artifact", type=Path, help="artifact folder (default: a random full-size one)"
    )
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--length", type=int, default=196)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--fixtures", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "fixtures"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--profile", action="store_true", help="GPU: also print a kernel-time profile (bf16)"
    )
    parser.add_argument(
        "--plain-malloc",
        action="store_true",
        help="run the CPU workers without keep_freed_memory() (glibc's default malloc settings)",
    )
    # worker mode
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count-flops", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    script = Path(__file__).resolve()
    tmp = None
    artifact = args.artifact
    if artifact is None:
        tmp = tempfile.TemporaryDirectory(prefix="mogents-bench-")
        print("writing a full-size random artifact ...", flush=True)
        artifact = make_artifact(Path(tmp.name) / "artifact")
    if args.device.startswith("cuda"):
        report = {"gpu": gpu_bench(artifact, args)}
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
        return
    batches = [int(b) for b in args.batches.split(",")]
    configs = args.configs.split(",")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
        f"CPU {cpu_description()}",
        flush=True,
    )
    if not args.plain_malloc:
        print("workers keep freed memory (utils.memory.keep_freed_memory; --plain-malloc: off)")
    if cpu_bf16_instructions() is None and any("bf16" in c for c in configs):
        print(
            "NOTE: this CPU has no bf16 instructions (no AMX, no AVX512-BF16): bf16 is emulated "
            "here, so the bf16 rows measure the emulation, not bf16 inference; compare fp32 rows"
        )
    peak = sgemm_peak(args.device)
    results: dict[str, dict] = {}
    for batch in batches:
        for config in configs:
            key = f"{config}@{batch}"
            print(f"timing {key} ...", flush=True)
            results[key] = run_worker(script, artifact, config, batch, args, count_flops=True)

    rows = [
        [
            "config",
            "batch",
            "s/sentence",
            "sentences/s",
            "GFLOP/sent",
            "GFLOP/s",
            "% sgemm peak",
            "peak MB",
            "x reference",
        ]
    ]
    for batch in batches:
        ref = results.get(f"reference@{batch}")
        for config in configs:
            r = results[f"{config}@{batch}"]
            gflop = r["flops"] / batch / 1e9
            rate = r["flops"] / r["seconds"] / 1e9
            speedup = ref["seconds"] / r["seconds"] if ref else float("nan")
            rows.append(
                [
                    config,
                    str(batch),
                    f"{r['seconds'] / batch:.3f}",
                    f"{batch / r['seconds']:.2f}",
                    f"{gflop:.0f}",
                    f"{rate:.0f}",
                    f"{100 * rate / peak:.0f}%",
                    f"{r['peak_rss_mb']:.0f}",
                    f"{speedup:.2f}x",
                ]
            )
    print()
    print(
        f"length {args.length} frames, {args.steps} steps; sgemm peak here {peak:.0f} GFLOP/s (fp32)"
    )
    print(
        "official code on this kind of CPU (research notes): 4.71-4.96 s/sentence at batch 1, 34.8-35.1 s per batch of 8"
    )
    print(table(rows))
    print("GFLOP counted by torch.utils.flop_counter (fused CPU attention kernels are not counted)")

    from hftrainer_mogents.bundle import MoGenTSBundle

    print("\nbf16 drift against fp32 (guided logits):")
    report = {"timings": results, "sgemm_peak_gflops": peak}
    drift_rows = [["model", "transformer", "max |dlogit|", "max |logit|", "mean KL"]]
    sources = [
        (
            "full-size random",
            drift(
                MoGenTSBundle.from_pretrained(artifact),
                MoGenTSBundle.from_pretrained(artifact, dtype="bfloat16"),
            ),
        )
    ]
    tiny = fixture_drift(args.fixtures)
    if tiny is not None:
        sources.insert(0, ("tiny fixture", tiny))
    for label, values in sources:
        report[f"drift {label}"] = values
        for name, v in values.items():
            drift_rows.append(
                [
                    label,
                    name,
                    f"{v['max_logit_err']:.4f}",
                    f"{v['logit_scale']:.2f}",
                    f"{v['mean_kl']:.2e}",
                ]
            )
    print(table(drift_rows))

    if torch.cuda.is_available():
        report["gpu"] = gpu_bench(artifact, args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
