#!/usr/bin/env python
"""Speed of the HumanML3D-263 evaluation at real sizes (random weights), in one run:

1. the metric protocol (20 repeats) on random 512-d embeddings of the test-set size, ours
   (vectorised, ``evaluation.metrics``) against a straightforward per-batch loop like the
   reference code's;
2. motion-encoding throughput of the evaluator networks (MovementConvEncoder 259->512->512,
   MotionEncoderBiGRUCo 1024 hidden), ours (crops grouped by length, padding trimmed to the
   longest crop + 8 frames) against the reference's per-batch loop (batches of 32 in loader
   order, every motion padded to 196 frames, text encoded for the real and the generated pass);
3. the whole 20-repeat protocol excluding generation: how many encodes each way needs for the
   draws of 20 passes over the test set, and the resulting time (estimated from 1 and 2), or,
   with ``--full``, a measured ``HumanML263Evaluator.evaluate`` run on a synthetic test set
   written to a temporary folder;
4. the same in bfloat16 (``HumanML263Evaluator.from_pretrained(..., dtype=torch.bfloat16)``) and
   its drift from float32 (embeddings; with ``--full``, the metrics).

    python scripts/bench_eval.py [--n 4384] [--repeats 20] [--full] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from hftrainer_mogents.evaluation import metrics
from hftrainer_mogents.evaluation.hml263.draws import draw_repeat
from hftrainer_mogents.evaluation.hml263.evaluator import HumanML263Evaluator
from hftrainer_mogents.evaluation.hml263.networks import (
    HML263EvaluatorConfig,
    HML263EvaluatorNetworks,
)
from hftrainer_mogents.evaluation.hml263.word_vectors import WordVectorizer

D = 512


def reference_like_metrics(text, real, pred, n_repeats, seed):
    """The reference's metric code path: per batch np.dot distance matrix + argsort, FID with
    sqrtm, diversity and multimodality with the global RNG."""
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(n_repeats):
        order = rng.permutation(len(text))
        t, r, p = text[order], real[order], pred[order]
        counts = np.zeros(3)
        match = 0.0
        n = (len(t) // 32) * 32
        for lo in range(0, n, 32):
            for emb in (r, p):
                a, b = t[lo : lo + 32], emb[lo : lo + 32]
                d = np.sqrt(
                    -2 * np.dot(a, b.T) + np.sum(a**2, 1, keepdims=True) + np.sum(b**2, 1)[None, :]
                )
                order_row = np.argsort(d, axis=1)
                hits = order_row[:, :3] == np.arange(32)[:, None]
                counts += np.cumsum(hits, axis=1).sum(0)
                match += d.trace()
        mu1, s1 = r[:n].mean(0), np.cov(r[:n], rowvar=False)
        mu2, s2 = p[:n].mean(0), np.cov(p[:n], rowvar=False)
        covmean = scipy.linalg.sqrtm(s1.dot(s2)).real
        fid = (mu1 - mu2).dot(mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
        i1, i2 = rng.choice(n, 300, replace=False), rng.choice(n, 300, replace=False)
        div = np.linalg.norm(p[i1] - p[i2], axis=1).mean()
        out.append((fid, counts / n, match / n, div))
    return out


def random_evaluator(dtype: torch.dtype) -> HumanML263Evaluator:
    torch.manual_seed(0)
    nets = HML263EvaluatorNetworks(HML263EvaluatorConfig()).to(dtype=dtype)
    words = ["sos", "eos", "unk", "a", "person", "walk", "run", "forward"]
    vectors = np.random.default_rng(0).normal(size=(len(words), 300)).astype(np.float32)
    vec = WordVectorizer(vectors, {w: i for i, w in enumerate(words)})
    return HumanML263Evaluator(nets, vec, np.zeros(263), np.ones(263))


def time_it(fn, runs: int = 3):
    """Fastest of ``runs`` timed calls after a warm-up (the minimum is the least disturbed by
    other processes on a shared machine), and the last result."""
    result = fn()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def reference_like_encode(ev: HumanML263Evaluator, motions, lengths, batch: int = 32):
    """Loader-order batches of 32, each padded to 196 frames; text encoded twice per batch."""
    tokens = ["a/DET person/NOUN walk/VERB forward/ADV"] * batch
    word, pos, lens = ev.word_vectorizer.encode(tokens)
    word_t, pos_t, lens_t = (torch.from_numpy(x) for x in (word, pos, lens))
    out = []
    with torch.no_grad():
        for lo in range(0, len(motions), batch):
            chunk = slice(lo, lo + batch)
            padded = np.zeros((len(motions[chunk]), 196, 263), np.float32)
            for j, (m, n) in enumerate(zip(motions[chunk], lengths[chunk])):
                padded[j, :n] = m[:n]
            m_lens = torch.from_numpy(lengths[chunk])
            order = torch.argsort(m_lens, descending=True)
            x = torch.from_numpy(padded)[order].to(ev.dtype)
            out.append(ev.networks.encode_motion(x, m_lens[order]))
            for _ in range(2):  # the real and the generated pass each encode the texts
                ev.networks.encode_text(word_t.to(ev.dtype), pos_t.to(ev.dtype), lens_t)
    return torch.cat(out)


def synthetic_lengths(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(40, 200, n)


def count_encodes(lengths: np.ndarray, n_repeats: int, seed: int) -> dict[str, int]:
    """Distinct crops our protocol encodes vs the reference's per-pass encodes."""
    draws = [
        draw_repeat(np.random.default_rng([seed, r]), lengths, np.full(len(lengths), 3))
        for r in range(n_repeats)
    ]
    real = {(int(i), int(d.start[i]), int(d.m_length[i])) for d in draws for i in d.used}
    pred = {(int(i), int(d.m_length[i])) for d in draws for i in d.used}
    per_pass = sum(len(d.used) for d in draws)
    return {
        "ours_real": len(real),
        "ours_pred": len(pred),
        "reference_motion_encodes": 2 * per_pass,
        "reference_text_encodes": 2 * per_pass,
    }


def write_synthetic_dataset(root: Path, lengths: np.ndarray, rng: np.random.Generator) -> None:
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    ids = []
    for i, n in enumerate(lengths):
        ids.append(f"{i:06d}")
        np.save(root / "new_joint_vecs" / f"{i:06d}.npy", rng.normal(size=(n, 263)).astype("f4"))
        (root / "texts" / f"{i:06d}.txt").write_text(
            "a person walks.#a/DET person/NOUN walk/VERB#0.0#0.0\n"
            "a person runs forward.#a/DET person/NOUN run/VERB forward/ADV#0.0#0.0\n"
        )
    (root / "test.txt").write_text("\n".join(ids) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=4384, help="test-set size")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--encode-samples", type=int, default=768, help="motions per timing")
    parser.add_argument("--batch-size", type=int, default=128, help="our encoding batch size")
    parser.add_argument("--full", action="store_true", help="measure the whole protocol")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    report: dict = {
        "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "n": args.n,
        "repeats": args.repeats,
    }

    # 1. metrics
    text = rng.normal(size=(args.n, D)).astype(np.float32)
    real = text + rng.normal(size=text.shape).astype(np.float32)
    pred = text + 1.2 * rng.normal(size=text.shape).astype(np.float32)
    for method in ("sqrtm", "eigh"):
        t, _ = time_it(
            lambda m=method: metrics.replicate_embeddings(
                text, real, pred, n_repeats=args.repeats, fid_method=m
            ),
            2,
        )
        report[f"metrics_ours_{method}_s"] = round(t, 3)
    t, _ = time_it(lambda: reference_like_metrics(text, real, pred, args.repeats, 0), 2)
    report["metrics_reference_loop_s"] = round(t, 3)
    print(f"metric protocol ({args.repeats} repeats, {args.n} x {D}):")
    print(
        f"  ours sqrtm {report['metrics_ours_sqrtm_s']:.2f} s, eigh {report['metrics_ours_eigh_s']:.2f} s;"
    )
    print(f"  reference-like loop {report['metrics_reference_loop_s']:.2f} s")

    # 2. encoding throughput
    ev = random_evaluator(torch.float32)
    ev16 = random_evaluator(torch.bfloat16)
    # the protocol encodes ~900 crops of each of the 40 lengths; here 8 lengths spanning the range
    lengths = np.repeat(np.linspace(40, 196, 8).astype(np.int64) // 4 * 4, args.encode_samples // 8)
    lengths = rng.permutation(lengths)  # the reference loop sees them in loader order
    motions = [rng.normal(size=(n, 263)).astype(np.float32) for n in lengths]
    t_ours, emb32 = time_it(lambda: ev._encode_normalized(motions, batch_size=args.batch_size))
    t_ref, _ = time_it(lambda: reference_like_encode(ev, motions, lengths))
    t16, emb16 = time_it(lambda: ev16._encode_normalized(motions, batch_size=args.batch_size))
    drift = np.abs(emb16 - emb32).max() / np.abs(emb32).max()
    report["encode_ours_per_s"] = round(len(motions) / t_ours, 1)
    report["encode_reference_loop_per_s"] = round(len(motions) / t_ref, 1)
    report["encode_bf16_per_s"] = round(len(motions) / t16, 1)
    report["bf16_max_rel_embedding_drift"] = float(drift)
    print(f"motion encoding at real sizes, mean length {lengths.mean():.0f} frames:")
    print(
        f"  ours {report['encode_ours_per_s']} motions/s (batch {args.batch_size}), "
        f"reference-like loop {report['encode_reference_loop_per_s']} motions/s "
        f"(x{t_ref / t_ours:.2f}); ours in bf16 {report['encode_bf16_per_s']} motions/s, max "
        f"drift {drift:.1e} of the largest embedding entry"
    )

    # 3. the whole protocol
    test_lengths = synthetic_lengths(args.n, rng)
    counts = count_encodes(test_lengths, args.repeats, 0)
    report.update(counts)
    crops = counts["ours_real"] + counts["ours_pred"]
    metrics_s = report["metrics_ours_eigh_s"]  # the default FID method
    estimates = {
        "fp32_cold": crops / report["encode_ours_per_s"] + metrics_s,
        "fp32_warm_cache": counts["ours_pred"] / report["encode_ours_per_s"] + metrics_s,
        "bf16_cold": crops / report["encode_bf16_per_s"] + metrics_s,
        "reference_like": counts["reference_motion_encodes"] / report["encode_reference_loop_per_s"]
        + report["metrics_reference_loop_s"],
    }
    report["protocol_estimated_s"] = {k: round(v, 1) for k, v in estimates.items()}
    print(f"whole {args.repeats}-repeat protocol on {args.n} items (excluding generation):")
    print(
        f"  ours encodes {counts['ours_real']} real + {counts['ours_pred']} generated distinct "
        f"crops, the reference {counts['reference_motion_encodes']}; estimated "
        + ", ".join(f"{k} ~{v:.0f} s" for k, v in estimates.items())
    )
    if args.full:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "HumanML3D"
            write_synthetic_dataset(root, test_lengths, rng)
            preds = {f"{i:06d}": root / "new_joint_vecs" / f"{i:06d}.npy" for i in range(args.n)}
            results = {}
            for label, evaluator, cache in (
                ("fp32_cold", ev, "c32"),
                ("fp32_warm_cache", ev, "c32"),
                ("bf16_cold", ev16, "c16"),
            ):
                start = time.perf_counter()
                results[label] = evaluator.evaluate(
                    preds,
                    dataset_root=root,
                    n_repeats=args.repeats,
                    caption_selection="random",
                    encode_batch_size=args.batch_size,
                    cache_dir=Path(tmp) / cache,
                    progress=False,
                )
                seconds = round(time.perf_counter() - start, 1)
                report.setdefault("protocol_measured_s", {})[label] = seconds
                print(f"  measured {label}: {seconds} s")
            diffs = {}
            for key in ("fid", "r_precision", "matching_score", "diversity", "r_precision_real"):
                a = np.asarray(results["fp32_cold"][key]["mean"])
                b = np.asarray(results["bf16_cold"][key]["mean"])
                diffs[key] = float(np.max(np.abs(a - b)))
            report["bf16_metric_abs_diff"] = diffs
            print(
                "  bf16 - fp32 metric means: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())
            )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
