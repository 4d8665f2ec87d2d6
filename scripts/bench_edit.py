"""Benchmark editing and long motions against plain generation of the same frames, same run.

For each dtype: plain generation of one 196-frame motion, an in-between edit of it (frames
40:156 re-generated), plain generation of 476 frames as independent 120 + 160 + 196-frame
motions, and ``generate_long`` of the same three prompts; median wall time per call.

    python scripts/bench_edit.py --model ARTIFACT [--dtypes float32 bfloat16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from hftrainer_mogents.pipeline import MoGenTSPipeline

TEXTS = ["a person walks forward", "a person sits down", "a person waves with the right hand"]
LENGTHS = [120, 160, 196]


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _bench(pipe: MoGenTSPipeline, steps: int, repeats: int) -> list[tuple[str, float]]:
    """(job, median seconds) for the four jobs of the module docstring."""
    opts = {"time_steps": steps, "seed": 0}
    source = pipe([TEXTS[0]], [196], **opts).motions[0]
    jobs = {
        "generate 196": lambda: pipe([TEXTS[0]], [196], **opts),
        "edit 196 (116 new)": lambda: pipe.edit(source, TEXTS[1], [(0, 40), (156, 196)], **opts),
        "generate 120+160+196": lambda: [pipe([t], [n], **opts) for t, n in zip(TEXTS, LENGTHS)],
        "generate_long 476": lambda: pipe.generate_long(TEXTS, LENGTHS, **opts),
    }
    return [(name, _median_time(fn, repeats)) for name, fn in jobs.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="artifact folder or hub repo id")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for dtype in args.dtypes:
        pipe = MoGenTSPipeline.from_pretrained(args.model, device=args.device, dtype=dtype)
        pipe.set_progress_bar_config(disable=True)
        for name, seconds in _bench(pipe, args.steps, args.repeats):
            rows.append((dtype, name, seconds))
    print(f"{'dtype':<10} {'job':<22} {'seconds':>8}")
    for dtype, name, seconds in rows:
        print(f"{dtype:<10} {name:<22} {seconds:>8.3f}")


if __name__ == "__main__":
    main()
